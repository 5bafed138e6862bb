"""The mirror's settings: one frozen, typed ``Config`` built from defaults, a file and the env.

Three layers, later wins: the defaults below, a TOML file, then environment variables named
``BOOXI_MIRROR_<SECTION>__<KEY>`` (case-insensitive), e.g. ``BOOXI_MIRROR_STORAGE__URL``.
An environment value is a plain string that pydantic coerces ("30" for a number), except
for list and table keys, which take JSON: ``BOOXI_MIRROR_SYNC__MERCHANT_IDS='[1, 2]'``.

Every mistake is a ``ConfigError`` whose message is one line naming the source, the
section and key, and the fix; secrets never appear in it, nor in ``repr(config)``.

Public names: ``load_config``, ``resolve_config_path``, ``Config`` and its sections
``BooxiConfig``, ``StorageConfig``, ``SyncConfig``, ``ApiConfig`` (with ``ApiKey``),
``WebhookConfig``, ``PrivacyConfig``; ``CONFIG_ENV`` and ``ENV_PREFIX``.
"""

import base64
import binascii
import json
import os
import tomllib
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import unquote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from mirror.config_messages import (
    describe,
    field_names,
    holds_secret,
    json_example,
    mask_url_password,
    model_in,
)
from mirror.errors import ConfigError

ENV_PREFIX = "BOOXI_MIRROR_"
CONFIG_ENV = "BOOXI_MIRROR_CONFIG"
# Names under the prefix that are not settings: the config file's path, and knobs of the
# test suite such as BOOXI_MIRROR_TEST_POSTGRES_URL (exported by .ci/run).
_NOT_SETTINGS = (CONFIG_ENV, "BOOXI_MIRROR_TEST_")

