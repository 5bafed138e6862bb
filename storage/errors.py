"""Storage errors, and ``UserError``, the root of every operator error."""


class UserError(Exception):
    """The operator asked for something that cannot be done: a bad config, a database file
    that is not a mirror's, an audit or resync Booxi does not allow now, a port in use.

    ``str(error)`` is one line, never holding a secret, that says what to fix. The CLI
    catches it once, around every command (``cli.main``), and prints ``Error: <line>``
    with exit status 1, never a traceback. Subclasses: ``NotAMirrorError`` (here,
    ``storage.inspection``), ``mirror.errors.ConfigError``, ``mirror.audit.AuditError``,
    ``mirror.resync.ResyncError``, ``cli.inspection.InspectError``,
    ``cli.demo.DemoStartError``.

    It is defined in storage, the lowest layer, because storage raises one
    (``NotAMirrorError``) and every other package may import storage, never the reverse
    (``tests/test_layering.py``).
    """


class NotFoundError(LookupError):
    """No row with that id; the message carries the id."""


class MalformedError(ValueError):
    """A Booxi object lacks a field the mirror indexes on, or has it in the wrong type."""
