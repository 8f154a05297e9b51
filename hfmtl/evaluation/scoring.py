"""Running a model over each task's evaluation rows, gathering across processes, and scoring.

Each process predicts a slice of the rows (longest first, so batches hold similar lengths) and the
(row index, prediction) pairs are gathered as Python objects: every process ends with every prediction
in input order, and no random number is drawn, so evaluating never changes how training continues.
What a prediction is, and how it is scored, is the task kind's (`TaskKind.batch_predictions` and `score`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from datasets import Dataset

from hfmtl.data.collate import Collator
from hfmtl.model.modeling import MultiTaskModel
from hfmtl.tasks import task_kind
from hfmtl.tasks.kind import EvalSet, TaskKind
from hfmtl.tasks.multi_label import tuned_spec


@dataclass(frozen=True)
class TaskResult:
    """A task's metrics and one prediction record per row, in input order."""

    task: str
    metrics: dict[str, Any]
    predictions: list[dict[str, Any]]


def make_eval_set(task: str, kind: str, dataset: Dataset) -> EvalSet:
    """An EvalSet from a tokenized split (as `tokenize_task` returns it), read as its kind reads it."""
    return task_kind(kind).eval_set(task, dataset)


@torch.no_grad()
def evaluate_tasks(
    model: MultiTaskModel,
    sets: Mapping[str, EvalSet],
    collator: Collator,
    accelerator: Accelerator,
    batch_size: int,
    *,
    tune_thresholds: Collection[str] = (),
) -> dict[str, TaskResult]:
    """Predict and score every task; every process returns the same results.

    The multi-label tasks named in `tune_thresholds` are scored with the per-label thresholds that do best on
    these rows, which are also set in the model's config (so the model folder saved next keeps them).
    """
    was_training = model.training
    model.eval()
    specs = {spec.name: spec for spec in model.config.task_specs}
    results = {}
    for task, eval_set in sets.items():
        spec, kind = specs[task], task_kind(specs[task].kind)
        predicted = _predict(model, task, kind, eval_set.rows, collator, accelerator, batch_size)
        if task in tune_thresholds:
            spec = tuned_spec(spec, eval_set, predicted)
            next(entry for entry in model.config.tasks if entry["name"] == task)["thresholds"] = list(spec.thresholds)
        scored = kind.score(eval_set, predicted, spec)
        results[task] = TaskResult(task=task, metrics=scored.metrics, predictions=scored.records)
    model.train(was_training)
    return results


def _predict(
    model: MultiTaskModel,
    task: str,
    kind: TaskKind,
    rows: Sequence[dict[str, Any]],
    collator: Collator,
    accelerator: Accelerator,
    batch_size: int,
) -> list[Any]:
    """One raw prediction per row (`TaskKind.batch_predictions`), in input order."""
    ordered = sorted(rows, key=lambda row: -len(row["input_ids"]))
    mine = ordered[accelerator.process_index :: accelerator.num_processes]
    pairs = []
    for start in range(0, len(mine), batch_size):
        chunk = mine[start : start + batch_size]
        batch = {key: value.to(accelerator.device) for key, value in collator(chunk).items()}
        with accelerator.autocast():
            encoder_inputs = {"token_type_ids": batch["token_type_ids"]} if "token_type_ids" in batch else {}
            logits = model(task, batch["input_ids"], batch["attention_mask"], **encoder_inputs).logits
        values = kind.batch_predictions(logits, batch, chunk)
        pairs.extend(zip((row["index"] for row in chunk), values, strict=True))
    if accelerator.num_processes > 1:
        pairs = gather_object(pairs)
    return [value for _, value in sorted(pairs, key=lambda pair: pair[0])]
