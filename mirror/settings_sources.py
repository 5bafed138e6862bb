"""Where ``Config``'s values come from: the environment and the TOML file.

Both are pydantic-settings sources, and the library does the generic work: the prefix,
``__`` between section and key, case-insensitive names, JSON for list and table keys, and
the order (``Config.settings_customise_sources``: init values, then the environment, then
the file, then the defaults). The subclasses here add only the mirror's rules:

- ``EnvironSource`` reads the ``environ`` mapping it is given, never ``os.environ``. Each
  ``BOOXI_MIRROR_`` name must be ``BOOXI_MIRROR_<SECTION>__<KEY>`` for a real section and
  key, set once; ``BOOXI_MIRROR_CONFIG`` and ``BOOXI_MIRROR_TEST_*`` are not settings.
  It remembers which variable set which key, so errors can name the variable.
- ``TomlFileSource`` reads the file it is given, and one it cannot read is an error (the
  library's skips a missing file).

Both raise ``ConfigError`` with one line naming the variable or the file; a secret's
value is never in it.
"""

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, TomlConfigSettingsSource

from mirror.config_messages import field_names, holds_secret, json_example, model_in, shown_value
from mirror.errors import ConfigError

if TYPE_CHECKING:  # where these live has moved between pydantic-settings releases
    from pydantic_settings.sources.types import ConfigFileSourceType, Traversable

ENV_PREFIX = "BOOXI_MIRROR_"
CONFIG_ENV = "BOOXI_MIRROR_CONFIG"
NESTED_DELIMITER = "__"
# Names under the prefix that are not settings: the config file's path, and knobs of the
# test suite such as BOOXI_MIRROR_TEST_POSTGRES_URL (exported by .ci/run).
_NOT_SETTINGS = (CONFIG_ENV, f"{ENV_PREFIX}TEST_")


class _NotJson(ValueError):
    """A list or table key's value is not JSON (raised where only the key is known)."""

    def __init__(self, key: str, field: FieldInfo) -> None:
        super().__init__(key)
        self.key, self.field = key, field


class EnvironSource(EnvSettingsSource):
    """``BOOXI_MIRROR_<SECTION>__<KEY>`` variables from ``environ``, names case-insensitive."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self.environ = environ
        # (section, key) -> (the variable's name as given, its raw value)
        self.variables: dict[tuple[str, str], tuple[str, str]] = {}
        super().__init__(
            settings_cls,
            case_sensitive=False,
            env_prefix=ENV_PREFIX,
            env_nested_delimiter=NESTED_DELIMITER,
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        """The settings in ``environ``, once each checked; the library reads ``os.environ``."""
        settings: dict[str, str] = {}
        for name in sorted(self.environ):
            upper = name.upper()
            if not upper.startswith(ENV_PREFIX) or upper.startswith(_NOT_SETTINGS):
                continue
            setting = self._setting_named(name)
            if setting in self.variables:
                section, key = setting
                raise ConfigError(
                    f"{name}: [{section}] {key} is also set by {self.variables[setting][0]}; "
                    "set it once"
                )
            self.variables[setting] = (name, self.environ[name])
            # Lower-cased, as the library's own are when case_sensitive is False.
            settings[name.lower()] = self.environ[name]
        return settings

    def _setting_named(self, name: str) -> tuple[str, str]:
        """``(section, key)`` for the variable ``name``, or a ``ConfigError`` if it is none."""
        section, separator, key = (
            name.upper().removeprefix(ENV_PREFIX).lower().partition(NESTED_DELIMITER)
        )
        if not separator or not section or not key:
            raise ConfigError(
                f"{name}: not a setting; settings are named {ENV_PREFIX}<SECTION>__<KEY>, "
                f"e.g. {ENV_PREFIX}SYNC__HORIZON_DAYS"
            )
        sections = self.settings_cls.model_fields
        if section not in sections:
            raise ConfigError(
                f"{name}: unknown section [{section}]; "
                f"valid sections: {field_names(self.settings_cls)}"
            )
        model = model_in(sections[section].annotation)
        if model is not None and key not in model.model_fields:
            raise ConfigError(
                f"{name}: unknown key in [{section}]; valid keys: {field_names(model)}"
            )
        return section, key

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            raise _NotJson(field_name, field) from None

    def prepare_field_value(
        self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool
    ) -> Any:
        try:
            return super().prepare_field_value(field_name, field, value, value_is_complex)
        except _NotJson as exc:  # the library lets it through when JSON is a must
            name, raw = self.variables[field_name, exc.key]
            shown = "(secret)" if holds_secret(exc.field.annotation) else repr(raw)
            raise ConfigError(
                f"{name}={shown}: must be JSON, e.g. {json_example(exc.field)}"
            ) from None


class TomlFileSource(TomlConfigSettingsSource):
    """The TOML config file at ``path``, if one is given."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        self.path = path
        super().__init__(settings_cls, toml_file=path)

    def _read_files(
        self, files: "ConfigFileSourceType | None", deep_merge: bool = False
    ) -> dict[str, Any]:
        # The library reads only paths that are files; the mirror was told to read this one.
        return self._read_file(self.path) if self.path is not None else {}

    def _read_file(self, path: "Path | Traversable") -> dict[str, Any]:
        try:
            return super()._read_file(path)
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

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        for section, value in data.items():
            # The environment's table for this section would replace the file's value and
            # hide its mistake (`sync = 5`), so the mistake is reported here.
            if not isinstance(value, dict) and isinstance(self.current_state.get(section), dict):
                shown = shown_value(self.settings_cls, (section,), value)
                raise ConfigError(f"{self.path} {section}{shown}: must be a table")
        return data
