"""Per-kind metrics, computed from plain predictions and references.

Each kind has one main metric (accuracy / entity F1 / Pearson); a run's aggregate is their mean, which
selects the best model. NER F1 is entity-level, as CoNLL's conlleval counts it (seqeval).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAIN_METRICS = {"classification": "accuracy", "token_classification": "f1", "regression": "pearson"}


def classification_metrics(predictions: Sequence[int], references: Sequence[int]) -> dict[str, float]:
    """Accuracy and macro-F1 over class ids."""
    from sklearn.metrics import f1_score

    predicted, gold = np.asarray(predictions), np.asarray(references)
    return {
        "accuracy": float((predicted == gold).mean()),
        "macro_f1": float(f1_score(gold, predicted, average="macro", zero_division=0)),
    }


def token_classification_metrics(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Entity-level precision, recall and F1 over BIO tag sequences, plus tag accuracy."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    predicted, gold = [list(p) for p in predictions], [list(r) for r in references]
    flat_predicted = [tag for sentence in predicted for tag in sentence]
    flat_gold = [tag for sentence in gold for tag in sentence]
    return {
        "precision": float(precision_score(gold, predicted, zero_division=0)),
        "recall": float(recall_score(gold, predicted, zero_division=0)),
        "f1": float(f1_score(gold, predicted, zero_division=0)),
        "tag_accuracy": float(np.mean([p == g for p, g in zip(flat_predicted, flat_gold, strict=True)])),
    }


def regression_metrics(predictions: Sequence[float], references: Sequence[float]) -> dict[str, float]:
    """Pearson and Spearman correlation, mean squared and absolute error."""
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


def aggregate(metrics: dict[str, dict[str, float]], kinds: dict[str, str]) -> float:
    """The mean over tasks of each task's main metric."""
    return float(np.mean([metrics[task][MAIN_METRICS[kinds[task]]] for task in metrics]))
