"""The aiohttp application: the webhook receiver and health now; the read API and
write-through come next. Public names: ``api.app.create_app``."""
