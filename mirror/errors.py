"""Errors raised by the mirror package."""

from storage.errors import UserError


class ConfigError(UserError):
    """The configuration is unusable: a bad file, key, value or environment variable.

    ``str(error)`` is one line naming the source, the section and key, and the fix, so the
    CLI can print it as is. It never contains a secret's value.
    """
