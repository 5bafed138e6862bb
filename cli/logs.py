"""Logging set-up for the CLI: lines on stderr, JSON for machines or text for people,
with secrets redacted.

``configure_logging()`` is called by ``cli.main`` (again when a command's own ``-v`` or
``--log-format`` changes them); every other module only does
``log = logging.getLogger(__name__)`` and logs with %-style arguments and ``extra=``.
``register_secret()`` adds a value (a key, a webhook secret) that must never reach a log
line: the ``RedactSecrets`` filter on the handler replaces it with ``[redacted]``.

Formats (``--log-format``): ``json``, one object per line (``timestamp``, ``level``,
``logger``, ``message``, then the ``extra=`` fields, and ``exc_info`` with a
traceback); ``text``, one readable line (time, level, event, then ``key=value``
fields); ``auto`` (the default), text when stderr is a terminal and JSON otherwise
(a service manager, a file, a pipe). The JSON lines are encoded by the standard
library's ``json`` from a dict per record: the access log writes one per request, and
python-json-logger's generic formatter cost three times as much per line (18 against
6 microseconds, measured), on the read path of every request.
"""

import datetime as dt
import json
import logging
import sys
import traceback
from typing import Any, Literal, TextIO

LogFormat = Literal["auto", "json", "text"]
LOG_FORMATS: tuple[LogFormat, ...] = ("auto", "json", "text")
REDACTED = "[redacted]"
_MIN_SECRET_LENGTH = 4
_secrets: list[str] = []  # longest first: no partial leaks

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
    if len(value) >= _MIN_SECRET_LENGTH and value not in _secrets:
        _secrets.append(value)
        _secrets.sort(key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``[redacted]``."""
    for secret in _secrets:
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
            if name not in _RECORD_ATTRS and not isinstance(value, int | float | None):
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


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}


def _details(record: logging.LogRecord, formatter: logging.Formatter) -> str | None:
    """The record's traceback and stack, as the standard formatter writes them."""
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    parts = [p for p in (record.exc_text, record.stack_info) if p]
    return "\n".join(parts) if parts else None


class JsonLines(logging.Formatter):
    """``timestamp`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, the extras,
    then ``exc_info`` (a traceback) when there is one. Values JSON cannot encode are
    written as their ``str()``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": _utc_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_extras(record))
        details = _details(record, self)
        if details is not None:
            line["exc_info"] = details
        return json.dumps(line, ensure_ascii=False, default=str)


class TextLines(logging.Formatter):
    """One readable line: time, level, the event (the message), then ``key=value`` for
    each extra (a value with spaces or quotes is JSON-quoted), then any traceback on the
    lines below. The date is left out: a terminal shows today's lines."""

    def format(self, record: logging.LogRecord) -> str:
        moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
        fields = " ".join(f"{k}={_text_value(v)}" for k, v in _extras(record).items())
        line = (
            f"{moment:%H:%M:%S}.{moment.microsecond // 1000:03d} {record.levelname:<7} "
            f"{record.getMessage()}" + (f"  {fields}" if fields else "")
        )
        details = _details(record, self)
        return line if details is None else f"{line}\n{details}"


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if isinstance(value, str) and (not text or any(c in text for c in ' "=\n')):
        return json.dumps(text, ensure_ascii=False)
    return text


def resolve_format(log_format: LogFormat, stream: TextIO | None = None) -> Literal["json", "text"]:
    """``auto``: text on a terminal, JSON elsewhere."""
    if log_format != "auto":
        return log_format
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


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


def configure_logging(verbosity: int = 0, log_format: LogFormat = "auto") -> None:
    """Send the root logger to stderr: INFO, or DEBUG with ``verbosity`` 1 (-v).

    The chatty libraries (aiosqlite, asyncio, SQLAlchemy's engine) stay at WARNING unless
    ``verbosity`` is 2 (-vv). ``log_format``: see the module's docstring; aiohttp's
    access log (``aiohttp.access``) comes out the same way. Calling it again replaces
    the handler it installed before.
    """
    handler = _StderrHandler()
    handler.set_name("booxi-mirror")
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonLines() if resolve_format(log_format) == "json" else TextLines())
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
