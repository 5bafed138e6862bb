"""The pydantic-settings sources ``Config`` is built from: the environment and the TOML file.

``tests/test_config.py`` checks ``load_config`` as a whole; these check what each source
hands pydantic-settings and the rules the mirror adds to the library's.
"""

from pathlib import Path

import pytest
from pydantic import SecretStr

from mirror.config import ApiKey, Config, load_config
from mirror.errors import ConfigError
from mirror.settings_sources import EnvironSource, TomlFileSource

PARTNER_KEY = "pk-live-3c9e71aa"
API_KEY = "tablet-key-0f4d2b97"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def env_error(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        EnvironSource(Config, environ)()
    message = str(caught.value)
    assert "\n" not in message
    return message


# Precedence: init values, then the environment, then the file, then the defaults


def test_load_config_env_beats_file_beats_default(tmp_path: Path) -> None:
    path = write(tmp_path, "[sync]\nhorizon_days = 30\ncalendar_interval_s = 60\n")
    environ = {"BOOXI_MIRROR_SYNC__HORIZON_DAYS": "7"}

    sync = load_config(path, environ).sync

    assert (sync.horizon_days, sync.calendar_interval_s, sync.history_days) == (7, 60, 730)


def test_load_config_env_key_keeps_the_files_other_keys_in_that_section(tmp_path: Path) -> None:
    path = write(tmp_path, '[booxi]\nbase_url = "https://api.booxi.eu/booking/v1"\n')

    booxi = load_config(path, {"BOOXI_MIRROR_BOOXI__PARTNER_KEY": PARTNER_KEY}).booxi

    assert booxi.base_url == "https://api.booxi.eu/booking/v1"
    assert booxi.partner_key == SecretStr(PARTNER_KEY)


def test_config_alone_reads_neither_os_environ_nor_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BOOXI_MIRROR_SYNC__HORIZON_DAYS", "2")
    monkeypatch.setenv("sync", '{"horizon_days": 6}')  # what an unprefixed source would take
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "[sync]\nhorizon_days = 3\n")
    (tmp_path / ".env").write_text("BOOXI_MIRROR_SYNC__HORIZON_DAYS=4\n")

    assert Config().sync.horizon_days == 90
    assert Config(sync={"horizon_days": 5}).sync.horizon_days == 5


def test_load_config_reads_the_environ_given_not_os_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOOXI_MIRROR_SYNC__HORIZON_DAYS", "2")
    monkeypatch.setenv("BOOXI_MIRROR_NOT__A_SETTING", "x")
    monkeypatch.setenv("sync", '{"horizon_days": 6}')

    assert load_config(None, {}).sync.horizon_days == 90
    assert load_config(None, {"BOOXI_MIRROR_SYNC__HORIZON_DAYS": "3"}).sync.horizon_days == 3


# The environment source


def test_environ_source_nests_sections_and_decodes_json() -> None:
    environ = {
        "BOOXI_MIRROR_SYNC__HORIZON_DAYS": "14",
        "BOOXI_MIRROR_SYNC__MERCHANT_IDS": "[1, 2]",
        "BOOXI_MIRROR_API__KEYS": f'[{{"name": "crm", "key": "{API_KEY}"}}]',
    }

    assert EnvironSource(Config, environ)() == {
        "sync": {"horizon_days": "14", "merchant_ids": [1, 2]},
        "api": {"keys": [{"name": "crm", "key": API_KEY}]},
    }


def test_environ_source_json_table_list_becomes_api_keys() -> None:
    environ = {"BOOXI_MIRROR_API__KEYS": f'[{{"name": "crm", "key": "{API_KEY}"}}]'}

    assert load_config(None, environ).api.keys == (ApiKey(name="crm", key=SecretStr(API_KEY)),)


def test_environ_source_names_are_case_insensitive() -> None:
    environ = {"Booxi_Mirror_Sync__Horizon_Days": "5", "booxi_mirror_api__port": "9100"}

    config = load_config(None, environ)

    assert (config.sync.horizon_days, config.api.port) == (5, 9100)


def test_environ_source_refuses_one_key_set_twice_in_different_case() -> None:
    message = env_error(
        {"BOOXI_MIRROR_SYNC__HORIZON_DAYS": "3", "booxi_mirror_sync__horizon_days": "4"}
    )

    assert message == (
        "booxi_mirror_sync__horizon_days: [sync] horizon_days is also set by "
        "BOOXI_MIRROR_SYNC__HORIZON_DAYS; set it once"
    )


