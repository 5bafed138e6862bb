"""Logging set-up for the CLI: lines on stderr, JSON for machines or text for people,
with secrets redacted.

``configure_logging()`` is called by ``cli.main`` (again when a command's own ``-v`` or
``--log-format`` changes them); every other module only does
``log = logging.getLogger(__name__)`` and logs with %-style arguments and ``extra=``.
``register_secret()`` adds a value (a key, a webhook secret) that must never reach a log
line: the handler replaces it with ``[redacted]`` in each finished line (message,
extras and traceback alike, in the form the line writes it: as sent, or JSON-escaped).

Formats (``--log-format``): ``json``, one object per line (``timestamp``, ``level``,
``logger``, ``message``, then the ``extra=`` fields, and ``exc_info`` with a
traceback); ``text``, one readable line (time, level, event, then ``key=value``
fields); ``auto`` (the default), text when stderr is a terminal and JSON otherwise
(a service manager, a file, a pipe). The JSON lines are encoded by the standard
library's ``json`` from a dict per record: the access log writes one per request, and
python-json-logger's generic formatter cost three times as much per line (18 against
6 microseconds, measured), on the read path of every request.

``serve`` holds its access lines for at most ``HOLD_S`` and writes them together
(``hold_lines()``), as nginx's ``access_log ... buffer= flush=`` does: one write per
batch rather than one per request. Every other line is written at once, after the
access lines held before it; so does the interpreter's exit write what is held. A held
access line is kept as its parts (time, message, fields) and formatted and redacted
with its batch: formatted one at a time between requests, a line cost the event loop
about 8 microseconds of a ready answer's 60 (caches cold); a batch formats them for a
fraction of it.
"""

import json
import logging
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Literal, TextIO

LogFormat = Literal["auto", "json", "text"]
LOG_FORMATS: tuple[LogFormat, ...] = ("auto", "json", "text")
REDACTED = "[redacted]"
_MIN_SECRET_LENGTH = 4
_secrets: list[str] = []  # longest first: no partial leaks
HOLD_S = 0.1  # the longest a held line waits (``hold_lines``)
_HOLD_LINES = 512  # or as many lines (formatted together: about 1.5 ms of the event loop)

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
    if len(value) < _MIN_SECRET_LENGTH:
        return
    escaped = json.dumps(value, ensure_ascii=False)[1:-1]  # as a JSON line writes it
    for form in {value, escaped}:
        if form not in _secrets:
            _secrets.append(form)
    _secrets.sort(key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``[redacted]``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


_second: list[Any] = [None, ""]  # the last second formatted, and its text


def _utc_time(created: float) -> str:
    """RFC 3339 in UTC to the millisecond; the date and time part made once a second
    (read and replaced whole: access lines are formatted on the flusher thread too)."""
    second = int(created)
    cached, text = _second
    if cached != second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second[:] = [second, text]
    return f"{text}.{int((created - second) * 1000):03d}Z"


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
        extras = _extras(record)
        details = _details(record, self)
        if details is not None:
            extras["exc_info"] = details
        return self.line(record.created, record.levelname, record.name, record.getMessage(), extras)

    @staticmethod
    def line(created: float, level: str, logger: str, message: str, extras: dict[str, Any]) -> str:
        """A line from its parts (``AccessLines`` writes one without a record)."""
        line: dict[str, Any] = {
            "timestamp": _utc_time(created),
            "level": level,
            "logger": logger,
            "message": message,
        }
        line.update(extras)
        return _encode(line)


class TextLines(logging.Formatter):
    """One readable line: time, level, the event (the message), then ``key=value`` for
    each extra (a value with spaces or quotes is JSON-quoted), then any traceback on the
    lines below. The date is left out: a terminal shows today's lines."""

    def format(self, record: logging.LogRecord) -> str:
        extras = _extras(record)
        line = self.line(record.created, record.levelname, record.name, record.getMessage(), extras)
        details = _details(record, self)
        return line if details is None else f"{line}\n{details}"

    @staticmethod
    def line(created: float, level: str, logger: str, message: str, extras: dict[str, Any]) -> str:
        """A line from its parts (``logger`` is not shown)."""
        fields = " ".join(f"{k}={_text_value(v)}" for k, v in extras.items())
        return f"{_utc_time(created)[11:23]} {level:<7} {message}" + (
            f"  {fields}" if fields else ""
        )


def _encode(line: dict[str, Any]) -> str:
    """``json.dumps(line, ensure_ascii=False, default=str)``, with the C encoder made
    once rather than per call (``dumps`` with options builds an encoder, and
    ``JSONEncoder.encode`` its C part, on every call: half a line's cost). No
    circular-reference check: a line's extras are flat values."""
    if _C_ENCODE is None:  # an interpreter without the C accelerator
        return json.dumps(line, ensure_ascii=False, default=str)
    return "".join(_C_ENCODE(line, 0))


_C_ENCODE = (
    None
    if json.encoder.c_make_encoder is None  # type: ignore[attr-defined]
    else json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, str, json.encoder.encode_basestring, None, ": ", ", ", False, False, True
    )
)


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


