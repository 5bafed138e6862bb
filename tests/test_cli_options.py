"""Options where people type them (``--config``, ``-v``, ``--log-format`` before or after a
command's name), and log lines for people (text) and for machines (JSON)."""

from __future__ import annotations

import json
import logging
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from cli import logs
from cli.main import cli
from tests.conftest import cli_env

from .test_cli import run_cli
from .test_docs import command_paths

pytestmark = pytest.mark.usefixtures("clean_cli")


def config_file(tmp_path: Path, port: int) -> Path:
    path = tmp_path / f"mirror-{port}.toml"
    path.write_text(f"[api]\nport = {port}\n")
    return path


@pytest.mark.parametrize("path", list(command_paths(cli)))
def test_every_command_takes_the_global_options_after_its_name(path: str) -> None:
    result = run_cli(*path.split(), "--config", "x.toml", "-v", "--log-format", "json", "--help")

    assert result.exit_code == 0, result.output
    for option in ("--config FILE", "-v, --verbose", "--log-format"):
        assert option in result.output


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_before_or_after_the_command_is_the_one_used(tmp_path: Path, where: str) -> None:
    path = str(config_file(tmp_path, 9191))
    args = ["--config", path, "config", "show"] if where == "before" else ["config", "show"]
    args += ["--config", path] if where == "after" else []

    result = run_cli(*args)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["api"]["port"] == 9191


def test_config_after_the_name_wins_over_the_one_before(tmp_path: Path) -> None:
    before, after = config_file(tmp_path, 9191), config_file(tmp_path, 9292)

    result = run_cli("--config", str(before), "config", "show", "--config", str(after))

    assert json.loads(result.stdout)["api"]["port"] == 9292


def test_a_bad_config_after_the_name_is_reported_like_one_before(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[sync]\ncalendar_interval_s = -5\n")

    before = run_cli("--config", str(bad), "status")
    after = run_cli("status", "--config", str(bad))

    assert before.exit_code == after.exit_code == 1
    assert after.stderr == before.stderr
    assert "calendar_interval_s = -5" in after.stderr


def test_verbosity_adds_up_before_and_after_the_name(tmp_path: Path) -> None:
    assert run_cli("config", "check").exit_code == 0
    assert logging.getLogger().level == logging.INFO

    assert run_cli("-v", "config", "check").exit_code == 0
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("sqlalchemy.engine").level == logging.WARNING

    assert run_cli("-v", "config", "check", "-v").exit_code == 0
    assert logging.getLogger("sqlalchemy.engine").level == logging.DEBUG


def test_an_unknown_log_format_is_refused() -> None:
    result = run_cli("config", "check", "--log-format", "xml")

    assert result.exit_code == 2
    assert "'xml' is not one of 'auto', 'json', 'text'" in result.output


# ---- formats ----------------------------------------------------------------------
def _record(**extra: object) -> logging.LogRecord:
    return logging.getLogger("aiohttp.access").makeRecord(
        "aiohttp.access", logging.INFO, "", 0, "http.request", (), None, extra=extra
    )


FIELDS = {"method": "GET", "route": "calendar", "status": 200, "duration_ms": 1.25}


def test_a_json_line_parses_with_its_fields() -> None:
    line = json.loads(logs.JsonLines().format(_record(**FIELDS, note="two words")))

    assert list(line)[:4] == ["timestamp", "level", "logger", "message"]
    assert line["message"] == "http.request"
    assert {k: line[k] for k in FIELDS} == FIELDS
    assert line["note"] == "two words"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"])


TEXT_LINE = re.compile(r"(\d\d:\d\d:\d\d\.\d{3}) (\w+) +(\S+)(?:  (.*))?")
TEXT_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def test_a_text_line_parses_into_time_level_event_and_fields() -> None:
    text = logs.TextLines().format(_record(**FIELDS, note='say "hi"', empty=""))

    found = TEXT_LINE.fullmatch(text)
    assert found is not None, text
    assert found.group(2) == "INFO"
    assert found.group(3) == "http.request"
    fields = dict(TEXT_FIELD.findall(found.group(4)))
    assert fields == {
        "method": "GET",
        "route": "calendar",
        "status": "200",
        "duration_ms": "1.25",
        "note": '"say \\"hi\\""',
        "empty": '""',
    }


def test_text_lines_keep_the_traceback_below(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure_logging(log_format="text")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("mirror.test").exception("job.failed", extra={"job": 3})

    first, *rest = capsys.readouterr().err.splitlines()
    assert TEXT_LINE.fullmatch(first) is not None
    assert first.endswith("job.failed  job=3")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: boom"


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    main, other = pty.openpty()
    try:
        with os.fdopen(os.dup(other), "w") as terminal:
            assert logs.resolve_format("auto", terminal) == "text"
    finally:
        os.close(main)
        os.close(other)
    with open(os.devnull, "w") as file:
        assert logs.resolve_format("auto", file) == "json"
        assert logs.resolve_format("text", file) == "text"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_demo_in_a_terminal_prints_its_banner_and_readable_lines_only(
    tmp_path: Path,
) -> None:
    """20 seconds of ``booxi-mirror demo`` in a pseudo-terminal: the banner, then text
    log lines (no JSON, no line per request)."""
    port, sim_port = _free_port(), _free_port()
    main, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "demo", "--port", str(port), "--sim-port", str(sim_port)]
        + ["--db", str(tmp_path / "demo.db")],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=cli_env(COLUMNS="120"),
        close_fds=True,
    )
    os.close(terminal)
    output = b""
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    output += os.read(main, 65536)
                except OSError:  # the process ended and closed the terminal
                    break
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
            os.close(main)
    text = output.decode(errors="replace").replace("\r\n", "\n")
    assert "booxi-mirror demo: the Booxi simulator and the mirror" in text, text[-2000:]
    assert "mirror API key" in text
    log_lines = [line for line in text.splitlines() if TEXT_LINE.fullmatch(line)]
    assert log_lines, text[-2000:]  # the mirror's own lines (start, polls), readable
    assert not [line for line in text.splitlines() if line.lstrip().startswith("{")]
    assert "http.request" not in text
    assert '"GET /' not in text  # the simulator's access lines neither


def test_the_root_help_names_the_log_formats() -> None:
    result = run_cli("--help")

    assert "--log-format FORMAT" in result.output
    assert isinstance(cli, click.Group)
