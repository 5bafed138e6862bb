"""The one-line messages of ``ConfigError``: where a bad setting is, what it was, the fix.

``describe`` turns pydantic's errors on the settings model into one line naming the source
(the file, or the environment variable that gave the value), the section and key, and the
fix. Values show as TOML; a secret's shows as ``(secret)``, a database password as ``***``.

Every function takes the root model (``Config``) as an argument, so this module imports
neither ``mirror.config`` nor ``mirror.settings_sources``: both use it.
"""

import json
import typing
from collections.abc import Mapping

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

Loc = tuple[str | int, ...]


def describe(
    errors: list[ErrorDetails],
    root: type[BaseModel],
    source: str,
    from_env: Mapping[tuple[str, str], tuple[str, str]],
) -> str:
    """One line for the first error, naming its source, section and key, and the fix.

    ``from_env`` maps ``(section, key)`` to the variable that set it and its raw value, so an
    error in such a value names the variable instead of ``source``.
    """
    error = errors[0]
    loc = tuple(error["loc"])
    where = _where(root, loc)
    if error["type"] == "extra_forbidden":
        fix, value = _unknown_key(root, loc, error["input"]), ""
    else:
        fix, value = _fix(root, error), shown_value(root, loc, error["input"])
    if len(loc) == 1 and not isinstance(error["input"], dict):
        where = str(loc[0])  # a plain value where a section belongs: `sync = 5`
    more = len(errors) - 1
    if more:
        fix += f" (and {more} more problem{'s' if more > 1 else ''})"
    env = from_env.get((str(loc[0]), str(loc[1]))) if len(loc) >= 2 else None
    if env is None:
        return f"{source} {where}{value}: {fix}"
    name, raw = env
    if len(loc) == 2:
        secret = holds_secret(_annotation_at(root, loc))
        shown = "(secret)" if secret else repr(mask_url_password(raw))
        return f"{name}={shown}: {fix}"
    return f"{name}: {where}{value}: {fix}"


_FIXES = {
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be a string",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
    "tuple_type": "must be a list, e.g. [1, 2]",
    "list_type": "must be a list, e.g. [1, 2]",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "dict_type": "must be a table",
    "missing": "is required",
}


def _fix(root: type[BaseModel], error: ErrorDetails) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind in ("tuple_type", "list_type") and model_in(_annotation_at(root, error["loc"])):
        return "must be a list of tables"
    if kind in _FIXES:
        return _FIXES[kind]
    if kind == "greater_than":
        return f"must be greater than {_number(ctx['gt'])}"
    if kind == "greater_than_equal":
        return f"must be at least {_number(ctx['ge'])}"
    if kind == "less_than_equal":
        return f"must be at most {_number(ctx['le'])}"
    if kind == "literal_error":
        return f"must be {ctx['expected']}"
    if kind == "value_error":
        return str(ctx["error"])
    message = error["msg"]
    return message[:1].lower() + message[1:]


def _unknown_key(root: type[BaseModel], loc: Loc, value: object) -> str:
    model = _model_at(root, loc[:-1])
    if model is root and not isinstance(value, dict):
        return f"not a section: keys go under one; valid sections: {field_names(root)}"
    if model is root:
        return f"unknown section; valid sections: {field_names(root)}"
    return f"unknown key; valid keys: {field_names(model)}"


def _where(root: type[BaseModel], loc: Loc) -> str:
    """``[sync] merchant_ids[0]`` or ``[[api.keys]] #2 scopes`` for a location."""
    tables, path = [str(loc[0])], list[str]()
    head = f"[{loc[0]}]"
    model = model_in(root.model_fields[tables[0]].annotation) if len(loc) > 1 else None
    index = 1
    while index < len(loc):
        part = loc[index]
        if isinstance(part, int):
            if path:
                path[-1] += f"[{part}]"
            index += 1
            continue
        field = model.model_fields.get(part) if model is not None else None
        inner = model_in(field.annotation) if field is not None else None
        nxt = loc[index + 1] if index + 1 < len(loc) else None
        if inner is not None and isinstance(nxt, int):
            tables.append(part)
            head, path, model = f"[[{'.'.join(tables)}]] #{nxt + 1}", [], inner
            index += 2
            continue
        path.append(part)
        model = inner
        index += 1
    return f"{head} {'.'.join(path)}" if path else head


def shown_value(root: type[BaseModel], loc: Loc, value: object) -> str:
    """`` = <value>`` as TOML, or `` = (secret)``, or nothing for tables."""
    if isinstance(value, list | tuple) and all(_is_scalar(item) for item in value):
        shown = f"[{', '.join(_toml_scalar(item) for item in value)}]"
    elif _is_scalar(value):
        shown = _toml_scalar(value)
    else:
        return ""
    return " = (secret)" if holds_secret(_annotation_at(root, loc)) else f" = {shown}"


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


def _toml_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(mask_url_password(value))
        return text if len(text) <= 80 else text[:76] + '..."'
    return str(value)


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def mask_url_password(url: str) -> str:
    """``url`` with the password of its user part, if any, replaced by ``***``."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{separator}{user}:***@{host}"


def json_example(field: FieldInfo) -> str:
    """An example of the JSON a list or table key takes: the field's own, else ``[1, 2]``."""
    return json.dumps(field.examples[0]) if field.examples else "[1, 2]"


# Walking the models along an error location


def field_names(model: type[BaseModel]) -> str:
    return ", ".join(sorted(model.model_fields))


def model_in(annotation: object) -> type[BaseModel] | None:
    """The model class inside an annotation (``ApiKey`` in ``tuple[ApiKey, ...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = model_in(arg)
        if found is not None:
            return found
    return None


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel]:
    model = root
    for part in loc:
        if isinstance(part, str) and part in model.model_fields:
            model = model_in(model.model_fields[part].annotation) or model
    return model


def _annotation_at(root: type[BaseModel], loc: Loc) -> object:
    """The annotation of the last named field along ``loc`` (None if there is none)."""
    model: type[BaseModel] | None = root
    annotation: object = None
    for part in loc:
        if isinstance(part, str) and model is not None and part in model.model_fields:
            annotation = model.model_fields[part].annotation
            model = model_in(annotation)
    return annotation


def holds_secret(annotation: object) -> bool:
    """Whether a value of this annotation is, or holds, a ``SecretStr``."""
    if annotation is SecretStr:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(holds_secret(field.annotation) for field in annotation.model_fields.values())
    return any(holds_secret(arg) for arg in typing.get_args(annotation))