# A line held as its parts, formatted when its batch is written: time, logger, message,
# and what makes its fields (a function and its arguments).
_Parts = tuple[float, str, str, Callable[..., dict[str, Any]], tuple[Any, ...]]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it), each
    finished line with the registered secrets redacted; with ``hold`` on, access lines
    (``write_line``) wait (at most ``HOLD_S``, at most ``_HOLD_LINES``) and go out
    together, written by a flusher thread, by the line that fills the batch, or by any
    other line."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.hold = False
        # appended to by any thread, drained from the front under ``_out`` (a list's
        # append, slice and ``del`` are each atomic: nothing appended meanwhile is lost):
        # finished lines, and access lines' parts (``write_info``) formatted at the flush
        self._held: list[str | _Parts] = []
        self._out = threading.Lock()  # one write at a time, in order
        self._flusher: threading.Thread | None = None
        _HANDLERS.add(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._held.append(line)  # after the access lines held before it, in order
        self.flush()

    def write_parts(self, parts: _Parts) -> None:
        """A line at INFO that no record was made for (``cli.access_lines``), as its
        parts: held or written as ``emit`` does, formatted and redacted then."""
        self._held.append(parts)
        self._wait_or_flush()

    def _wait_or_flush(self) -> None:
        if not self.hold or len(self._held) >= _HOLD_LINES:
            self.flush()
        elif self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_often, daemon=True)
            self._flusher.start()

    def _flush_often(self) -> None:
        while True:
            time.sleep(HOLD_S)
            if self._held:
                self.flush()

    def flush(self) -> None:
        with self._out:
            count = len(self._held)
            if not count:
                return
            held = self._held[:count]
            del self._held[:count]
            line = self.formatter.line  # type: ignore[union-attr]
            text = redact(
                "\n".join(item if isinstance(item, str) else _format(line, item) for item in held)
                + "\n"
            )
            try:
                self.stream.write(text)
                self.stream.flush()
            except Exception:  # stderr closed or full: nowhere left to say so
                pass


def _format(line: Callable[..., str], parts: _Parts) -> str:
    """A held line, formatted; one whose fields cannot be made is written without them
    (never raising: the batch it is in, and the flusher thread, must not be lost)."""
    created, logger, message, make, args = parts
    try:
        return line(created, "INFO", logger, message, make(*args))
    except Exception as error:
        return line(created, "INFO", logger, message, {"fields_error": type(error).__name__})


_HANDLERS: weakref.WeakSet[_StderrHandler] = weakref.WeakSet()  # for ``hold_lines``


def line_writer(logger: logging.Logger) -> Callable[..., None] | None:
    """Where ``logger``'s INFO lines can be written without a ``LogRecord`` (the access
    log's fast path, ``cli.access_lines``): a function of (message, make, args), the
    line's fields being ``make(*args)``, called when the line is formatted (with its
    batch, later: ``args`` must not change meanwhile), when the line would reach this
    module's handler alone; None when it would reach any other handler or filter (a
    test's capture, say), which then needs the record."""
    handler: _StderrHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for found in current.handlers:
            if not isinstance(found, _StderrHandler) or handler is not None or found.filters:
                return None
            handler = found
        current = current.parent if current.propagate else None
    if handler is None or not logger.isEnabledFor(logging.INFO):
        return None
    name, write = logger.name, handler.write_parts

    def write_info(
        message: str, make: Callable[..., dict[str, Any]], args: tuple[Any, ...]
    ) -> None:
        write((time.time(), name, message, make, args))

    return write_info


def hold_lines(on: bool = True) -> None:
    """``serve``: hold access lines for at most ``HOLD_S`` and write them in one go (see
    the module's docstring); off writes what is held at once."""
    for handler in list(_HANDLERS):
        handler.hold = on
        if not on:
            handler.flush()


def configure_logging(verbosity: int = 0, log_format: LogFormat = "auto") -> None:
    """Send the root logger to stderr: INFO, or DEBUG with ``verbosity`` 1 (-v).

    The chatty libraries (aiosqlite, asyncio, SQLAlchemy's engine) stay at WARNING unless
    ``verbosity`` is 2 (-vv). ``log_format``: see the module's docstring; aiohttp's
    access log (``aiohttp.access``) comes out the same way. Calling it again replaces
    the handler it installed before.
    """
    handler = _StderrHandler()
    handler.set_name("booxi-mirror")
    handler.setFormatter(JsonLines() if resolve_format(log_format) == "json" else TextLines())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "booxi-mirror"]:
        handler.hold = getattr(old, "hold", False)
        old.flush()
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
