"""Training rows as flat numpy arrays (ragged token ids and labels), padded into batches without Python lists.

A batch is gathered with a handful of vectorised numpy operations instead of one tensor per row, so the
loop's data side costs little next to a step (and can run in a background thread while a step computes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from datasets import Dataset

from hfmtl.data.collate import IGNORE_INDEX, padded_length


@dataclass(frozen=True)
class Ragged:
    """Variable-length integer rows stored end to end: row i is `values[offsets[i]:offsets[i + 1]]`."""

    values: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_lists(cls, rows: Sequence[Sequence[int]]) -> Ragged:
        lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        values = np.fromiter((v for row in rows for v in row), dtype=np.int64, count=int(offsets[-1]))
        return cls(values, offsets)

    @classmethod
    def from_arrow(cls, column: pa.ChunkedArray) -> Ragged:
        """From an Arrow list column, reading its buffers directly (no Python objects per row)."""
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        offsets = array.offsets.to_numpy().astype(np.int64)
        values = array.values.to_numpy(zero_copy_only=False).astype(np.int64)
        return cls(values[offsets[0] : offsets[-1]], offsets - offsets[0])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def padded(self, indices: np.ndarray, length: int, fill: int) -> np.ndarray:
        """(len(indices), length) int64: the chosen rows left-aligned, `fill` after each row's end."""
        starts, lengths = self.offsets[indices], self.lengths[indices]
        out = np.full((len(indices), length), fill, dtype=np.int64)
        mask = np.arange(length) < lengths[:, None]  # (batch, length): True over each row's real tokens
        # Flat source positions of every real token, row by row: each row's start, then start + 1, ...
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out[mask] = self.values[np.repeat(starts, lengths) + within]
        return out


Labels = np.ndarray | Ragged
"""Sequence-level labels (one int64 class id or float32 value per row, or a float32 row of multi-hot targets),
or token-level ones (ragged)."""


@dataclass(frozen=True)
class RowArrays:
    """One sampling unit's training rows: token ids and labels (a dict task → labels for a joint unit)."""

    input_ids: Ragged
    labels: Labels | dict[str, Labels]
    token_type_ids: Ragged | None = None
    """Which text of a pair each token belongs to (sentence-pair tasks, for encoders that read it)."""

    def __len__(self) -> int:
        return len(self.input_ids.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return self.input_ids.lengths

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> RowArrays:
        """From a tokenized split with `input_ids` and `labels` columns, through Arrow."""
        table = dataset.with_format("arrow")[:]  # the selected rows as one Arrow table (indices applied)
        types = Ragged.from_arrow(table.column("token_type_ids")) if "token_type_ids" in table.column_names else None
        return cls(Ragged.from_arrow(table.column("input_ids")), _labels_from_arrow(table.column("labels")), types)

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]]) -> RowArrays:
        """From plain rows `{"input_ids": [...], "labels": ...}` (labels: a value, a list, or a dict of them)."""
        first = rows[0]["labels"]
        if isinstance(first, dict):
            labels: Any = {task: _labels_from_values([row["labels"][task] for row in rows]) for task in first}
        else:
            labels = _labels_from_values([row["labels"] for row in rows])
        types = Ragged.from_lists([row["token_type_ids"] for row in rows]) if "token_type_ids" in rows[0] else None
        return cls(Ragged.from_lists([row["input_ids"] for row in rows]), labels, types)

    def batch(self, indices: Sequence[int], pad_token_id: int, multiple: int | None = None) -> dict[str, Any]:
        """The padded batch of the chosen rows: `input_ids`, `attention_mask`, `labels` (and `token_type_ids`
        for pairs) as torch tensors."""
        chosen = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[chosen]
        length = padded_length(lengths.tolist(), multiple)
        input_ids = self.input_ids.padded(chosen, length, pad_token_id)
        attention_mask = (np.arange(length) < lengths[:, None]).astype(np.int64)
        batch: dict[str, Any] = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask),
        }
        if self.token_type_ids is not None:
            batch["token_type_ids"] = torch.from_numpy(self.token_type_ids.padded(chosen, length, 0))
        if isinstance(self.labels, dict):
            batch["labels"] = {task: _batch_labels(labels, chosen, length) for task, labels in self.labels.items()}
        else:
            batch["labels"] = _batch_labels(self.labels, chosen, length)
        return batch


def _batch_labels(labels: Labels, chosen: np.ndarray, length: int) -> torch.Tensor:
    if isinstance(labels, Ragged):
        return torch.from_numpy(labels.padded(chosen, length, IGNORE_INDEX))
    return torch.from_numpy(labels[chosen])


def _labels_from_values(values: list[Any]) -> Labels:
    if isinstance(values[0], list) and isinstance(values[0][0], float):  # multi-hot rows of one length
        return np.asarray(values, dtype=np.float32)
    if isinstance(values[0], list):
        return Ragged.from_lists(values)
    return np.asarray(values, dtype=np.float32 if isinstance(values[0], float) else np.int64)


def _labels_from_arrow(column: pa.ChunkedArray) -> Labels:
    is_list = pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
    if is_list and pa.types.is_floating(column.type.value_type):  # multi-hot rows of one length
        array = column.combine_chunks()
        return array.flatten().to_numpy().astype(np.float32).reshape(len(array), -1)
    if is_list:
        return Ragged.from_arrow(column)
    is_float = pa.types.is_floating(column.type)
    return column.to_numpy().astype(np.float32 if is_float else np.int64)
