from pathlib import Path

import pytest
from pydantic import SecretStr

from mirror.config import ApiKey, Config, load_config
from mirror.errors import ConfigError

PARTNER_KEY = "pk-live-7f3a9c2e"
API_KEY = "tablet-key-5d1e88b0"
WEBHOOK_SECRET = "hook-secret-91c4"
SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DB_PASSWORD = "db-pass-63b2"
KEY = "abcdef-0123456789"  # [[api.keys]] keys are at least 16 characters
OTHER_KEY = "ghijkl-0123456789"

FULL_TOML = f"""
[booxi]
base_url = "https://api.booxi.eu/booking/v1/"
partner_key = "{PARTNER_KEY}"
requests_per_second = 2.5
requests_per_minute = 120
timeout_s = 4

[storage]
url = "postgresql+asyncpg://mirror:{DB_PASSWORD}@db.internal/booxi"

[sync]
merchant_ids = [11, 12]
calendar_interval_s = 60
horizon_days = 30
reference_interval_s = 600
history_days = 400

[api]
host = "0.0.0.0"
port = 9000
header_timeout_s = 5
keepalive_timeout_s = 30
max_connections = 200
fills_per_minute = 12
fill_burst = 4

[[api.keys]]
name = "tablets"
key = "{API_KEY}"
merchant_ids = [11]
scopes = ["read", "write"]

[[api.keys]]
name = "crm"
key = "crm-key-0a9b8c7d"

[webhook]
secret = "{WEBHOOK_SECRET}"
signing_secret = "{SIGNING_SECRET}"

[privacy]
retention_days = 365
"""
ALL_SECRETS = [PARTNER_KEY, API_KEY, WEBHOOK_SECRET, SIGNING_SECRET, DB_PASSWORD]


