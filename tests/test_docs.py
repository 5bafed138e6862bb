"""The docs keep up with the code: config keys, CLI commands and help, set-up commands."""

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli.main import cli
from mirror.config import ApiKey, Config, load_config

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "config.example.toml"
README = ROOT / "README.md"
DEMO_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/booxi-mirror demo"
)
TEST_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/pytest"


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
