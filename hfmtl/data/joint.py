"""Joint batches: tasks that read the same examples are drawn together as one sampling unit (named
`a+b`), whose rows carry every member's label, so one encoder pass serves all of them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from datasets import Dataset

from hfmtl.config import RunConfig, SamplingConfig
from hfmtl.data.loading import model_rows
from hfmtl.errors import DataError


def sampling_units(config: RunConfig) -> dict[str, list[str]]:
    """What each draw picks: a task, or a joint group of tasks named `a+b` (in config order)."""
    grouped = {name: group for group in config.joint_tasks for name in group}
    units: dict[str, list[str]] = {}
    for task in config.tasks:
        group = grouped.get(task.name, (task.name,))
        units.setdefault("+".join(group), list(group))
    return units


def unit_sampling(config: RunConfig, units: dict[str, list[str]]) -> SamplingConfig:
    """The sampling config over units: a joint group's fixed weight is the sum of its tasks' weights."""
    if config.sampling.weights is None:
        return config.sampling
    weights = {unit: sum(config.sampling.weights[task] for task in members) for unit, members in units.items()}
    return dataclasses.replace(config.sampling, weights=weights)


def unit_rows(members: list[str], splits: dict[str, Any]) -> list[dict[str, Any]]:
    """The training rows of a unit: one task's, or the merged rows of a joint group."""
    if len(members) == 1:
        return model_rows(splits[members[0]]["train"])
    return joint_rows(members, [splits[task]["train"] for task in members])


def joint_rows(tasks: Sequence[str], datasets: Sequence[Dataset]) -> list[dict[str, Any]]:
    """Rows of tasks that read the same examples, merged: one `input_ids`, a dict of labels (task → label)."""
    columns = [dataset["input_ids"] for dataset in datasets]
    if len({len(ids) for ids in columns}) > 1 or any(ids != columns[0] for ids in columns[1:]):
        raise DataError(
            f"joint tasks {list(tasks)} do not read the same rows: their training splits differ in length or text"
        )
    labels = [dataset["labels"] for dataset in datasets]
    return [
        {"input_ids": ids, "labels": {task: task_labels[i] for task, task_labels in zip(tasks, labels, strict=True)}}
        for i, ids in enumerate(columns[0])
    ]