def two_keys(first: str, second: str, name: str = "b") -> str:
    """Two [[api.keys]] entries, the first named "a"."""
    entry = '[[api.keys]]\nname = "{}"\nkey = "{}"\n'
    return entry.format("a", first) + entry.format(name, second)


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def config_error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    """The one-line message of the ConfigError that loading ``text`` raises."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    message = str(caught.value)
    assert "\n" not in message
    return message.replace(f"{tmp_path}/", "")


# Loading


def test_load_config_defaults_without_file() -> None:
    config = load_config(None, {})

    assert config == Config()
    assert config.booxi.base_url == "https://api.booxi.com/booking/v1"
    assert config.booxi.partner_key is None
    assert config.booxi.requests_per_second == 5
    assert config.booxi.requests_per_minute == 300
    assert config.booxi.timeout_s == 10
    assert config.storage.url == "sqlite+aiosqlite:///booxi-mirror.db"
    assert config.sync.merchant_ids == ()
    assert config.sync.calendar_interval_s == 300
    assert config.sync.horizon_days == 90
    assert config.sync.reference_interval_s == 3600
    assert config.sync.history_days == 730
    assert (config.api.host, config.api.port, config.api.keys) == ("127.0.0.1", 8080, ())
    assert (config.api.header_timeout_s, config.api.keepalive_timeout_s) == (10, 15)
    assert config.api.max_connections == 1000
    assert (config.api.fills_per_minute, config.api.fill_burst) == (30, 10)
    assert config.webhook.secret is None
    assert config.webhook.signing_secret is None
    assert config.privacy.retention_days is None


def test_load_config_reads_every_key_of_a_full_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL_TOML), {})

    assert config.booxi.base_url == "https://api.booxi.eu/booking/v1"  # trailing / dropped
    assert config.require_partner_key() == PARTNER_KEY
    assert (config.booxi.requests_per_second, config.booxi.requests_per_minute) == (2.5, 120)
    assert config.booxi.timeout_s == 4
    assert config.storage.url == f"postgresql+asyncpg://mirror:{DB_PASSWORD}@db.internal/booxi"
    assert config.sync.model_dump() == {
        "merchant_ids": (11, 12),
        "calendar_interval_s": 60,
        "horizon_days": 30,
        "reference_interval_s": 600,
        "history_days": 400,
    }
    assert (config.api.host, config.api.port) == ("0.0.0.0", 9000)
    assert (config.api.header_timeout_s, config.api.keepalive_timeout_s) == (5, 30)
    assert config.api.max_connections == 200
    assert (config.api.fills_per_minute, config.api.fill_burst) == (12, 4)
    tablets, crm = config.api.keys
    assert tablets == ApiKey(
        name="tablets", key=SecretStr(API_KEY), merchant_ids=(11,), scopes=("read", "write")
    )
    assert crm.merchant_ids == ("*",)
    assert crm.scopes == ("read",)
    assert tablets.allows_merchant(11)
    assert not tablets.allows_merchant(12)
    assert crm.allows_merchant(12)
    assert config.webhook.secret == SecretStr(WEBHOOK_SECRET)
    assert config.webhook.signing_secret == SecretStr(SIGNING_SECRET)
    assert config.privacy.retention_days == 365


def test_load_config_is_frozen() -> None:
    config = load_config(None, {})

    with pytest.raises(ValueError, match="frozen"):
        config.sync.horizon_days = 1  # type: ignore[misc]


def test_load_config_env_overrides_scalar_list_and_nested_key() -> None:
    environ = {
        "BOOXI_MIRROR_BOOXI__PARTNER_KEY": PARTNER_KEY,
        "BOOXI_MIRROR_SYNC__HORIZON_DAYS": "14",
        "BOOXI_MIRROR_SYNC__MERCHANT_IDS": "[1, 2]",
        "booxi_mirror_api__port": "9100",  # names are case-insensitive
        "BOOXI_MIRROR_API__KEYS": f'[{{"name": "crm", "key": "{API_KEY}", "scopes": ["write"]}}]',
        "BOOXI_MIRROR_TEST_POSTGRES_URL": "postgresql+asyncpg://x",  # the test suite's own
        "UNRELATED": "ignored",
    }

    config = load_config(None, environ)

    assert config.require_partner_key() == PARTNER_KEY
    assert config.sync.horizon_days == 14
    assert config.sync.merchant_ids == (1, 2)
    assert config.api.port == 9100
    assert config.api.keys == (
        ApiKey(name="crm", key=SecretStr(API_KEY), merchant_ids=("*",), scopes=("write",)),
    )


def test_load_config_env_wins_over_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[sync]\nhorizon_days = 30\ncalendar_interval_s = 60\n")

    config = load_config(path, {"BOOXI_MIRROR_SYNC__HORIZON_DAYS": "7"})

    assert config.sync.horizon_days == 7
    assert config.sync.calendar_interval_s == 60  # file over default


def test_load_config_file_from_booxi_mirror_config_env(tmp_path: Path) -> None:
    path = write(tmp_path, "[api]\nport = 8181\n")

    config = load_config(None, {"BOOXI_MIRROR_CONFIG": str(path)})

    assert config.api.port == 8181


def test_load_config_explicit_path_wins_over_config_env(tmp_path: Path) -> None:
    chosen = write(tmp_path, "[api]\nport = 8181\n", "chosen.toml")
    other = write(tmp_path, "[api]\nport = 8282\n", "other.toml")

    config = load_config(chosen, {"BOOXI_MIRROR_CONFIG": str(other)})

    assert config.api.port == 8181


def test_load_config_accepts_signing_secret_without_prefix_or_padding(tmp_path: Path) -> None:
    path = write(tmp_path, '[webhook]\nsigning_secret = "c2VjcmV0"\n')
    unpadded = write(tmp_path, '[webhook]\nsigning_secret = "whsec_c2VjcmV0MQ"\n', "b.toml")

    assert load_config(path, {}).webhook.signing_secret == SecretStr("c2VjcmV0")
    assert load_config(unpadded, {}).webhook.signing_secret is not None


# Errors: one line naming the source, section and key, and the fix


def test_load_config_unknown_key_in_file_lists_valid_keys(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[booxi]\npartner_kye = "x"\n')

    assert message == (
        "config.toml [booxi] partner_kye: unknown key; valid keys: base_url, partner_key, "
        "requests_per_minute, requests_per_second, timeout_s"
    )


def test_load_config_unknown_section_lists_sections(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[sink]\nhorizon_days = 3\n")

    assert message == (
        "config.toml [sink]: unknown section; valid sections: "
        "api, booxi, privacy, storage, sync, webhook"
    )


def test_load_config_unknown_key_in_api_keys_entry(tmp_path: Path) -> None:
    message = config_error(tmp_path, f'[[api.keys]]\nname = "a"\nkey = "{KEY}"\nscope = []\n')

    assert message == (
        "config.toml [[api.keys]] #1 scope: unknown key; "
        "valid keys: key, kind, merchant_ids, name, retain_pii, scopes"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "BOOXI_MIRROR_SYNC__HORIZON_DAY",
            "BOOXI_MIRROR_SYNC__HORIZON_DAY: unknown key in [sync]; valid keys: "
            "calendar_interval_s, history_days, horizon_days, merchant_ids, reference_interval_s",
        ),
        (
            "BOOXI_MIRROR_SINK__HORIZON_DAYS",
            "BOOXI_MIRROR_SINK__HORIZON_DAYS: unknown section [sink]; valid sections: "
            "api, booxi, privacy, storage, sync, webhook",
        ),
        (
            "BOOXI_MIRROR_SYNC_HORIZON_DAYS",
            "BOOXI_MIRROR_SYNC_HORIZON_DAYS: not a setting; settings are named "
            "BOOXI_MIRROR_<SECTION>__<KEY>, e.g. BOOXI_MIRROR_SYNC__HORIZON_DAYS",
        ),
    ],
)
def test_load_config_unknown_env_var_is_an_error(name: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {name: "3"})

    assert str(caught.value) == expected


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[sync]\nhorizon_days = "x"\n',
            'config.toml [sync] horizon_days = "x": must be a whole number',
        ),
        (
            "[sync]\nhorizon_days = 1.5\n",
            "config.toml [sync] horizon_days = 1.5: must be a whole number",
        ),
        ("[sync]\nhorizon_days = 0\n", "config.toml [sync] horizon_days = 0: must be at least 1"),
        ("[api]\nhost = 127\n", "config.toml [api] host = 127: must be a string"),
        ("sync = 5\n", "config.toml sync = 5: must be a table"),
        (
            "[privacy]\nretention_days = -1\n",
            "config.toml [privacy] retention_days = -1: must be at least 0",
        ),
        (
            '[booxi]\nbase_url = "ftp://api.booxi.com"\n',
            'config.toml [booxi] base_url = "ftp://api.booxi.com": '
            "must be an http(s) URL, e.g. https://api.booxi.eu/booking/v1",
        ),
        (
            '[storage]\nurl = "booxi.db"\n',
            'config.toml [storage] url = "booxi.db": must be a database URL, '
            "e.g. sqlite+aiosqlite:///booxi-mirror.db or postgresql+asyncpg://user@host/dbname",
        ),
    ],
)
def test_load_config_wrong_type_or_value_names_key_and_fix(
    tmp_path: Path, toml: str, expected: str
) -> None:
    assert config_error(tmp_path, toml) == expected


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("mysql+aiomysql://u:p@db/booxi", "mysql+aiomysql"),
        ("postgresql://u@db/booxi", "postgresql"),  # asyncpg is the driver
        ("postgresql+psycopg://u@db/booxi", "postgresql+psycopg"),
        ("sqlite:///booxi.db", "sqlite"),  # aiosqlite is the driver
        ("sqlite+aiosqlite://", "sqlite+aiosqlite"),  # no file: nothing kept
    ],
)
def test_load_config_refuses_databases_other_than_sqlite_and_postgresql(
    tmp_path: Path, url: str, scheme: str
) -> None:
    message = config_error(tmp_path, f'[storage]\nurl = "{url}"\n')

    shown = url.replace(":p@", ":***@")
    assert message == (
        f'config.toml [storage] url = "{shown}": "{scheme}" is not supported: use SQLite, '
        "sqlite+aiosqlite:///booxi-mirror.db, or PostgreSQL, postgresql+asyncpg://user@host/dbname"
    )


def test_load_config_refuses_an_unsupported_database_from_the_env() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"BOOXI_MIRROR_STORAGE__URL": f"mysql://u:{DB_PASSWORD}@h/db"})

    message = str(caught.value)
    assert message.startswith("BOOXI_MIRROR_STORAGE__URL='mysql://u:***@h/db': \"mysql\" is not")
    assert DB_PASSWORD not in message


@pytest.mark.parametrize("key", ["a", "fifteen-chars-x", "0123456789abcde"])
def test_load_config_refuses_an_api_key_shorter_than_16_characters(
    tmp_path: Path, key: str
) -> None:
    toml = f'[[api.keys]]\nname = "a"\nkey = "{KEY}"\n[[api.keys]]\nname = "b"\nkey = "{key}"\n'

    message = config_error(tmp_path, toml)

    assert message == (
        "config.toml [[api.keys]] #2 key = (secret): must be at least 16 characters; "
        "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )


def test_load_config_refuses_a_short_api_key_from_the_env() -> None:
    environ = {"BOOXI_MIRROR_API__KEYS": '[{"name": "a", "key": "short-key"}]'}

    with pytest.raises(ConfigError) as caught:
        load_config(None, environ)

    assert str(caught.value) == (
        "BOOXI_MIRROR_API__KEYS: [[api.keys]] #1 key = (secret): must be at least 16 "
        "characters; make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )


def test_load_config_accepts_a_16_character_api_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[[api.keys]]\nname = "a"\nkey = "0123456789abcdef"\n')

    assert load_config(path, {}).api.keys[0].key == SecretStr("0123456789abcdef")


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[api]\nheader_timeout_s = 0\n", "header_timeout_s = 0: must be greater than 0"),
        ("[api]\nkeepalive_timeout_s = -1\n", "keepalive_timeout_s = -1: must be greater than 0"),
        ("[api]\nmax_connections = 0\n", "max_connections = 0: must be at least 1"),
        ("[api]\nfills_per_minute = 0\n", "fills_per_minute = 0: must be greater than 0"),
        ("[api]\nfill_burst = 0\n", "fill_burst = 0: must be at least 1"),
    ],
)
def test_load_config_bad_connection_and_fill_limits(
    tmp_path: Path, toml: str, expected: str
) -> None:
    assert config_error(tmp_path, toml) == f"config.toml [api] {expected}"


def test_load_config_negative_interval(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[sync]\ncalendar_interval_s = -5\n")

    assert message == "config.toml [sync] calendar_interval_s = -5: must be greater than 0"


@pytest.mark.parametrize(
    ("port", "fix"), [("0", "must be at least 1"), ("65536", "must be at most 65535")]
)
def test_load_config_bad_port(tmp_path: Path, port: str, fix: str) -> None:
    assert (
        config_error(tmp_path, f"[api]\nport = {port}\n")
        == f"config.toml [api] port = {port}: {fix}"
    )


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[sync]\nmerchant_ids = ["x"]\n',
            'config.toml [sync] merchant_ids[0] = "x": must be a whole number',
        ),
        (
            "[sync]\nmerchant_ids = 5\n",
            "config.toml [sync] merchant_ids = 5: must be a list, e.g. [1, 2]",
        ),
        (
            f'[[api.keys]]\nname = "a"\nkey = "{KEY}"\nmerchant_ids = ["*", 3]\n',
            'config.toml [[api.keys]] #1 merchant_ids = ["*", 3]: '
            'use ["*"] alone for every store, or a list of store ids',
        ),
        (
            f'[[api.keys]]\nname = "a"\nkey = "{KEY}"\nmerchant_ids = ["all"]\n',
            'config.toml [[api.keys]] #1 merchant_ids = ["all"]: '
            'must be a list of store ids, e.g. [1, 2], or ["*"] for every store',
        ),
    ],
)
def test_load_config_bad_merchant_ids(tmp_path: Path, toml: str, expected: str) -> None:
    assert config_error(tmp_path, toml) == expected


def test_load_config_bad_scopes(tmp_path: Path) -> None:
    toml = (
        f'[[api.keys]]\nname = "a"\nkey = "{KEY}"\n[[api.keys]]\nname = "b"\nkey = "{OTHER_KEY}"\n'
    )
    toml += 'scopes = ["read", "admin"]\n'

    message = config_error(tmp_path, toml)

    assert message == "config.toml [[api.keys]] #2 scopes[1] = \"admin\": must be 'read' or 'write'"


def test_load_config_empty_scopes(tmp_path: Path) -> None:
    message = config_error(tmp_path, f'[[api.keys]]\nname = "a"\nkey = "{KEY}"\nscopes = []\n')

    assert message == (
        'config.toml [[api.keys]] #1 scopes = []: must not be empty: give "read", "write" or both'
    )


def test_load_config_duplicate_key_names(tmp_path: Path) -> None:
    toml = f'[[api.keys]]\nname = "tablets"\nkey = "{API_KEY}"\n'
    toml += f'[[api.keys]]\nname = "tablets"\nkey = "{OTHER_KEY}"\n'

    message = config_error(tmp_path, toml)

    assert message == 'config.toml [api] keys: key names must be unique: "tablets" is used twice'


def test_load_config_api_key_missing_key(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[[api.keys]]\nname = "tablets"\n')

    assert message == "config.toml [[api.keys]] #1 key: is required"


def test_load_config_non_base64_signing_secret(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[webhook]\nsigning_secret = "whsec_not base64!"\n')

    assert message == (
        "config.toml [webhook] signing_secret = (secret): must be a Standard Webhooks secret: "
        'an optional "whsec_" prefix, then base64'
    )


def test_load_config_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.toml", {})

    assert str(caught.value) == (
        f"{tmp_path}/missing.toml: cannot read the config file (No such file or directory); "
        "check the path given with --config or BOOXI_MIRROR_CONFIG"
    )


def test_load_config_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path, {})


def test_load_config_invalid_toml(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[sync\nhorizon_days = 3\n")

    assert message.startswith("config.toml: not valid TOML: ")
    assert "line 1" in message


def test_load_config_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[api]\nhost = "\xff"\n')

    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path, {})


def test_load_config_env_error_names_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"BOOXI_MIRROR_SYNC__HORIZON_DAYS": "x"})

    assert str(caught.value) == "BOOXI_MIRROR_SYNC__HORIZON_DAYS='x': must be a whole number"


def test_load_config_env_list_must_be_json() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"BOOXI_MIRROR_SYNC__MERCHANT_IDS": "1,2"})

    assert str(caught.value) == "BOOXI_MIRROR_SYNC__MERCHANT_IDS='1,2': must be JSON, e.g. [1, 2]"


def test_load_config_env_error_inside_json_names_variable_and_entry() -> None:
    environ = {"BOOXI_MIRROR_API__KEYS": f'[{{"name": "a", "key": "{KEY}", "scopes": ["all"]}}]'}

    with pytest.raises(ConfigError) as caught:
        load_config(None, environ)

    assert str(caught.value) == (
        "BOOXI_MIRROR_API__KEYS: [[api.keys]] #1 scopes[0] = \"all\": must be 'read' or 'write'"
    )


def test_load_config_counts_further_problems(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[sync]\ncalendar_interval_s = 0\nhorizon_days = 0\n")

    assert message == (
        "config.toml [sync] calendar_interval_s = 0: must be greater than 0 (and 1 more problem)"
    )


# Secrets stay secret


def test_config_repr_and_str_hide_secrets(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL_TOML), {})

    for text in (repr(config), str(config), config.model_dump_json()):
        for secret in ALL_SECRETS:
            assert secret not in text
    assert "mirror:***@db.internal" in repr(config.storage)


def test_config_iter_secrets_lists_every_secret(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL_TOML), {})

    assert set(ALL_SECRETS) <= set(config.iter_secrets())


@pytest.mark.parametrize(
    ("toml", "environ"),
    [
        ('[booxi]\npartner_key = ""\n', {}),
        (f"[booxi]\npartner_key = {len(PARTNER_KEY)}\n", {}),
        (f"[booxi]\npartner_kye = {PARTNER_KEY!r}\n", {}),
        (f'[webhook]\nsigning_secret = "{WEBHOOK_SECRET}"\n', {}),
        (two_keys(API_KEY, f"{API_KEY}x", name="a"), {}),
        (f'[[api.keys]]\nname = "a"\nkey = "{API_KEY}"\nscopes = ["x"]\n', {}),
        (two_keys(API_KEY, API_KEY), {}),
        (f'[storage]\nurl = "postgresql://u:{DB_PASSWORD}@h/db"\n[sync]\nhorizon_days = "x"\n', {}),
        (f'[storage]\nurl = "u:{DB_PASSWORD}@h/db"\n', {}),
        (f'[storage]\nurl = "u:{DB_PASSWORD}/x@h"\n', {}),
        ("", {"BOOXI_MIRROR_WEBHOOK__SIGNING_SECRET": WEBHOOK_SECRET}),
        ("", {"BOOXI_MIRROR_BOOXI__PARTNER_KEY": PARTNER_KEY, "BOOXI_MIRROR_API__PORT": "x"}),
        ("", {"BOOXI_MIRROR_API__KEYS": f'[{{"name": "a", "key": "{API_KEY}"'}),
        ("", {"BOOXI_MIRROR_API__KEYS": f'[{{"name": "a", "key": "{API_KEY}", "scope": 1}}]'}),
        (
            "",
            {
                "BOOXI_MIRROR_STORAGE__URL": f"postgresql://u:{DB_PASSWORD}@h/db",
                "BOOXI_MIRROR_API__PORT": "x",
            },
        ),
    ],
)
def test_load_config_error_never_shows_a_secret(
    tmp_path: Path, toml: str, environ: dict[str, str]
) -> None:
    message = config_error(tmp_path, toml, environ)

    for secret in ALL_SECRETS:
        assert secret not in message


def test_load_config_repeated_key_value_is_an_error_without_the_value(tmp_path: Path) -> None:
    message = config_error(tmp_path, two_keys(API_KEY, API_KEY))

    assert message == 'config.toml [api] keys: entry "b" repeats the key of an earlier entry'


def test_load_config_secret_env_error_shows_placeholder() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"BOOXI_MIRROR_BOOXI__PARTNER_KEY": ""})

    assert str(caught.value) == "BOOXI_MIRROR_BOOXI__PARTNER_KEY=(secret): must not be empty"


# require_partner_key


def test_require_partner_key_returns_the_key() -> None:
    config = load_config(None, {"BOOXI_MIRROR_BOOXI__PARTNER_KEY": PARTNER_KEY})

    assert config.require_partner_key() == PARTNER_KEY


def test_require_partner_key_says_where_to_set_it() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {}).require_partner_key()

    assert str(caught.value) == (
        "[booxi] partner_key is not set: put it in the config file "
        "or BOOXI_MIRROR_BOOXI__PARTNER_KEY"
    )
