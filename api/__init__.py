"""The aiohttp application: Booxi's read and write paths, the webhook receiver, the
mirror's own routes (health, metrics, OpenAPI, a store's queue) and the store dashboard
(``api.dashboard``, HTML at ``/``). Public names: ``api.app.create_app``."""
