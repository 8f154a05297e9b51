"""Label sets: inferring them from data, and matching the values found in files to label ids."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hfmtl.errors import DataError


def infer_labels(values: Iterable[Any]) -> tuple[str, ...]:
    """Distinct label values as names, in a stable order: numeric when all are integers, else sorted,
    with the BIO outside tag `O` first."""
    distinct = set(values)
    if distinct and all(isinstance(v, int) and not isinstance(v, bool) for v in distinct):
        return tuple(str(v) for v in sorted(distinct))
    names = sorted({str(v) for v in distinct})
    if "O" in names:
        names.remove("O")
        names.insert(0, "O")
    return tuple(names)


def label_id(value: Any, labels: Sequence[str], where: str) -> int:
    """The id of `value`: matched by name first; an integer (or digit string) naming no label is an id."""
    if value is None or isinstance(value, (bool, float, list, dict)):
        raise DataError(f"{where}: label {value!r} is not a label name or id; expected one of {list(labels)}")
    text = str(value)
    if text in labels:
        return labels.index(text)
    if text.isdigit() and int(text) < len(labels):
        return int(text)
    raise DataError(f"{where}: label {value!r} is not in the task's label set {list(labels)}")
