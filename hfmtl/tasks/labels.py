"""Label sets: inferring them from data, and matching the values found in files to label ids."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hfmtl.errors import DataError

IGNORE_INDEX = -100
"""The label id the losses skip (PyTorch's cross-entropy default): special tokens, continuation pieces."""


def infer_labels(values: Iterable[Any]) -> tuple[str, ...]:
    """Distinct label values as names, in a stable order: numeric when all are integers (in JSON or as the
    text of a CSV cell), else sorted, with the BIO outside tag `O` first."""
    names = sorted({str(v) for v in values})
    if names and all(_is_integer_text(name) for name in names):
        return tuple(sorted(names, key=int))
    if "O" in names:
        names.remove("O")
        names.insert(0, "O")
    return tuple(names)


def label_id(value: Any, labels: Sequence[str], where: str) -> int:
    """The id of `value`: matched by name; an integer is read as an id only when no label name is a number
    (so `0`/`1` in a file match `labels: [negative, positive]`, but never a wrong numeric label)."""
    if value is None or isinstance(value, (bool, float, list, dict)):
        raise DataError(f"{where}: label {value!r} is not a label name or id; expected one of {list(labels)}")
    text = str(value)
    if text in labels:
        return labels.index(text)
    has_numeric_names = any(_is_integer_text(name) for name in labels)
    if not has_numeric_names and text.isdigit() and int(text) < len(labels):
        return int(text)
    raise DataError(f"{where}: label {value!r} is not in the task's label set {list(labels)}")


def _is_integer_text(text: str) -> bool:
    return text.lstrip("-").isdigit()
