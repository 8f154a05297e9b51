"""Task metrics as `evaluate` modules defined here, so they work offline (`evaluate.load("seqeval")` fetches
its code from the Hub). Each kind computes its own scores (`TaskKind.scores`) and names its main metric; a
run's aggregate is the mean of the tasks' main metrics, which selects the best model.
Importing this module imports `evaluate` (~5 s): inference code does not import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets
import evaluate
import numpy as np

from hfmtl.tasks import main_metric, task_kind


class TaskMetric(evaluate.Metric):
    """The metrics of one task kind: `TaskMetric("classification").compute(predictions=..., references=...,
    label_names=[...])`. Predictions and references are what the kind's `score` passes (class ids, tag
    sequences, values, multi-hot rows)."""

    def __init__(self, kind: str, **options: Any) -> None:
        self.kind = task_kind(kind)  # read by _info, which the base class calls
        super().__init__(config_name=kind, **options)

    def _info(self) -> evaluate.MetricInfo:
        value_type, is_sequence = self.kind.metric_feature
        feature = datasets.Value(value_type)
        if is_sequence:
            feature = datasets.Sequence(feature)
        return evaluate.MetricInfo(
            description=f"hfmtl metrics of a {self.kind.name} task (main: {self.kind.main_metric}).",
            citation="",
            features=datasets.Features({"predictions": feature, "references": feature}),
        )

    def _compute(
        self, predictions: list[Any], references: list[Any], label_names: Sequence[str] | None = None
    ) -> dict[str, Any]:
        return self.kind.scores(predictions, references, label_names)


def compute_metrics(
    kind: str, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str] | None
) -> dict[str, Any]:
    """Score one task's predictions with its kind's evaluate module (kept in memory: no cache files)."""
    metric = TaskMetric(kind, keep_in_memory=True)
    return metric.compute(predictions=list(predictions), references=list(references), label_names=label_names)


def format_main_metrics(metrics: dict[str, dict[str, Any]], kinds: dict[str, str]) -> str:
    """`sentiment accuracy 0.9000, ner f1 0.8000`: each task's main metric, for people to read."""
    return ", ".join(
        f"{task} {main_metric(kinds[task])} {values[main_metric(kinds[task])]:.4f}" for task, values in metrics.items()
    )


def aggregate(metrics: dict[str, dict[str, Any]], kinds: dict[str, str]) -> float:
    """The mean over tasks of each task's main metric."""
    return float(np.mean([metrics[task][main_metric(kinds[task])] for task in metrics]))
