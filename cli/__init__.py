"""The composition root: the ``booxi-mirror`` command, and what wires the parts together.

Nothing in ``storage``, ``mirror`` or ``api`` imports this package
(``tests/test_layering.py``). Public names:

- ``cli.main``: ``cli``, the click group behind the ``booxi-mirror`` command
  (``python -m cli`` runs it too), and the one place every command is added to it.
- ``cli.options``: ``load_config_or_exit()``, ``json_output_option``, ``GlobalOptions``.
- ``cli.runtime``: ``Runtime``, ``open_database()``, ``open_runtime()``,
  ``sync_once()``: the parts the commands run on, opened and closed together.
- ``cli.serving``: ``build_app()``, which wires storage, the sync engine (``mirror``)
  and the HTTP API (``api``) into one application whose ``cleanup_ctx`` starts and
  stops every part, and ``serve()``, which listens with it until stopped.
- ``cli.demo``: ``run_demo()``, the simulator and the mirror together.
- ``cli.logs``: ``configure_logging()``, ``register_secret()``, ``hold_lines()``.
- The commands, a module each or per theme: ``cli.config``, ``cli.db``, ``cli.serve``
  (``serve``, ``sync``), ``cli.sim`` (``sim``, ``demo``), ``cli.repair`` (``audit``,
  ``resync``, with ``run_audit()`` and ``run_resync()``), ``cli.privacy``, and the
  inspection commands: ``cli.show`` (``calendar``, ``history``, ``booking``,
  ``clients``, ``stats``), ``cli.status`` and ``cli.inbox``, with the shared
  ``cli.output``, over ``cli.inspection`` (read-only database, freshness, replay,
  backup, vacuum).
"""
