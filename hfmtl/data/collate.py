"""Dynamic padding: each batch is padded to its own longest row, not to the model's maximum length."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from hfmtl.tasks.labels import IGNORE_INDEX


@dataclass(frozen=True)
class Collator:
    """Turns tokenized rows of one task into `input_ids`, `attention_mask` and `labels` tensors (and
    `token_type_ids`, for rows of sentence pairs).

    Sequence-level labels become a (batch,) tensor: int64 for class ids, float32 for regression targets; multi-hot
    rows (lists of floats) a (batch, num_labels) float32 tensor.
    Token-level labels (lists) are padded with IGNORE_INDEX so the loss skips padding. Rows of a joint batch
    carry a dict of labels (task → label), which becomes a dict of tensors.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    """Round the padded length up (8 helps tensor cores under mixed precision)."""

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        length = padded_length([len(row["input_ids"]) for row in rows], self.pad_to_multiple_of)
        input_ids = torch.full((len(rows), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, : len(row["input_ids"])] = torch.tensor(row["input_ids"])
            attention_mask[i, : len(row["input_ids"])] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in rows[0]:  # sentence pairs: which text each token is from; padding reads as 0
            token_types = torch.zeros((len(rows), length), dtype=torch.long)
            for i, row in enumerate(rows):
                token_types[i, : len(row["token_type_ids"])] = torch.tensor(row["token_type_ids"])
            batch["token_type_ids"] = token_types
        if "labels" in rows[0]:
            first = rows[0]["labels"]
            if isinstance(first, dict):
                batch["labels"] = {task: _labels([row["labels"][task] for row in rows], length) for task in first}
            else:
                batch["labels"] = _labels([row["labels"] for row in rows], length)
        return batch


def padded_length(lengths: Sequence[int], multiple: int | None) -> int:
    """The longest length, rounded up to a multiple when asked."""
    longest = max(lengths)
    return longest if not multiple else -(-longest // multiple) * multiple


def _labels(labels: list[Any], length: int) -> torch.Tensor:
    if isinstance(labels[0], list) and isinstance(labels[0][0], float):  # multi-hot rows: (batch, num_labels)
        return torch.tensor(labels, dtype=torch.float32)
    if isinstance(labels[0], list):
        padded = torch.full((len(labels), length), IGNORE_INDEX, dtype=torch.long)
        for i, row in enumerate(labels):
            padded[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return padded
    return torch.tensor(labels, dtype=torch.float32 if isinstance(labels[0], float) else torch.long)
