"""Multi-label classification (e.g. emotions): any number of labels per text, one sigmoid per label.

A label is predicted when its probability reaches the label's decision threshold: `threshold` in the task's
config for every label (default 0.5), or `threshold: tuned`: at every evaluation during training, the
threshold with the best F1 on the validation split, per label, which the evaluation scores with and the model
stores (the best model folder keeps those of its evaluation). Rows store their labels as a multi-hot float
vector (one value per label), the target of the head's binary cross-entropy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hfmtl.errors import ConfigError, DataError
from hfmtl.tasks.kind import EvalSet, Scored, TextKind, read_texts
from hfmtl.tasks.labels import label_id

if TYPE_CHECKING:
    import numpy as np
    import torch
    from datasets import Dataset

    from hfmtl.config.run_config import TaskConfig
    from hfmtl.model.modeling import TaskSpec

DEFAULT_THRESHOLD = 0.5
THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))
"""The thresholds `threshold: tuned` tries per label: 0.05, 0.10, ..., 0.95."""


class MultiLabelClassification(TextKind):
    name = "multi_label_classification"
    main_metric = "micro_f1"
    pipeline_tag = "text-classification"
    answer_shape = "[{'label', 'score'}] (every label at or over its threshold, best first)"
    breakdown = "per_label"
    metric_feature = ("int64", True)
    softmax_loss = False

    def check_config(self, task: TaskConfig, where: str) -> None:
        threshold = task.threshold
        if threshold == "tuned" and task.data.validation is None:
            raise ConfigError(f"'{where}.threshold' is 'tuned', which needs a validation split to tune on")
        if threshold is None or threshold == "tuned":
            return
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise ConfigError(
                f"'{where}.threshold' must be a number between 0 and 1 (exclusive) or 'tuned', got {threshold!r}"
            )

    def check_spec(self, spec: TaskSpec) -> str | None:
        problem = super().check_spec(spec)
        if problem is None and spec.thresholds is not None:
            thresholds = spec.thresholds
            if len(thresholds) != len(spec.labels or ()) or not all(0 < t < 1 for t in thresholds):
                return f"needs one threshold in (0, 1) per label, got {list(thresholds)}"
        return problem

    def label_values(self, record: Mapping[str, Any], task: TaskConfig, where: str) -> list[Any]:
        return list(_read_label_list(record, task, where))

    def make_example(
        self, record: Mapping[str, Any], task: TaskConfig, labels: Sequence[str] | None, where: str
    ) -> dict[str, Any]:
        """`{"text": str, "label": [0.0 or 1.0 per label]}` (and `"text_pair"` for a pair task)."""
        names = labels or ()
        hot = [0.0] * len(names)
        for value in _read_label_list(record, task, where):
            hot[label_id(value, names, where)] = 1.0
        return {**read_texts(record, task, where), "label": hot}

    def batch_predictions(
        self, logits: torch.Tensor, batch: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
    ) -> list[list[float]]:
        """Every label's probability, per row."""
        return logits.float().sigmoid().tolist()

    def score(self, eval_set: EvalSet, predicted: list[Any], spec: TaskSpec) -> Scored:
        import numpy as np

        from hfmtl.evaluation.metrics import compute_metrics

        names = list(spec.labels or ())
        probabilities, gold = np.asarray(predicted, dtype=np.float64), np.asarray(eval_set.gold) > 0.5
        chosen = probabilities >= np.asarray(thresholds(spec))
        metrics = compute_metrics(self.name, chosen.astype(int).tolist(), gold.astype(int).tolist(), names)
        records = [
            {
                "index": i,
                "text": text,
                "gold": [name for name, on in zip(names, row_gold, strict=True) if on],
                "prediction": [name for name, on in zip(names, row_chosen, strict=True) if on],
                "scores": {name: float(p) for name, p in zip(names, row_p, strict=True)},
            }
            for i, (text, row_gold, row_chosen, row_p) in enumerate(
                zip(eval_set.inputs, gold, chosen, probabilities, strict=True)
            )
        ]
        return Scored(metrics, records)

    def scores(
        self, predictions: Sequence[Sequence[int]], references: Sequence[Sequence[int]], label_names: Any
    ) -> dict[str, Any]:
        """Micro-F1 (main), macro-F1, micro precision and recall, exact-match ratio (every label of a row
        right), and per-label precision/recall/F1/support, over multi-hot rows."""
        import numpy as np
        from sklearn.metrics import precision_recall_fscore_support

        names = list(label_names or ())
        predicted, gold = np.asarray(predictions, dtype=int), np.asarray(references, dtype=int)
        micro = precision_recall_fscore_support(gold, predicted, average="micro", zero_division=0)
        precision, recall, f1, support = precision_recall_fscore_support(
            gold, predicted, average=None, zero_division=0
        )
        return {
            "micro_f1": float(micro[2]),
            "macro_f1": float(np.mean(f1)),
            "micro_precision": float(micro[0]),
            "micro_recall": float(micro[1]),
            "exact_match": float((predicted == gold).all(axis=1).mean()),
            "per_label": {
                name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
            },
        }

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid()

    def decode(self, probabilities: torch.Tensor, spec: TaskSpec) -> list[dict[str, Any]]:
        """Every label at or over its threshold, with its probability, most probable first."""
        names = spec.labels or ()
        chosen = [
            {"label": name, "score": float(p)}
            for name, p, t in zip(names, probabilities.tolist(), thresholds(spec), strict=True)
            if p >= t
        ]
        return sorted(chosen, key=lambda answer: -answer["score"])

    def init_head(self, head: Any, train: Dataset) -> None:
        """Start each label's output bias at the log-odds of its frequency in the training rows, so that the
        first prediction is the label prior, not 0.5. With AdamW a bias moves about one learning rate per
        step: from 0 it would take most of a run (tens of thousands of steps at 5e-5) to reach the log-odds of
        a rare label (-4 for 2 %), and until then the loss barely falls below the prior's."""
        import torch

        with torch.no_grad():
            head.out.bias.copy_(torch.as_tensor(label_log_odds(train), dtype=head.out.bias.dtype))

    def figure(self, task: str, metrics: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
        from hfmtl.evaluation.plots import bars_svg

        f1 = {name: scores["f1"] for name, scores in metrics["per_label"].items()}
        return bars_svg(f1, f"{task}: F1 per label", "F1")


def label_log_odds(train: Dataset) -> np.ndarray:
    """Per label, the log-odds of its frequency among the rows' multi-hot `labels` (clipped at 1e-4 so
    that a label no row has gives a finite bias)."""
    import numpy as np

    # Summed in chunks: the label matrix of a large corpus need not fit in memory at once.
    chunks = train.select_columns(["labels"]).with_format("numpy").iter(batch_size=65536)
    frequency = sum(chunk["labels"].astype(np.float64).sum(axis=0) for chunk in chunks) / len(train)
    return np.log(np.clip(frequency, 1e-4, 1 - 1e-4) / np.clip(1 - frequency, 1e-4, 1))


def thresholds(spec: TaskSpec) -> tuple[float, ...]:
    """The decision threshold of each label of a multi-label task (the default where the model stores none)."""
    return spec.thresholds or (DEFAULT_THRESHOLD,) * len(spec.labels or ())


def tune_thresholds(probabilities: np.ndarray, gold: np.ndarray) -> tuple[float, ...]:
    """Per label, the threshold of `THRESHOLD_GRID` with the best F1 on (rows, labels) probabilities and
    multi-hot gold; ties go to the threshold nearest 0.5, and a label without any gold row keeps 0.5."""
    import numpy as np

    grid = np.asarray(THRESHOLD_GRID)
    chosen = []
    for label in range(gold.shape[1]):
        truth = gold[:, label] > 0.5
        if not truth.any():
            chosen.append(DEFAULT_THRESHOLD)
            continue
        predicted = probabilities[:, label][None, :] >= grid[:, None]  # (grid, rows)
        true_positives = (predicted & truth).sum(1)
        f1 = 2 * true_positives / (predicted.sum(1) + truth.sum())
        best = np.flatnonzero(np.isclose(f1, f1.max()))
        chosen.append(float(grid[best[np.argmin(np.abs(grid[best] - DEFAULT_THRESHOLD))]]))
    return tuple(chosen)


def tuned_spec(spec: TaskSpec, eval_set: EvalSet, predicted: list[Any]) -> TaskSpec:
    """The task's spec with the thresholds `tune_thresholds` picks on these rows (`batch_predictions` output)."""
    import dataclasses

    import numpy as np

    probabilities, gold = np.asarray(predicted, dtype=np.float64), np.asarray(eval_set.gold)
    return dataclasses.replace(spec, thresholds=tune_thresholds(probabilities, gold))


def _read_label_list(record: Mapping[str, Any], task: TaskConfig, where: str) -> list[Any]:
    from hfmtl.tasks.rows import read_column

    values = read_column(record, task.label_column, where)
    if not isinstance(values, list):
        raise DataError(
            f"{where}: column '{task.label_column}' must be a list of label names, got "
            f"{type(values).__name__} {values!r:.60}"
        )
    return values


MULTI_LABEL_CLASSIFICATION = MultiLabelClassification()
