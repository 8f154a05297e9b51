"""`hfmtl config CONFIG`: the resolved config, each field with its type, default and one-line meaning, read
from the field docstrings of hfmtl/config/run_config.py (the one place they are written)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from functools import cache
from typing import Any

import yaml

from hfmtl.config import run_config as config_module
from hfmtl.config.run_config import RunConfig

INDENT = "  "


@dataclasses.dataclass(frozen=True)
class FieldHelp:
    type: str
    default: str
    meaning: str


@cache
def field_help(cls: type) -> dict[str, FieldHelp]:
    """Each field of a config dataclass: its annotation as written, its default, its docstring's first line."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # the class's statements
    docs = {}
    for statement, following in zip(body, [*body[1:], None], strict=True):
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            is_doc = isinstance(following, ast.Expr) and isinstance(getattr(following, "value", None), ast.Constant)
            text = following.value.value if is_doc else ""
            annotation = ast.unparse(statement.annotation)
            alias = getattr(config_module, annotation, None)  # e.g. SamplingStrategy: show its choices
            annotation = (
                str(alias).replace("typing.", "") if alias is not None and not isinstance(alias, type) else annotation
            )
            docs[statement.target.id] = (annotation, " ".join(str(text).split()))
    fields = {}
    for item in dataclasses.fields(cls):
        annotation, doc = docs.get(item.name, (str(item.type), ""))
        fields[item.name] = FieldHelp(annotation, _default_text(item), _first_sentence(doc))
    return fields


def describe(config: RunConfig) -> str:
    """The config as YAML, every field followed by `# type, default: meaning`."""
    return "\n".join(_lines(config, 0)) + "\n"


def _lines(node: Any, depth: int) -> list[str]:
    lines = []
    helps = field_help(type(node))
    for item in dataclasses.fields(node):
        value, info = getattr(node, item.name), helps[item.name]
        comment = f"  # {info.type}, {info.default}: {info.meaning}" if info.meaning else f"  # {info.type}"
        prefix = INDENT * depth + f"{item.name}:"
        if dataclasses.is_dataclass(value):  # a section: its meaning, then its fields
            lines += [f"{prefix}  # {info.meaning}", *_lines(value, depth + 1)]
        elif item.name == "tasks":
            lines.append(prefix + comment)
            for task in value:
                task_lines = _lines(task, depth + 2)
                lines += [INDENT * (depth + 1) + "- " + task_lines[0].lstrip(), *task_lines[1:]]
        else:
            lines.append(f"{prefix} {_yaml_value(value)}{comment}")
    return lines


def _yaml_value(value: Any) -> str:
    """One value as YAML on one line, quoted where YAML would read it as something else (`no`, `1e-4`)."""
    plain = value if not isinstance(value, tuple) else list(value)
    text = yaml.safe_dump(plain, default_flow_style=True, width=10**9, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _default_text(item: dataclasses.Field) -> str:
    if item.default is not dataclasses.MISSING:
        return f"default {_yaml_value(item.default)}"
    return "required" if item.default_factory is dataclasses.MISSING else "default: its fields' defaults"


def _first_sentence(doc: str) -> str:
    end = re.search(r"(?<!e\.g)(?<!i\.e)\.\s", doc)
    return doc if end is None else doc[: end.start() + 1]


CONFIG_CLASSES = [
    value for value in vars(config_module).values() if dataclasses.is_dataclass(value) and isinstance(value, type)
]
"""Every config section, for tests that check each field has a meaning written."""
