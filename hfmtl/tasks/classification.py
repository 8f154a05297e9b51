"""Sequence classification (e.g. sentiment): one label per text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hfmtl.tasks.labels import label_id
from hfmtl.tasks.rows import read_column, read_text

if TYPE_CHECKING:
    import torch

    from hfmtl.config import TaskConfig

HAS_LABEL_SET = True


def label_values(record: Mapping[str, Any], task: TaskConfig, where: str) -> list[Any]:
    """The raw label values of one row, used to infer the label set."""
    return [read_column(record, task.label_column, where)]


def make_example(record: Mapping[str, Any], task: TaskConfig, labels: Sequence[str], where: str) -> dict[str, Any]:
    """Check one raw row and turn it into `{"text": str, "label": label id}`."""
    text = read_text(record, task.text_column, where)
    return {"text": text, "label": label_id(read_column(record, task.label_column, where), labels, where)}


def tokenize(examples: dict[str, list[Any]], tokenizer: Any, max_length: int) -> dict[str, list[Any]]:
    """Batched `Dataset.map` function: token ids plus the label id."""
    encoded = tokenizer(examples["text"], truncation=True, max_length=max_length)
    return {"input_ids": encoded["input_ids"], "labels": examples["label"]}


def decode(probabilities: torch.Tensor, labels: Sequence[str]) -> dict[str, Any]:
    """(num_labels,) probabilities → the predicted label name and its probability."""
    best = int(probabilities.argmax())
    return {"label": labels[best], "score": float(probabilities[best])}
