"""The sync engine: everything that talks to Booxi, and the config it runs on.

It knows no aiohttp server and no click: ``api`` and ``cli`` build on it, never the
other way round (``tests/test_layering.py``). Public names:

- ``mirror.config``: ``load_config(path, environ) -> Config`` and the ``Config`` sections,
  built by pydantic-settings from ``mirror.settings_sources`` (the environment, the file);
  its one-line errors come from ``mirror.config_messages``.
- ``mirror.client``: ``BooxiClient`` (typed calls, paging, retries for GETs), over
  ``mirror.booxi_http`` (transport) and ``mirror.budget.RateBudget`` (one fair-use
  budget per process, writes first) with ``mirror.shared_budget.SharedRateBudget`` (that
  budget shared through the database by every process on it); errors in
  ``mirror.booxi_errors``.
- ``mirror.poller``: ``refresh_reference_data()``, ``poll_staff_calendar()``,
  ``reconcile_booking()``; ``mirror.sync.run_pass()`` (one pass);
  ``mirror.scheduler.Poller`` (the APScheduler schedule of ``serve``);
  ``mirror.leader.PollLeadership`` (which ``serve`` replica runs it).
- ``mirror.webhooks``: ``verify()``, ``parse_event()``, ``apply_events()``,
  ``reapply_events()`` (``inbox replay``).
- ``mirror.audit``: ``audit()`` (every difference between the mirror and Booxi now),
  ``record_audit()`` (its counts kept for the dashboard);
  ``mirror.repair.repair()`` (fixes them); ``mirror.resync.resync_staff()`` (drops and
  rebuilds calendars).
- ``mirror.privacy``: ``enforce_retention()``.
- ``mirror.errors``: ``ConfigError``.
"""

__version__ = "0.1.0"
