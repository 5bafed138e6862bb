"""Everything that talks to Booxi, plus the ``booxi-mirror`` CLI and its config.

Public names:

- ``mirror.config``: ``load_config(path, environ) -> Config`` and the ``Config`` sections.
- ``mirror.client``: ``BooxiClient`` (typed calls, paging, retries for GETs), over
  ``mirror.booxi_http`` (transport) and ``mirror.budget.RateBudget`` (one fair-use
  budget per process, writes first); errors in ``mirror.booxi_errors``.
- ``mirror.poller``: ``refresh_reference_data()``, ``poll_staff_calendar()``,
  ``reconcile_booking()``; ``mirror.sync.run_pass()`` (one pass);
  ``mirror.scheduler.Poller`` (the APScheduler schedule of ``serve``).
- ``mirror.webhooks``: ``verify()``, ``parse_event()``, ``apply_events()``.
- ``mirror.runtime``: ``open_runtime()``, ``sync_once()``, ``serve()``.
- ``mirror.errors``: ``ConfigError``; ``mirror.logs``: ``configure_logging()``,
  ``register_secret()``, ``RedactSecrets``.
- ``mirror.cli``: ``cli``, the click group behind the ``booxi-mirror`` command.
"""

__version__ = "0.1.0"
