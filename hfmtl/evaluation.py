"""Running a model over every task's validation rows, gathering across processes, and scoring."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from hfmtl.data.collate import IGNORE_INDEX, Collator
from hfmtl.metrics import classification_metrics, regression_metrics, token_classification_metrics
from hfmtl.modeling import MultiTaskModel, TaskSpec


@torch.no_grad()
def evaluate_tasks(
    model: MultiTaskModel,
    rows: Mapping[str, Sequence[Mapping[str, Any]]],
    collator: Collator,
    accelerator: Accelerator,
    batch_size: int,
) -> dict[str, dict[str, float]]:
    """Metrics per task on the given tokenized rows (each process scores its shard; results are gathered)."""
    was_training = model.training
    model.eval()
    specs = {spec.name: spec for spec in model.config.task_specs}
    results = {}
    for task, task_rows in rows.items():
        predictions, references = _predict(model, task, task_rows, collator, accelerator, batch_size)
        results[task] = _score(specs[task], predictions, references)
    model.train(was_training)
    return results


def _predict(
    model: MultiTaskModel,
    task: str,
    rows: Sequence[Mapping[str, Any]],
    collator: Collator,
    accelerator: Accelerator,
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    # Longest first: similar lengths share a batch, so little padding, and memory peaks at the first batch.
    ordered = sorted(rows, key=lambda row: -len(row["input_ids"]))
    loader = accelerator.prepare(DataLoader(ordered, batch_size=batch_size, collate_fn=collator))
    predictions, references = [], []
    for batch in loader:
        with accelerator.autocast():
            logits = model(task, batch["input_ids"], batch["attention_mask"]).logits
        predicted = logits.float() if logits.dim() == 1 else logits.argmax(-1)
        labels = batch["labels"]
        if labels.dim() == 2:  # token-level: padded lengths differ between processes
            predicted = accelerator.pad_across_processes(predicted, dim=1, pad_index=IGNORE_INDEX)
            labels = accelerator.pad_across_processes(labels, dim=1, pad_index=IGNORE_INDEX)
        predicted, labels = accelerator.gather_for_metrics((predicted, labels))
        predictions.extend(predicted.cpu())
        references.extend(labels.cpu())
    return predictions, references


def _score(spec: TaskSpec, predictions: list[torch.Tensor], references: list[torch.Tensor]) -> dict[str, float]:
    if spec.kind == "classification":
        return classification_metrics([int(p) for p in predictions], [int(r) for r in references])
    if spec.kind == "regression":
        return regression_metrics([float(p) for p in predictions], [float(r) for r in references])
    names = spec.labels
    predicted_tags, gold_tags = [], []
    for predicted, gold in zip(predictions, references, strict=True):
        kept = gold != IGNORE_INDEX  # the first sub-token of every word
        predicted_tags.append([names[i] for i in predicted[kept].tolist()])
        gold_tags.append([names[i] for i in gold[kept].tolist()])
    return token_classification_metrics(predicted_tags, gold_tags)
