"""Each task kind's metrics as `evaluate` modules defined here, so they work offline
(`evaluate.load("seqeval")` fetches its code from the Hub).

Each kind has one main metric (accuracy / entity F1 / Pearson); a run's aggregate is their mean, which
selects the best model. NER scores are entity-level in the CoNLL sense: an entity counts only when its type
and both boundaries are right (seqeval's default, conlleval-compatible mode).
Importing this module imports `evaluate` (~5 s): inference code does not import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets
import evaluate
import numpy as np

MAIN_METRICS = {"classification": "accuracy", "token_classification": "f1", "regression": "pearson"}


def classification_scores(
    predictions: Sequence[int], references: Sequence[int], label_names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support, and the confusion matrix (rows: gold)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    ids = list(range(len(label_names)))
    predicted, gold = np.asarray(predictions), np.asarray(references)
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=ids, average=None, zero_division=0
    )
    return {
        "accuracy": float((predicted == gold).mean()),
        "macro_f1": float(np.mean(f1)),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(label_names, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": confusion_matrix(gold, predicted, labels=ids).tolist(),
        "labels": list(label_names),
    }


def token_classification_scores(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """Entity-level precision/recall/F1 overall (micro) and per entity type, plus per-word tag accuracy."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    predicted, gold = [list(p) for p in predictions], [list(r) for r in references]
    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    words = [(p, g) for ps, gs in zip(predicted, gold, strict=True) for p, g in zip(ps, gs, strict=True)]
    return {
        "precision": float(precision_score(gold, predicted, zero_division=0)),
        "recall": float(recall_score(gold, predicted, zero_division=0)),
        "f1": float(f1_score(gold, predicted, zero_division=0)),
        "tag_accuracy": float(np.mean([p == g for p, g in words])) if words else 0.0,
        "per_type": {
            name: {
                "precision": float(v["precision"]),
                "recall": float(v["recall"]),
                "f1": float(v["f1-score"]),
                "support": int(v["support"]),
            }
            for name, v in report.items()
            if not name.endswith(" avg")
        },
    }


def regression_scores(predictions: Sequence[float], references: Sequence[float]) -> dict[str, Any]:
    """Pearson and Spearman correlation, mean squared and mean absolute error."""
    from scipy.stats import pearsonr, spearmanr

    predicted, gold = np.asarray(predictions, dtype=np.float64), np.asarray(references, dtype=np.float64)
    # A constant prediction (an untrained head can give one) has no correlation: call it 0, not NaN.
    is_constant = predicted.std() == 0 or gold.std() == 0
    return {
        "pearson": 0.0 if is_constant else float(pearsonr(predicted, gold).statistic),
        "spearman": 0.0 if is_constant else float(spearmanr(predicted, gold).statistic),
        "mse": float(np.mean((predicted - gold) ** 2)),
        "mae": float(np.mean(np.abs(predicted - gold))),
    }


class ClassificationMetric(evaluate.Metric):
    """Accuracy, macro-F1, per-class scores and confusion matrix. `compute(..., label_names=[...])`."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=self.__doc__,
            citation="",
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions: list[int], references: list[int], label_names: Sequence[str]) -> dict[str, Any]:
        return classification_scores(predictions, references, label_names)


class EntityMetric(evaluate.Metric):
    """Entity-level precision/recall/F1 (CoNLL, seqeval) overall and per type, over BIO tag sequences."""

    def _info(self) -> evaluate.MetricInfo:
        tags = datasets.Sequence(datasets.Value("string"))
        return evaluate.MetricInfo(
            description=self.__doc__,
            citation="Tjong Kim Sang and De Meulder (2003); seqeval (Nakayama, 2018)",
            features=datasets.Features({"predictions": tags, "references": tags}),
        )

    def _compute(self, predictions: list[list[str]], references: list[list[str]]) -> dict[str, Any]:
        return token_classification_scores(predictions, references)


class RegressionMetric(evaluate.Metric):
    """Pearson, Spearman, MSE and MAE."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=self.__doc__,
            citation="",
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
        )

    def _compute(self, predictions: list[float], references: list[float]) -> dict[str, Any]:
        return regression_scores(predictions, references)


METRIC_MODULES: dict[str, type[evaluate.Metric]] = {
    "classification": ClassificationMetric,
    "token_classification": EntityMetric,
    "regression": RegressionMetric,
}


def compute_metrics(
    kind: str, predictions: Sequence[Any], references: Sequence[Any], label_names: Sequence[str] | None
) -> dict[str, Any]:
    """Score one task's predictions with its kind's evaluate module (kept in memory: no cache files)."""
    metric = METRIC_MODULES[kind](keep_in_memory=True)
    extra = {"label_names": list(label_names or [])} if kind == "classification" else {}
    return metric.compute(predictions=list(predictions), references=list(references), **extra)


def format_main_metrics(metrics: dict[str, dict[str, Any]], kinds: dict[str, str]) -> str:
    """`sentiment accuracy 0.9000, ner f1 0.8000`: each task's main metric, for people to read."""
    return ", ".join(
        f"{task} {MAIN_METRICS[kinds[task]]} {values[MAIN_METRICS[kinds[task]]]:.4f}"
        for task, values in metrics.items()
    )


def aggregate(metrics: dict[str, dict[str, Any]], kinds: dict[str, str]) -> float:
    """The mean over tasks of each task's main metric."""
    return float(np.mean([metrics[task][MAIN_METRICS[kinds[task]]] for task in metrics]))
