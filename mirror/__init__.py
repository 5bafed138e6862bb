"""Everything that talks to Booxi, plus the ``booxi-mirror`` CLI and its config.

Public names:

- ``mirror.config``: ``load_config(path, environ) -> Config`` and the ``Config`` sections.
- ``mirror.client``: ``BooxiClient`` (typed calls, paging, retries for GETs), over
  ``mirror.booxi_http`` (transport) and ``mirror.budget.RateBudget`` (one fair-use
  budget per process, writes first); errors in ``mirror.booxi_errors``.
- ``mirror.poller``: ``refresh_reference_data()``, ``poll_staff_calendar()``,
  ``reconcile_booking()``; ``mirror.sync.run_pass()`` (one pass);
  ``mirror.scheduler.Poller`` (the APScheduler schedule of ``serve``).
- ``mirror.webhooks``: ``verify()``, ``parse_event()``, ``apply_events()``,
  ``reapply_events()`` (``inbox replay``).
- ``mirror.runtime``: ``open_runtime()``, ``sync_once()``, ``serve()``.
- ``mirror.audit``: ``audit()`` (every difference between the mirror and Booxi now);
  ``mirror.repair.repair()`` (fixes them); ``mirror.resync.resync_staff()`` (drops and
  rebuilds calendars); their commands in ``mirror.cli_repair``.
- ``mirror.errors``: ``ConfigError``; ``mirror.logs``: ``configure_logging()``,
  ``register_secret()``, ``RedactSecrets``.
- ``mirror.cli``: ``cli``, the click group behind the ``booxi-mirror`` command; its
  inspection commands in ``mirror.cli_inspect`` (with ``cli_status``, ``cli_inbox``,
  ``cli_db`` and the shared ``cli_output``), over ``mirror.inspect`` (read-only
  database, freshness, replay, backup, vacuum).
"""

__version__ = "0.1.0"
