"""Everything that talks to Booxi, plus the ``booxi-mirror`` CLI and its config.

Public names so far:

- ``mirror.config``: ``load_config(path, environ) -> Config`` and the ``Config`` sections.
- ``mirror.errors``: ``ConfigError``.
- ``mirror.logs``: ``configure_logging()``, ``register_secret()``, ``RedactSecrets``.
- ``mirror.cli``: ``cli``, the click group behind the ``booxi-mirror`` command.

The Booxi HTTP client, the poller, reconciliation, webhook processing and retention
arrive with later issues.
"""

__version__ = "0.1.0"
