"""Regression (e.g. sentiment intensity): one real-valued target per text."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hfmtl.errors import DataError
from hfmtl.tasks.rows import read_column, read_text

if TYPE_CHECKING:
    import torch

    from hfmtl.config import TaskConfig

HAS_LABEL_SET = False


def label_values(record: Mapping[str, Any], task: TaskConfig, where: str) -> list[Any]:
    """Regression has no label set to infer."""
    return []


def make_example(record: Mapping[str, Any], task: TaskConfig, labels: Sequence[str], where: str) -> dict[str, Any]:
    """Check one raw row and turn it into `{"text": str, "label": float}`."""
    text = read_text(record, task.text_column, where)
    return {"text": text, "label": _read_target(record, task.label_column, where)}


def tokenize(examples: dict[str, list[Any]], tokenizer: Any, max_length: int) -> dict[str, list[Any]]:
    """Batched `Dataset.map` function: token ids plus the float target."""
    encoded = tokenizer(examples["text"], truncation=True, max_length=max_length)
    return {"input_ids": encoded["input_ids"], "labels": [float(v) for v in examples["label"]]}


def decode(value: torch.Tensor, labels: Sequence[str]) -> float:
    """A 0-d prediction → the predicted value."""
    return float(value)


def _read_target(record: Mapping[str, Any], column: str, where: str) -> float:
    value = read_column(record, column, where)
    try:
        # Text columns (CSV/TSV) hold numbers as strings; booleans are not targets.
        number = math.nan if isinstance(value, bool) or value is None else float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise DataError(f"{where}: regression target '{column}' must be a finite number, got {value!r}")
    return number