NonEmptySecret = Annotated[SecretStr, Field(min_length=1)]
# The only databases the mirror runs on: SQLite through aiosqlite, PostgreSQL through asyncpg.
DATABASE_URL_PREFIXES = ("sqlite+aiosqlite:///", "postgresql+asyncpg://")
# Shortest [[api.keys]] key accepted: a guessable key is no key.
MIN_API_KEY_LENGTH = 16


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BooxiConfig(_Section):
    """``[booxi]``: where Booxi is, the partner key, and how hard the mirror may call it."""

    base_url: str = "https://api.booxi.com/booking/v1"
    partner_key: NonEmptySecret | None = None
    requests_per_second: float = Field(default=5.0, gt=0)
    requests_per_minute: int = Field(default=300, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL, e.g. https://api.booxi.eu/booking/v1")
        return value.rstrip("/")


class StorageConfig(_Section):
    """``[storage]``: the database, as an SQLAlchemy async URL.

    A password in the URL is a secret: ``repr`` and JSON dumps mask it.
    """

    url: str = "sqlite+aiosqlite:///booxi-mirror.db"

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError(
                "must be a database URL, e.g. sqlite+aiosqlite:///booxi-mirror.db "
                "or postgresql+asyncpg://user@host/dbname"
            )
        if not value.startswith(DATABASE_URL_PREFIXES):
            scheme = value.partition("://")[0]
            raise ValueError(
                f'"{scheme}" is not supported: use SQLite, sqlite+aiosqlite:///booxi-mirror.db, '
                "or PostgreSQL, postgresql+asyncpg://user@host/dbname"
            )
        return value

    @field_serializer("url", when_used="json")
    def _serialize_url(self, value: str) -> str:
        return mask_url_password(value)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield "url", mask_url_password(self.url)


class SyncConfig(_Section):
    """``[sync]``: which stores to mirror and how often to poll them."""

    merchant_ids: tuple[int, ...] = ()
    calendar_interval_s: float = Field(default=300.0, gt=0)
    horizon_days: int = Field(default=90, ge=1)
    reference_interval_s: float = Field(default=3600.0, gt=0)
    history_days: int = Field(default=730, ge=1, le=36500)


class ApiKey(_Section):
    """One ``[[api.keys]]`` entry: a key that clients of the mirror's API present.

    ``kind``: ``partner`` (the default) is presented as ``Authorization: Bearer`` or
    ``Booxi-PartnerKey``, as a Booxi partner key is; ``merchant`` stands for a store's
    public key (``Booxi-APIKey``): bound to exactly one store, read-only, and let onto
    the routes Booxi opens to that key only (``api.auth``).
    """

    name: str = Field(min_length=1)
    key: NonEmptySecret
    kind: Literal["partner", "merchant"] = "partner"
    merchant_ids: tuple[int, ...] | tuple[Literal["*"]] = ("*",)
    scopes: tuple[Literal["read", "write"], ...] = ("read",)
    retain_pii: bool = True

    @field_validator("merchant_ids", mode="before")
    @classmethod
    def _ids_or_star(cls, value: object) -> object:
        wrong = 'must be a list of store ids, e.g. [1, 2], or ["*"] for every store'
        if not isinstance(value, list | tuple):
            raise ValueError(wrong)
        if "*" in value:
            if len(value) == 1:
                return ("*",)
            raise ValueError('use ["*"] alone for every store, or a list of store ids')
        if not all(isinstance(item, int) and not isinstance(item, bool) for item in value):
            raise ValueError(wrong)
        return tuple(value)

    @field_validator("key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_API_KEY_LENGTH:
            raise ValueError(
                f"must be at least {MIN_API_KEY_LENGTH} characters; make one with: "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("scopes")
    @classmethod
    def _some_scope(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:  # checked here, not with min_length, so a bad item is reported alone
            raise ValueError('must not be empty: give "read", "write" or both')
        return value

    @model_validator(mode="after")
    def _merchant_key_rules(self) -> Self:
        if self.kind != "merchant":
            return self
        if self.merchant_ids == ("*",) or len(self.merchant_ids) != 1:
            raise ValueError(
                f'key "{self.name}" is a merchant key: give exactly one store, '
                "e.g. merchant_ids = [34497]"
            )
        if "write" in self.scopes:
            raise ValueError(
                f'key "{self.name}" is a merchant key, which is read-only: scopes = ["read"]'
            )
        return self

    def allows_merchant(self, merchant_id: int) -> bool:
        """Whether this key may see store ``merchant_id``."""
        return self.merchant_ids == ("*",) or merchant_id in self.merchant_ids


class ApiConfig(_Section):
    """``[api]``: where the mirror's own HTTP API listens, who may call it, and how much.

    Connections (``api.connections``): ``header_timeout_s`` for a new connection's first
    request line and headers, ``keepalive_timeout_s`` for an idle connection between
    requests, at most ``max_connections`` open at once. Fills (``api.fill_guard``): each
    key may make Booxi fetch what the mirror does not hold ``fills_per_minute`` times a
    minute on average, ``fill_burst`` at once. Ready answers (``api.ready``): recent read
    answers kept in memory, at most ``ready_answers_mb`` megabytes of them (0: none).
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    page_size: int = Field(default=50, ge=1, le=500)
    staleness_s: float = Field(default=900.0, gt=0)
    ready_answers_mb: float = Field(default=64.0, ge=0)
    header_timeout_s: float = Field(default=10.0, gt=0)
    keepalive_timeout_s: float = Field(default=15.0, gt=0)
    max_connections: int = Field(default=1000, ge=1)
    fills_per_minute: float = Field(default=30.0, gt=0)
    fill_burst: int = Field(default=10, ge=1)
    keys: tuple[ApiKey, ...] = Field(
        default=(), examples=[[{"name": "tablet", "key": "...", "scopes": ["read"]}]]
    )

    @field_validator("keys")
    @classmethod
    def _unique_keys(cls, keys: tuple[ApiKey, ...]) -> tuple[ApiKey, ...]:
        names: set[str] = set()
        values: set[str] = set()
        for entry in keys:
            if entry.name in names:
                raise ValueError(f'key names must be unique: "{entry.name}" is used twice')
            if entry.key.get_secret_value() in values:
                raise ValueError(f'entry "{entry.name}" repeats the key of an earlier entry')
            names.add(entry.name)
            values.add(entry.key.get_secret_value())
        return keys


class WebhookConfig(_Section):
    """``[webhook]``: how the webhook receiver recognises calls that really come from Booxi."""

    secret: NonEmptySecret | None = None
    secret_header: str | None = Field(default=None, min_length=1, max_length=100)
    signing_secret: NonEmptySecret | None = None

    @field_validator("signing_secret")
    @classmethod
    def _check_signing_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_signing_secret(value.get_secret_value())
        return value


def check_signing_secret(text: str) -> None:
    """Raise ``ValueError`` unless ``text`` is a Standard Webhooks secret (``whsec_`` + base64)."""
    body = text.removeprefix("whsec_")
    try:
        if not body:
            raise binascii.Error
        base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error:
        raise ValueError(
            'must be a Standard Webhooks secret: an optional "whsec_" prefix, then base64'
        ) from None


class PrivacyConfig(_Section):
    """``[privacy]``: how long personal data is kept."""

    retention_days: int | None = Field(default=None, ge=0)


class Config(_Section):
    """All settings. Build it with ``load_config``; pass sections, not the whole, onwards."""

    booxi: BooxiConfig = Field(default_factory=BooxiConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)

    def require_partner_key(self) -> str:
        """The Booxi partner key, or a ``ConfigError`` saying where to set it."""
        if self.booxi.partner_key is None:
            raise ConfigError(
                "[booxi] partner_key is not set: put it in the config file "
                f"or {ENV_PREFIX}BOOXI__PARTNER_KEY"
            )
        return self.booxi.partner_key.get_secret_value()

    def iter_secrets(self) -> Iterator[str]:
        """Every secret value in the config, for log redaction."""
        secrets = [self.booxi.partner_key, self.webhook.secret, self.webhook.signing_secret]
        secrets += [entry.key for entry in self.api.keys]
        for secret in secrets:
            if secret is not None:
                yield secret.get_secret_value()
        if self.webhook.signing_secret is not None:
            yield self.webhook.signing_secret.get_secret_value().removeprefix("whsec_")
        password = urlsplit(self.storage.url).password
        if password:
            yield password
            yield unquote(password)


def resolve_config_path(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> Path | None:
    """The config file to read: ``path``, else ``$BOOXI_MIRROR_CONFIG``, else none."""
    if path is not None:
        return Path(path)
    for name, value in environ.items():
        if name.upper() == CONFIG_ENV and value:
            return Path(value)
    return None


def load_config(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Config:
    """Build the ``Config`` from defaults, the TOML file and ``environ``; see the module doc.

    ``path`` None means ``environ["BOOXI_MIRROR_CONFIG"]`` if set, else defaults only.
    Raises ``ConfigError`` for anything wrong.
    """
    file_path = resolve_config_path(path, environ)
    data = _read_toml(file_path) if file_path is not None else {}
    from_env = _overlay_environ(data, environ)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        source = str(file_path) if file_path is not None else "defaults"
        raise ConfigError(
            describe(exc.errors(include_url=False), Config, source, from_env)
        ) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"{path}: cannot read the config file ({reason}); "
            f"check the path given with --config or {CONFIG_ENV}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid TOML: the file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML: {exc}; see config.example.toml for the format"
        ) from None


# Environment layer


def _overlay_environ(
    data: dict[str, Any], environ: Mapping[str, str]
) -> dict[tuple[str, str], tuple[str, str]]:
    """Put ``BOOXI_MIRROR_<SECTION>__<KEY>`` values into ``data``.

    Returns ``{(section, key): (variable name, raw value)}`` so errors can name the variable.
    """
    sources: dict[tuple[str, str], tuple[str, str]] = {}
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper.startswith(_NOT_SETTINGS):
            continue
        section, separator, key = upper.removeprefix(ENV_PREFIX).lower().partition("__")
        if not separator or not section or not key:
            raise ConfigError(
                f"{name}: not a setting; settings are named {ENV_PREFIX}<SECTION>__<KEY>, "
                f"e.g. {ENV_PREFIX}SYNC__HORIZON_DAYS"
            )
        if section not in Config.model_fields:
            raise ConfigError(
                f"{name}: unknown section [{section}]; valid sections: {field_names(Config)}"
            )
        model = model_in(Config.model_fields[section].annotation) or Config
        field = model.model_fields.get(key)
        if field is None:
            raise ConfigError(
                f"{name}: unknown key in [{section}]; valid keys: {field_names(model)}"
            )
        if (section, key) in sources:
            raise ConfigError(
                f"{name}: [{section}] {key} is also set by {sources[section, key][0]}; set it once"
            )
        raw = environ[name]
        value: Any = raw
        if _takes_json(field.annotation):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                shown = "(secret)" if holds_secret(field.annotation) else repr(raw)
                raise ConfigError(
                    f"{name}={shown}: must be JSON, e.g. {json_example(field)}"
                ) from None
        section_data = data.setdefault(section, {})
        if isinstance(section_data, dict):  # else the file's own error is reported
            section_data[key] = value
        sources[section, key] = (name, raw)
    return sources


def _takes_json(annotation: object) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return typing.get_origin(annotation) in (list, tuple, dict)
