"""The docs keep up with the code: config keys, CLI commands and help, set-up commands,
metric and log event names."""

import ast
import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from api.metrics import Metrics, PollLeaderCollector, ReadyStats, Snapshot
from cli.main import cli
from mirror.budget import BudgetStats
from mirror.config import ApiKey, Config, load_config

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "config.example.toml"
README = ROOT / "README.md"
DEMO_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/booxi-mirror demo"
)
TEST_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/pytest"
PACKAGES = ("api", "cli", "mirror", "simulator", "storage")
LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})


def documented_keys() -> dict[str, set[str]]:
    """Keys per table in config.example.toml, commented-out ones included."""
    keys: dict[str, set[str]] = {}
    table = ""
    for line in EXAMPLE.read_text().splitlines():
        text = line.removeprefix("# ").strip()
        if header := re.fullmatch(r"\[\[?([\w.]+)\]\]?", text):
            table = header.group(1)
        elif key := re.fullmatch(r"(\w+) = .+", text):
            keys.setdefault(table, set()).add(key.group(1))
    return keys


def uncommented_example() -> str:
    """config.example.toml with its commented-out samples switched on."""
    sample = re.compile(r"^# (\[\[[\w.]+\]\]|\w+ = .+)$", re.MULTILINE)
    return sample.sub(r"\1", EXAMPLE.read_text())


def command_paths(group: click.Group, prefix: str = "") -> Iterator[str]:
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        yield path
        if isinstance(command, click.Group):
            yield from command_paths(command, f"{path} ")


def help_text(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="booxi-mirror", terminal_width=80)
    assert result.exit_code == 0
    return result.output


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def exposed_metrics() -> set[str]:
    """Every metric name /metrics exposes, from a scrape with every figure present."""
    now = dt.datetime.now(dt.UTC)
    metrics = Metrics()
    metrics.registry.register(PollLeaderCollector(lambda: True))
    metrics.observe("livez", "GET", 200, 0.001)
    snapshot = Snapshot(
        now,
        store_oldest={1: now},
        latest_webhook_at=now,
        upstream=Counter({"requests.GET": 1, "error.unavailable": 1, "retries": 1}),
        budget=BudgetStats(1, 0.0, {"poll": 1}, {"poll": 0.0}, {"poll": 0}, 0, 0, 0),
        ready=ReadyStats(hits=1, misses=1, drops=1, held=1, bytes=1, waits=1),
        queue_sizes={1: 1},
    )
    text, _ = metrics.render(snapshot)
    names = re.findall(r"^# TYPE (\w+) ", text.decode(), re.MULTILINE)
    return {name for name in names if not name.endswith("_created")}  # a histogram's


def log_events() -> set[str]:
    """The event name (a message's first word) of every log call with a literal message."""
    events: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in LOG_METHODS
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                    and (name := re.match(r"[a-z_]+(\.[a-z_]+)+", node.args[0].value))
                ):
                    events.add(name.group())
    return events


# config.example.toml


@pytest.mark.parametrize("section", sorted(Config.model_fields))
def test_config_example_documents_every_key(section: str) -> None:
    model = getattr(Config(), section)
    fields = set(type(model).model_fields)
    if section == "api":
        fields -= {"keys"}  # documented as [[api.keys]] tables, below

    assert fields <= documented_keys().get(section, set())


def test_config_example_documents_every_api_keys_field() -> None:
    assert set(ApiKey.model_fields) <= documented_keys()["api.keys"]


def test_config_example_loads_cleanly_with_defaults() -> None:
    assert load_config(EXAMPLE, {}) == Config()


def test_config_example_samples_load_when_uncommented(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(uncommented_example())

    config = load_config(path, {})

    assert config.booxi.partner_key is not None
    assert [entry.name for entry in config.api.keys] == ["store-tablets"]
    assert config.webhook.secret is not None
    assert config.webhook.signing_secret is not None
    assert config.privacy.retention_days == 365


# README


def test_readme_mentions_every_cli_command() -> None:
    readme = README.read_text()

    for path in command_paths(cli):
        assert f"booxi-mirror {path}" in readme, path


@pytest.mark.parametrize("args", [(), ("sim",), ("demo",)], ids=["booxi-mirror", "sim", "demo"])
def test_readme_help_output_is_current(args: tuple[str, ...]) -> None:
    command = " ".join(("booxi-mirror", *args, "--help"))

    assert f"$ {command}\n{help_text(*args)}```" in README.read_text()


def test_readme_operations_lists_every_metric_and_no_other() -> None:
    operations = readme_section("Operations")
    listed = set(re.findall(r"booxi_mirror_\w+", operations))

    assert listed == exposed_metrics()


def test_readme_names_every_log_event() -> None:
    readme = README.read_text()
    events = log_events() | {"http.request"}  # the access log's, a constant

    assert {event for event in events if f"`{event}`" not in readme} == set()


def test_readme_setup_has_exactly_the_two_commands() -> None:
    blocks = re.findall(r"```\w*\n(.*?)```", readme_section("Set-up"), re.DOTALL)

    assert [block.strip() for block in blocks] == [DEMO_COMMAND, TEST_COMMAND]


def test_ci_runs_the_readme_test_command_with_pytest_last() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in script.splitlines() if line.startswith((".venv/", "python3"))]

    assert " && ".join([commands[0], commands[1], commands[-1]]) == TEST_COMMAND
    assert "set -euo pipefail" in script


def test_changelog_starts_with_unreleased() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()

    assert changelog.startswith("# Changelog\n\n## Unreleased\n")
