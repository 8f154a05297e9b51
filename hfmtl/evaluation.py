"""Running a model over each task's evaluation rows, gathering across processes, and scoring.

Each process predicts a slice of the rows (longest first, so batches hold similar lengths) and the
(row index, prediction) pairs are gathered as Python objects: every process ends with every prediction
in input order, and no random number is drawn, so evaluating never changes how training continues.
NER is scored per word against the full gold sequence: each prediction goes to the word its sub-token belongs to
(`label_words`), and a word without one (cut off by truncation, or with no sub-token at all) counts as `O`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from datasets import Dataset

from hfmtl.data.collate import IGNORE_INDEX, Collator
from hfmtl.metrics import compute_metrics
from hfmtl.modeling import MultiTaskModel, TaskSpec


@dataclass(frozen=True)
class EvalSet:
    """One task's rows to score, in input order."""

    task: str
    rows: list[dict[str, Any]]
    """Tokenized rows: `input_ids`, `labels`, the row's `index`, and for NER `label_words` (each label's word)."""
    gold: list[Any]
    """The gold answer per row: a label id, a float, or a list of word tag ids."""
    inputs: list[Any]
    """The text (or list of words) per row, for the predictions file."""


@dataclass(frozen=True)
class TaskResult:
    """A task's metrics and one prediction record per row, in input order."""

    task: str
    metrics: dict[str, Any]
    predictions: list[dict[str, Any]]


def make_eval_set(task: str, dataset: Dataset) -> EvalSet:
    """An EvalSet from a tokenized split (as `tokenize_task` returns it)."""
    is_token_level = "tags" in dataset.column_names
    rows = [
        {"input_ids": ids, "labels": labels, "index": index}
        for index, (ids, labels) in enumerate(zip(dataset["input_ids"], dataset["labels"], strict=True))
    ]
    if is_token_level:
        for row, words in zip(rows, dataset["label_words"], strict=True):
            row["label_words"] = words
    gold = dataset["tags"] if is_token_level else dataset["label"]
    inputs = dataset["tokens"] if is_token_level else dataset["text"]
    return EvalSet(task=task, rows=rows, gold=gold, inputs=inputs)


@torch.no_grad()
def evaluate_tasks(
    model: MultiTaskModel,
    sets: Mapping[str, EvalSet],
    collator: Collator,
    accelerator: Accelerator,
    batch_size: int,
) -> dict[str, TaskResult]:
    """Predict and score every task; every process returns the same results."""
    was_training = model.training
    model.eval()
    specs = {spec.name: spec for spec in model.config.task_specs}
    results = {}
    for task, eval_set in sets.items():
        predicted = _predict(model, task, eval_set.rows, collator, accelerator, batch_size)
        results[task] = _score(specs[task], eval_set, predicted)
    model.train(was_training)
    return results


def _predict(
    model: MultiTaskModel,
    task: str,
    rows: Sequence[dict[str, Any]],
    collator: Collator,
    accelerator: Accelerator,
    batch_size: int,
) -> list[Any]:
    """One raw prediction per row, in input order: (class id, probability), a float, or for NER a dict
    word index → (tag id, probability) over the words that kept a sub-token."""
    ordered = sorted(rows, key=lambda row: -len(row["input_ids"]))
    mine = ordered[accelerator.process_index :: accelerator.num_processes]
    pairs = []
    for start in range(0, len(mine), batch_size):
        chunk = mine[start : start + batch_size]
        batch = {key: value.to(accelerator.device) for key, value in collator(chunk).items()}
        with accelerator.autocast():
            logits = model(task, batch["input_ids"], batch["attention_mask"]).logits.float()
        if logits.dim() == 1:  # regression: (batch,)
            values: list[Any] = logits.tolist()
        else:  # (batch, classes) or (batch, seq, tags)
            probabilities, ids = logits.softmax(-1).max(-1)
            values = list(zip(ids.tolist(), probabilities.tolist(), strict=True))
            if logits.dim() == 3:  # keep each word's first sub-token, where the label is not ignored
                pieces = _first_pieces(ids, probabilities, batch["labels"])
                # Keyed by word, not packed in order: a word with no sub-token must not shift the words after it.
                values = [
                    dict(zip(row["label_words"], row_pieces, strict=True))
                    for row, row_pieces in zip(chunk, pieces, strict=True)
                ]
        pairs.extend(zip((row["index"] for row in chunk), values, strict=True))
    if accelerator.num_processes > 1:
        pairs = gather_object(pairs)
    return [value for _, value in sorted(pairs, key=lambda pair: pair[0])]


def _first_pieces(ids: torch.Tensor, probabilities: torch.Tensor, labels: torch.Tensor) -> list[list[tuple]]:
    """Per row, the (tag id, probability) at each word's first sub-token."""
    kept = labels != IGNORE_INDEX
    return [
        list(zip(row_ids[row_kept].tolist(), row_probabilities[row_kept].tolist(), strict=True))
        for row_ids, row_probabilities, row_kept in zip(ids, probabilities, kept, strict=True)
    ]


def _score(spec: TaskSpec, eval_set: EvalSet, predicted: list[Any]) -> TaskResult:
    names = spec.labels
    if spec.kind == "regression":
        metrics = compute_metrics(spec.kind, predicted, eval_set.gold, None)
        records = [
            {"index": i, "text": text, "gold": gold, "prediction": value}
            for i, (text, gold, value) in enumerate(zip(eval_set.inputs, eval_set.gold, predicted, strict=True))
        ]
    elif spec.kind == "classification":
        metrics = compute_metrics(spec.kind, [label for label, _ in predicted], eval_set.gold, names)
        records = [
            {"index": i, "text": text, "gold": names[gold], "prediction": names[label], "score": score}
            for i, (text, gold, (label, score)) in enumerate(
                zip(eval_set.inputs, eval_set.gold, predicted, strict=True)
            )
        ]
    else:
        # Words beyond the truncation point, or with no sub-token, have no prediction: they count as "O".
        predicted_tags = [
            [names[by_word[i][0]] if i in by_word else "O" for i in range(len(gold))]
            for by_word, gold in zip(predicted, eval_set.gold, strict=True)
        ]
        gold_tags = [[names[tag] for tag in gold] for gold in eval_set.gold]
        metrics = compute_metrics(spec.kind, predicted_tags, gold_tags, None)
        records = [
            {"index": i, "tokens": words, "gold": gold, "prediction": tags}
            for i, (words, gold, tags) in enumerate(zip(eval_set.inputs, gold_tags, predicted_tags, strict=True))
        ]
    return TaskResult(task=spec.name, metrics=metrics, predictions=records)
