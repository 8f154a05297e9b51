"""Building frozen dataclasses from raw YAML data: every value's type checked against the field's
annotation, unknown keys rejected with their dotted name (and the closest known key), overrides applied.

Dataclasses inside lists whose items have a `name` are addressed by it (`tasks.ner.labels`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

import yaml

from hfmtl.errors import ConfigError


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Set `a.b.c=value` in the raw config; the value is parsed as YAML (`1e-4`, `true`, `[a, b]`).

    Tasks are addressed by name: `tasks.sentiment.loss_weight=2`.
    """
    key, separator, text = override.partition("=")
    if not separator or not key.strip():
        raise ConfigError(f"override '{override}' must look like key.path=value")
    value = _override_value(override, text)
    parts = key.strip().split(".")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = _task_by_name(node, part, ".".join(parts[: depth + 1]))
        else:
            node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise ConfigError(f"override '{override}': '{'.'.join(parts[: depth + 1])}' is not a section")
    if isinstance(node, list):
        raise ConfigError(f"override '{override}': name a key inside the task, e.g. tasks.NAME.loss_weight=2")
    node[parts[-1]] = value


def _override_value(override: str, text: str) -> Any:
    """The value of `key=text`: YAML (`1e-4`, `true`, `[a, b]`, `{a: 1}`) where the text reads as a YAML value,
    else the text itself. Text YAML would cut or misread (a ` #` comment, a `: ` making a mapping) stays a string."""
    if not text.strip():
        return None
    if " #" in text or text.startswith("#") or (": " in text and not text.lstrip().startswith("{")):
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        if text.lstrip().startswith(("[", "{")):  # meant as a list or mapping: say what is wrong with it
            problem = str(error).splitlines()[0]
            raise ConfigError(f"override '{override}': the value is not valid YAML ({problem})") from None
        return text


def _task_by_name(tasks: list[Any], name: str, dotted: str) -> dict[str, Any]:
    for task in tasks:
        if isinstance(task, dict) and task.get("name") == name:
            return task
    names = [task.get("name") for task in tasks if isinstance(task, dict)]
    raise ConfigError(f"override '{dotted}': no task named '{name}' (tasks: {', '.join(map(str, names))})")


def build_dataclass(cls: type, raw: Any, path: str = "") -> Any:
    """Make dataclass `cls` from a mapping, rejecting unknown keys and checking each value's type."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"'{path or '<top level>'}' must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{_join(path, close[0])}'?" if close else f"; expected one of: {', '.join(names)}"
            raise ConfigError(f"unknown key '{_join(path, str(key))}'{hint}")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            values[f.name] = _coerce(raw[f.name], hints[f.name], _join(path, f.name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key '{_join(path, f.name)}'")
    return cls(**values)


def _coerce(value: Any, annotation: Any, path: str) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"'{path}' must not be null")
        options = [a for a in args if a is not type(None)]
        for option in options[:-1]:  # e.g. `float | Literal["tuned"]`: the first reading that fits
            try:
                return _coerce(value, option, path)
            except ConfigError:
                continue
        try:
            return _coerce(value, options[-1], path)
        except ConfigError:
            if len(options) == 1:
                raise
        raise ConfigError(f"'{path}' must be {' or '.join(map(_describe, options))}; got {value!r}") from None
    if origin is Literal:
        if isinstance(value, bool):
            # YAML 1.1 reads `no`/`off` as false and `yes`/`on` as true: give a choice field its word back.
            spellings = ("yes", "on", "true") if value else ("no", "off", "false")
            value = next((word for word in spellings if word in args), value)
        if value not in args:
            raise ConfigError(f"'{path}' must be one of {', '.join(map(str, args))}; got '{value}'")
        return value
    if dataclasses.is_dataclass(annotation):
        return build_dataclass(annotation, value, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"'{path}' must be a list, got {type(value).__name__}")
        if dataclasses.is_dataclass(args[0]):  # tasks: name them in paths once their name is known
            return tuple(_coerce(item, args[0], _item_path(path, i, item)) for i, item in enumerate(value))
        return tuple(_coerce(item, args[0], f"{path}.{i}") for i, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"'{path}' must be a mapping, got {type(value).__name__}")
        return {str(k): _coerce(v, args[1], f"{path}.{k}") for k, v in value.items()}
    return _scalar(value, annotation, path)


def _describe(annotation: Any) -> str:
    if typing.get_origin(annotation) is Literal:
        return " or ".join(f"'{arg}'" for arg in typing.get_args(annotation))
    if typing.get_origin(annotation) is dict:
        return "a mapping"
    return {float: "a number", int: "an integer", str: "a string", bool: "true or false"}.get(annotation, "valid")


def _scalar(value: Any, annotation: type, path: str) -> Any:
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{path}' must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{path}' must be an integer, got {value!r}")
        return value
    if annotation is float:
        # YAML reads `5e-5` (no dot) as a string; accept any numeric text rather than surprise the user.
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise ConfigError(f"'{path}' must be a finite number, got {value!r}")
        return number
    if annotation is str:
        if isinstance(value, float):
            # YAML has already turned `1.10` into 1.1 and `1.0` into 1.0: its text is gone, and a label `1.0`
            # would not match the `1` of a data file. Only the user knows which text was meant.
            raise ConfigError(
                f"'{path}' must be a string, got the number {value!r}: write an integer, or the text in quotes"
            )
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ConfigError(f"'{path}' must be a string, got {value!r}")
        return str(value)
    raise TypeError(f"config field {path} has an unsupported annotation {annotation!r}")


def _item_path(path: str, index: int, item: Any) -> str:
    name = item.get("name") if isinstance(item, Mapping) else None
    return f"{path}.{name}" if isinstance(name, str) else f"{path}.{index}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def plain_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    return value
