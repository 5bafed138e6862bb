"""Logging set-up for the CLI: JSON lines on stderr, with secrets redacted.

``configure_logging()`` is called once by ``cli.main``; every other module only does
``log = logging.getLogger(__name__)`` and logs with %-style arguments and ``extra=``.
``register_secret()`` adds a value (a key, a webhook secret) that must never reach a log
line: the ``RedactSecrets`` filter on the handler replaces it with ``[redacted]``.
"""

import datetime as dt
import logging
import sys
import traceback
from typing import Any, TextIO

try:
    from pythonjsonlogger.json import JsonFormatter
except ImportError:  # python-json-logger < 3
    from pythonjsonlogger.jsonlogger import JsonFormatter

REDACTED = "[redacted]"
_MIN_SECRET_LENGTH = 4
_secrets: set[str] = set()

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
# Chatty below WARNING (SQLAlchemy logs every statement at INFO): shown only from -vv on.
_NOISY_LOGGERS = ("aiosqlite", "asyncio", "sqlalchemy.engine", "alembic", "apscheduler")


def register_secret(value: str) -> None:
    """Never let ``value`` reach a log line. Values shorter than 4 characters are ignored."""
    if len(value) >= _MIN_SECRET_LENGTH:
        _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``[redacted]``."""
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: no partial leaks
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(item) for item in value)
    return value


class RedactSecrets(logging.Filter):
    """Replace registered secrets in a record's message, args, extras and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        try:
            record.msg, record.args = redact(record.getMessage()), None
        except Exception:  # bad %-args: the handler reports it, so redact both halves
            record.msg, record.args = redact(str(record.msg)), _redact_value(record.args)
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRS:
                setattr(record, name, _redact_value(value))
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            redacted = redact(text)
            if redacted != text:  # keep exc_info for other handlers unless it leaks
                record.exc_info, record.exc_text = None, redacted
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _utc_time(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _JsonLines(JsonFormatter):
    """``timestamp`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, then the extras."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc_time(record)


class _TextLines(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc_time(record)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(verbosity: int = 0, json_lines: bool = True) -> None:
    """Send the root logger to stderr: INFO, or DEBUG with ``verbosity`` 1 (-v).

    The chatty libraries (aiosqlite, asyncio, SQLAlchemy's engine) stay at WARNING unless
    ``verbosity`` is 2 (-vv).

    JSON lines carry ``timestamp``, ``level``, ``logger``, ``message`` and any ``extra=``
    fields; aiohttp's access log (``aiohttp.access``) comes out the same way. Calling it
    again replaces the handler it installed before.
    """
    handler = _StderrHandler()
    handler.set_name("booxi-mirror")
    handler.addFilter(RedactSecrets())
    handler.setFormatter(_JsonLines() if json_lines else _TextLines())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "booxi-mirror"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 1 else logging.INFO)
    # Neither format shows the caller's file and line, nor thread or process: skip
    # gathering them on every record (the logging HOWTO's "Optimization"; the access
    # log writes one record per request, and finding the caller walks the stack).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)
