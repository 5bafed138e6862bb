"""Storage errors."""


class NotFoundError(LookupError):
    """No row with that id; the message carries the id."""


class MalformedError(ValueError):
    """A Booxi object lacks a field the mirror indexes on, or has it in the wrong type."""
