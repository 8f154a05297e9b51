"""Label sets: inferring them from data, and matching the values found in files to label ids."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from hfmtl.errors import ConfigError, DataError

if TYPE_CHECKING:
    from datasets import Dataset

    from hfmtl.config.run_config import TaskConfig

IGNORE_INDEX = -100
"""The label id the losses skip (PyTorch's cross-entropy default): special tokens, continuation pieces."""


_INTEGER = re.compile(r"-?[0-9]+")  # ASCII digits only: "²" or "١" is a name, never an id


def label_text(value: Any, where: str) -> str:
    """A label value found in a file, as the text it is matched and inferred by. Refused, naming `where`:
    a missing label (None, an empty or blank CSV cell), true/false, a fraction, a list or an object. A
    whole-number float (`1.0`, as pandas writes an integer column that has a gap) is the integer."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if value is None or isinstance(value, (bool, float, list, dict)):
        raise DataError(f"{where}: label {value!r} is not a label name or id (expected a string or an integer)")
    text = str(value)
    if not text.strip():
        raise DataError(f"{where}: the label is empty; every row needs a label (a name or an id)")
    return text


def infer_labels(values: Iterable[Any]) -> tuple[str, ...]:
    """Distinct label texts (from `label_text`) as names, in a stable order: numeric when all are integers
    (in JSON or as the text of a CSV cell), else sorted, with the BIO outside tag `O` first. Names mixed
    with integers are refused: whether `0` is an id or a name of its own cannot be told from the data."""
    names = sorted({str(value) for value in values})
    integers = [name for name in names if _is_integer_text(name)]
    if integers and len(integers) == len(names):
        return tuple(sorted(names, key=int))
    if integers:
        others = [name for name in names if not _is_integer_text(name)]
        raise DataError(
            f"the training labels mix names ({', '.join(others[:5])}) and integers ({', '.join(integers[:5])}); "
            "write every label one way, or list the names under the task's `labels:` so integers are read as ids"
        )
    if "O" in names:
        names.remove("O")
        names.insert(0, "O")
    return tuple(names)


def label_id(value: Any, labels: Sequence[str], where: str) -> int:
    """The id of `value`: matched by name; an integer is read as an id only when no label name is a number
    (so `0`/`1` in a file match `labels: [negative, positive]`, but never a wrong numeric label)."""
    text = label_text(value, where)
    if text in labels:
        return labels.index(text)
    has_numeric_names = any(_is_integer_text(name) for name in labels)
    if not has_numeric_names and _is_integer_text(text) and 0 <= int(text) < len(labels):
        return int(text)
    raise DataError(f"{where}: label {value!r} is not in the task's label set {list(labels)}")


def _is_integer_text(text: str) -> bool:
    return _INTEGER.fullmatch(text) is not None


def class_weights(task: TaskConfig, labels: Sequence[str], train: Dataset) -> tuple[float, ...] | None:
    """Each label's loss weight in label order, from the task's `class_weights` (None: every label weighs 1).

    `balanced` counts the label ids the loss reads in the tokenized training split (a tag per word for NER)
    and weighs label c by n / (labels x count_c), as scikit-learn does; a label absent from training weighs 1
    (it is never a target, so its weight changes nothing)."""
    setting = task.class_weights
    if setting is None:
        return None
    if setting != "balanced":
        unknown = sorted(set(setting) - set(labels))
        if unknown:
            raise ConfigError(
                f"'tasks.{task.name}.class_weights' names {unknown}, which are not labels of the task "
                f"({', '.join(labels)})"
            )
        return tuple(float(setting.get(name, 1.0)) for name in labels)
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    counts = np.zeros(len(labels), dtype=np.int64)
    for chunk in train.select_columns(["labels"]).with_format("arrow").iter(batch_size=65536):
        column = chunk.column("labels")
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):  # one id per word (NER)
            column = pc.list_flatten(column)
        ids = column.to_numpy().astype(np.int64)
        counts += np.bincount(ids[ids >= 0], minlength=len(labels))[: len(labels)]
    total = counts.sum()
    return tuple(float(total / (len(labels) * count)) if count else 1.0 for count in counts)
