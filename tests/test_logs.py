"""The CLI's log handler: lines held and written together under ``serve``, the access
log's fast path (the same line without a ``LogRecord``), redaction on both paths."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from cli import logs

SECRET = "s3cr3t-partner-key-0001"
FIELDS = {
    "method": "GET",
    "route": "calendar",
    "path": "/booking/v1/calendar",
    "status": 200,
    "duration_ms": 1.25,
    "remote": "127.0.0.1",
    "bytes": 51234,
}


@pytest.fixture
def logger(clean_cli: None) -> Iterator[logging.Logger]:
    """A logger of the test's own, outside the logging tree, with the CLI's handler
    (JSON) alone: the fast path needs a logger whose lines reach nothing else, and
    pytest and this suite put handlers on the tree's loggers."""
    logs.configure_logging(log_format="json")
    ours = next(h for h in logging.getLogger().handlers if h.get_name() == "booxi-mirror")
    logging.getLogger().removeHandler(ours)
    logger = logging.Logger("aiohttp.access", logging.INFO)
    logger.addHandler(ours)
    yield logger
    logs.hold_lines(False)


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_access_lines_are_held_until_any_other_line_or_a_flush(
    logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.hold_lines()
    write = logs.line_writer(logger)
    assert write is not None
    write("first", dict, ())
    write("second", dict, ())
    assert capsys.readouterr().err == ""  # held

    logger.info("third")  # any other line writes what is held, then itself
    assert [line["message"] for line in _lines(capsys.readouterr().err)] == [
        "first",
        "second",
        "third",
    ]
    write("fourth", dict, ())
    logs.hold_lines(False)  # off: what is held goes out
    assert [line["message"] for line in _lines(capsys.readouterr().err)] == ["fourth"]
    write("fifth", dict, ())  # and later lines at once
    assert [line["message"] for line in _lines(capsys.readouterr().err)] == ["fifth"]


def test_the_fast_path_writes_the_line_logging_would_write(
    logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.register_secret(SECRET)
    fields = {**FIELDS, "path": f"/booking/v1/{SECRET}"}
    logger.info("http.request", extra=fields)
    write = logs.line_writer(logger)
    assert write is not None
    write("http.request", dict, (fields,))

    through_logging, fast = _lines(capsys.readouterr().err)
    assert through_logging.pop("timestamp") and fast.pop("timestamp")
    assert fast == through_logging
    assert list(fast) == ["level", "logger", "message", *FIELDS]
    assert fast["path"] == "/booking/v1/[redacted]"


def test_the_fast_path_steps_aside_for_any_other_handler(logger: logging.Logger) -> None:
    assert logs.line_writer(logger) is not None
    other = logging.NullHandler()  # a test's log capture, say: it needs the record
    logger.addHandler(other)
    try:
        assert logs.line_writer(logger) is None
    finally:
        logger.removeHandler(other)
    quiet = logging.Logger("aiohttp.access", logging.WARNING)  # and where INFO is dropped
    quiet.handlers = list(logger.handlers)
    assert logs.line_writer(quiet) is None


def test_a_held_line_whose_fields_fail_is_written_without_them_and_keeps_its_batch(
    logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.hold_lines()
    write = logs.line_writer(logger)
    assert write is not None

    def broken() -> dict[str, object]:
        raise ValueError("no fields")

    write("first", dict, ())
    write("broken", broken, ())
    write("third", dict, ())
    logs.hold_lines(False)

    lines = _lines(capsys.readouterr().err)
    assert [line["message"] for line in lines] == ["first", "broken", "third"]
    assert lines[1]["fields_error"] == "ValueError"
