"""SQLModel tables, engine and shared queries (later issues)."""
