"""The aiohttp application: read API, write-through, webhook receiver (later issues)."""