def test_environ_source_skips_the_config_path_and_test_knobs() -> None:
    environ = {
        "BOOXI_MIRROR_CONFIG": "/etc/booxi-mirror.toml",
        "booxi_mirror_test_postgres_url": "postgresql+asyncpg://x",
        "PATH": "/usr/bin",
    }

    source = EnvironSource(Config, environ)

    assert (source(), source.variables) == ({}, {})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # pydantic-settings alone would take a whole section as JSON, or nest deeper
        (
            "BOOXI_MIRROR_SYNC",
            "BOOXI_MIRROR_SYNC: not a setting; settings are named "
            "BOOXI_MIRROR_<SECTION>__<KEY>, e.g. BOOXI_MIRROR_SYNC__HORIZON_DAYS",
        ),
        (
            "BOOXI_MIRROR_API__KEYS__0__NAME",
            "BOOXI_MIRROR_API__KEYS__0__NAME: unknown key in [api]; valid keys: fill_burst, "
            "fills_per_minute, header_timeout_s, host, keepalive_timeout_s, keys, "
            "max_connections, page_size, port, ready_answers_mb, staleness_s",
        ),
        # and would ignore these
        (
            "booxi_mirror_privacy__retention",
            "booxi_mirror_privacy__retention: unknown key in [privacy]; valid keys: retention_days",
        ),
        (
            "BOOXI_MIRROR_PRIVATE__RETENTION_DAYS",
            "BOOXI_MIRROR_PRIVATE__RETENTION_DAYS: unknown section [private]; "
            "valid sections: api, booxi, privacy, storage, sync, webhook",
        ),
    ],
)
def test_environ_source_refuses_unknown_names(name: str, expected: str) -> None:
    assert env_error({name: '{"horizon_days": 3}'}) == expected


def test_environ_source_bad_json_names_the_variable_not_the_secret() -> None:
    message = env_error({"BOOXI_MIRROR_API__KEYS": f'[{{"name": "a", "key": "{API_KEY}"'})

    assert message == (
        "BOOXI_MIRROR_API__KEYS=(secret): must be JSON, "
        'e.g. [{"name": "tablet", "key": "...", "scopes": ["read"]}]'
    )


def test_environ_source_bad_json_shows_a_plain_value() -> None:
    message = env_error({"BOOXI_MIRROR_SYNC__MERCHANT_IDS": "1,2"})

    assert message == "BOOXI_MIRROR_SYNC__MERCHANT_IDS='1,2': must be JSON, e.g. [1, 2]"


def test_load_config_error_in_env_value_names_the_variable_and_hides_the_secret() -> None:
    environ = {"BOOXI_MIRROR_BOOXI__PARTNER_KEY": PARTNER_KEY, "BOOXI_MIRROR_API__PORT": "x"}

    with pytest.raises(ConfigError) as caught:
        load_config(None, environ)

    assert str(caught.value) == "BOOXI_MIRROR_API__PORT='x': must be a whole number"


def test_secrets_from_the_env_stay_out_of_reprs() -> None:
    environ = {
        "BOOXI_MIRROR_BOOXI__PARTNER_KEY": PARTNER_KEY,
        "BOOXI_MIRROR_API__KEYS": f'[{{"name": "crm", "key": "{API_KEY}"}}]',
    }
    source = EnvironSource(Config, environ)

    config = load_config(None, environ)

    for text in (repr(source), repr(config), str(config), config.model_dump_json()):
        assert PARTNER_KEY not in text
        assert API_KEY not in text


# The file source


def test_toml_file_source_hands_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[sync]\nhorizon_days = 3\n[[api.keys]]\nname = 'a'\n")

    assert TomlFileSource(Config, path)() == {
        "sync": {"horizon_days": 3},
        "api": {"keys": [{"name": "a"}]},
    }
    assert TomlFileSource(Config, None)() == {}


def test_toml_file_source_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        TomlFileSource(Config, tmp_path / "missing.toml")

    assert str(caught.value) == (
        f"{tmp_path}/missing.toml: cannot read the config file (No such file or directory); "
        "check the path given with --config or BOOXI_MIRROR_CONFIG"
    )


def test_toml_file_keys_are_case_sensitive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "[SYNC]\nhorizon_days = 3\n"), {})

    assert str(caught.value).endswith(
        "config.toml [SYNC]: unknown section; valid sections: "
        "api, booxi, privacy, storage, sync, webhook"
    )


def test_a_files_bad_section_is_reported_even_when_the_env_sets_a_key_in_it(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "sync = 5\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path, {"BOOXI_MIRROR_SYNC__HORIZON_DAYS": "3"})

    assert str(caught.value) == f"{path} sync = 5: must be a table"
