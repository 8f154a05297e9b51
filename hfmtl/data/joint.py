"""Joint batches: tasks that read the same examples are drawn together as one sampling unit (named
`a+b`), whose rows carry every member's label, so one encoder pass serves all of them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from datasets import Dataset

from hfmtl.config.run_config import RunConfig, SamplingConfig, task_batch_size
from hfmtl.data.arrays import RowArrays
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

    def per_unit(weights: dict[str, float] | None) -> dict[str, float] | None:
        if weights is None:
            return None
        return {unit: sum(weights[task] for task in members) for unit, members in units.items()}

    sampling = config.sampling
    return dataclasses.replace(
        sampling, weights=per_unit(sampling.weights), final_weights=per_unit(sampling.final_weights)
    )


def unit_batch_sizes(config: RunConfig, units: dict[str, list[str]]) -> dict[str, int]:
    """Each unit's batch size: its tasks' own (a joint group's tasks have the same one), else the run's."""
    tasks = {task.name: task for task in config.tasks}
    return {unit: task_batch_size(tasks[members[0]], config.training) for unit, members in units.items()}


def unit_rows(members: list[str], splits: dict[str, Any]) -> RowArrays:
    """The training rows of a unit: one task's, or the merged rows of a joint group."""
    if len(members) == 1:
        return RowArrays.from_dataset(splits[members[0]]["train"])
    return joint_rows(members, [splits[task]["train"] for task in members])


def joint_rows(tasks: Sequence[str], datasets: Sequence[Dataset]) -> RowArrays:
    """Rows of tasks that read the same examples, merged: one `input_ids`, a dict of labels (task → labels)."""
    arrays = [RowArrays.from_dataset(dataset) for dataset in datasets]
    first = arrays[0].input_ids
    for other in arrays[1:]:
        ids = other.input_ids
        if not (np.array_equal(ids.offsets, first.offsets) and np.array_equal(ids.values, first.values)):
            raise DataError(
                f"joint tasks {list(tasks)} do not read the same rows: their training splits differ in length or text"
            )
    labels = {task: rows.labels for task, rows in zip(tasks, arrays, strict=True)}
    return RowArrays(first, labels, arrays[0].token_type_ids)
