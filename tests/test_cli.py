import json
import logging
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from cli import logs
from cli.demo import DemoStartError
from cli.inspection import InspectError
from cli.main import cli
from cli.options import load_config_or_exit
from mirror import __version__
from mirror.audit import AuditError
from mirror.errors import ConfigError
from mirror.resync import ResyncError
from storage.errors import UserError
from storage.inspection import NotAMirrorError

PARTNER_KEY = "pk-live-7f3a9c2e"
# What every command takes after its name too (``-v`` is listed by its short form first).
GLOBAL_OPTIONS = ["--config", "--log-format"]

SIM_OPTIONS = [
    "--host",
    "--port",
    "--seed",
    "--stores",
    "--staff-per-store",
    "--clients",
    "--page-size",
    "--partner-key",
    "--merchant-key",
    "--webhook-url",
    "--webhook-secret",
    "--signing-secret",
    "--no-rate-limit",
    "--anchor",
    "--dialect",
]


pytestmark = pytest.mark.usefixtures("clean_cli")


def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, prog_name="booxi-mirror", terminal_width=80)


def assert_one_error_line(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]


# Help and version


def test_cli_help_lists_commands() -> None:
    result = run_cli("--help")

    assert result.exit_code == 0
    assert result.output.startswith("Usage: booxi-mirror [OPTIONS] COMMAND [ARGS]...")
    commands = result.output.split("Commands:")[1]
    assert [line.split()[0] for line in commands.strip().splitlines()] == [
        "audit",
        "booking",
        "calendar",
        "clients",
        "config",
        "db",
        "demo",
        "history",
        "inbox",
        "privacy",
        "resync",
        "serve",
        "sim",
        "stats",
        "status",
        "sync",
    ]
    assert "--config FILE" in result.output


def test_cli_version() -> None:
    result = run_cli("--version")

    assert result.exit_code == 0
    assert result.output == f"booxi-mirror, version {__version__}\n"
    assert __version__ == "0.1.0"


def test_sim_help_lists_every_option() -> None:
    result = run_cli("sim", "--help")

    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.splitlines() if line.startswith("  --")]
    assert listed == [*SIM_OPTIONS, *GLOBAL_OPTIONS]


def test_demo_help_says_what_it_starts() -> None:
    result = run_cli("demo", "--help")

    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.splitlines() if line.startswith("  --")]
    assert listed == ["--host", "--port", "--sim-port", "--seed", "--db", *GLOBAL_OPTIONS]
    assert "Run the simulator and the mirror together" in result.output


def test_demo_refuses_one_port_for_both() -> None:
    result = run_cli("demo", "--port", "9000", "--sim-port", "9000")

    assert result.exit_code == 2
    assert "--sim-port" in result.stderr
    assert "must differ from --port" in result.stderr


# config check / config show


def test_config_check_without_file_uses_defaults() -> None:
    result = run_cli("config", "check")

    assert result.exit_code == 0
    assert result.stdout == "config OK: defaults\n"


def test_config_check_with_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[api]\nport = 9000\n")

    result = run_cli("--config", str(path), "config", "check")

    assert result.exit_code == 0
    assert result.stdout == f"config OK: {path}\n"


def test_config_check_reads_config_path_from_env(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[api]\nport = 9000\n")

    result = run_cli("config", "check", env={"BOOXI_MIRROR_CONFIG": str(path)})

    assert result.stdout == f"config OK: {path}\n"


def test_config_check_bad_file_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[sync]\ncalendar_interval_s = -5\n")

    result = run_cli("--config", str(path), "config", "check")

    assert_one_error_line(result, f"{path} [sync] calendar_interval_s = -5: must be greater than 0")


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("missing.toml", None, "cannot read the config file"),
        ("bad.toml", "[sync\n", "not valid TOML"),
        ("typo.toml", "[booxi]\npartner_kye = 'x'\n", "partner_kye: unknown key"),
    ],
)
def test_config_check_unusable_file_is_one_error_line(
    tmp_path: Path, name: str, text: str | None, fragment: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)

    result = run_cli("--config", str(path), "config", "check")

    assert_one_error_line(result, fragment)


