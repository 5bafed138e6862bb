"""The mirror's settings: one frozen, typed ``Config`` built from defaults, a file and the env.

Three layers, later wins: the defaults below, a TOML file, then environment variables named
``BOOXI_MIRROR_<SECTION>__<KEY>`` (case-insensitive), e.g. ``BOOXI_MIRROR_STORAGE__URL``.
An environment value is a plain string that pydantic coerces ("30" for a number), except
for list and table keys, which take JSON: ``BOOXI_MIRROR_SYNC__MERCHANT_IDS='[1, 2]'``.

The layering is pydantic-settings': ``Config`` is a ``BaseSettings`` whose sources, in
``settings_customise_sources``, are the init values, the environment and the TOML file,
in that precedence. The two sources, with the mirror's own rules (an explicit ``environ``,
unknown ``BOOXI_MIRROR_`` names refused), are in ``mirror.settings_sources``; the error
messages are in ``mirror.config_messages``. ``Config()`` alone reads nothing: defaults
and init values only. ``load_config`` is what reads the file and the environment.

Every mistake is a ``ConfigError`` whose message is one line naming the source, the
section and key, and the fix; secrets never appear in it, nor in ``repr(config)``.

Public names: ``load_config``, ``resolve_config_path``, ``Config`` and its sections
``BooxiConfig``, ``StorageConfig``, ``SyncConfig``, ``ApiConfig`` (with ``ApiKey``),
``WebhookConfig``, ``PrivacyConfig``; ``CONFIG_ENV`` and ``ENV_PREFIX``.
"""

import base64
import binascii
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
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
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mirror.config_messages import describe, mask_url_password
from mirror.errors import ConfigError
from mirror.settings_sources import CONFIG_ENV as CONFIG_ENV
from mirror.settings_sources import ENV_PREFIX as ENV_PREFIX
from mirror.settings_sources import EnvironSource, TomlFileSource

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


# The sources ``load_config`` hands to ``Config.settings_customise_sources`` for one build.
_SOURCES: ContextVar[tuple[PydanticBaseSettingsSource, ...]] = ContextVar("_SOURCES", default=())


class Config(BaseSettings):
    """All settings. Build it with ``load_config``; pass sections, not the whole, onwards."""

    # For the file's keys and init values; EnvironSource makes variable names case-insensitive.
    model_config = SettingsConfigDict(frozen=True, extra="forbid", case_sensitive=True)

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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init values, then the environment, then the file: the last two from ``load_config``.

        Outside ``load_config`` (``Config()``, ``Config(sync=...)``) nothing is read: not
        ``os.environ``, no ``.env`` file, no secrets directory.
        """
        return (init_settings, *_SOURCES.get())

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
    file = TomlFileSource(Config, file_path)  # read first: a bad file is the first error
    env = EnvironSource(Config, environ)
    token = _SOURCES.set((env, file))
    try:
        return Config()
    except ValidationError as exc:
        source = str(file_path) if file_path is not None else "defaults"
        errors = exc.errors(include_url=False)
        raise ConfigError(describe(errors, Config, source, env.variables)) from None
    finally:
        _SOURCES.reset(token)