def test_config_check_bad_env_var_is_one_error_line() -> None:
    result = run_cli("config", "check", env={"BOOXI_MIRROR_API__PORT": "http"})

    assert_one_error_line(result, "BOOXI_MIRROR_API__PORT='http': must be a whole number")


def test_config_show_prints_effective_config_with_secrets_masked(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[booxi]\npartner_key = "{PARTNER_KEY}"\n[sync]\nmerchant_ids = [4]\n')

    result = run_cli(
        "--config", str(path), "config", "show", env={"BOOXI_MIRROR_SYNC__HORIZON_DAYS": "9"}
    )

    assert result.exit_code == 0
    assert PARTNER_KEY not in result.output
    shown = json.loads(result.stdout)
    assert sorted(shown) == ["api", "booxi", "privacy", "storage", "sync", "webhook"]
    assert shown["booxi"]["partner_key"] == "**********"
    assert shown["webhook"] == {"secret": None, "secret_header": None, "signing_secret": None}
    assert shown["sync"] == {
        "merchant_ids": [4],
        "calendar_interval_s": 300.0,
        "horizon_days": 9,
        "reference_interval_s": 3600.0,
        "history_days": 730,
    }


def test_config_error_from_any_command_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    @click.command("needs-key")
    def needs_key() -> None:
        load_config_or_exit().require_partner_key()

    monkeypatch.setitem(cli.commands, "needs-key", needs_key)

    result = run_cli("needs-key")

    assert_one_error_line(result, "[booxi] partner_key is not set")


@pytest.mark.parametrize(
    "error",
    [ConfigError, NotAMirrorError, AuditError, ResyncError, InspectError, DemoStartError],
    ids=lambda error: error.__name__,
)
def test_user_error_from_any_command_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, error: type[UserError]
) -> None:
    assert issubclass(error, UserError)

    @click.command("refused")
    def refused() -> None:
        raise error("cannot be done: do this instead")

    monkeypatch.setitem(cli.commands, "refused", refused)

    result = run_cli("refused")

    assert_one_error_line(result, "cannot be done: do this instead")


def test_other_errors_are_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    @click.command("broken")
    def broken() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setitem(cli.commands, "broken", broken)

    result = run_cli("broken")

    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)


# Logging set up by the CLI


def test_cli_registers_config_secrets_for_log_redaction(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_cli("config", "check", env={"BOOXI_MIRROR_BOOXI__PARTNER_KEY": PARTNER_KEY})
    assert result.exit_code == 0
    logs.configure_logging()

    logging.getLogger("mirror.test").info(
        "calling with %s", PARTNER_KEY, extra={"key": PARTNER_KEY}
    )

    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "calling with [redacted]"
    assert line["key"] == "[redacted]"


def test_configure_logging_writes_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure_logging()

    logging.getLogger("mirror.poller").info("poll.staff.done", extra={"staff_id": 7})
    logging.getLogger("mirror.poller").debug("not shown at INFO")
    logging.getLogger("aiohttp.access").info("GET /calendar 200", extra={"status": 200})

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["level"], line["logger"], line["message"]) for line in lines] == [
        ("INFO", "mirror.poller", "poll.staff.done"),
        ("INFO", "aiohttp.access", "GET /calendar 200"),
    ]
    assert lines[0]["staff_id"] == 7
    assert lines[1]["status"] == 200
    assert list(lines[0])[:4] == ["timestamp", "level", "logger", "message"]
    assert lines[0]["timestamp"].endswith("Z")


def test_configure_logging_verbose_shows_debug(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure_logging(verbosity=1)
    logs.configure_logging(verbosity=1)  # replaces its handler, no duplicate lines

    logging.getLogger("mirror.client").debug("booxi.request")

    assert len(capsys.readouterr().err.splitlines()) == 1


def test_redact_secrets_covers_tracebacks(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure_logging()
    logs.register_secret(PARTNER_KEY)
    logs.register_secret("abc")  # too short to redact safely: ignored

    try:
        raise ValueError(f"Booxi refused key {PARTNER_KEY}")
    except ValueError:
        logging.getLogger("mirror.client").exception("booxi.failed abc")

    err = capsys.readouterr().err
    assert PARTNER_KEY not in err
    assert "Booxi refused key [redacted]" in err
    assert "booxi.failed abc" in err
