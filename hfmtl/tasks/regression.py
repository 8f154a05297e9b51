"""Regression (e.g. sentiment intensity): one real-valued target per text, mean squared error."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hfmtl.errors import DataError
from hfmtl.tasks.kind import EvalSet, Scored, TextKind

if TYPE_CHECKING:
    import torch

    from hfmtl.config.run_config import TaskConfig
    from hfmtl.model.modeling import TaskSpec


class Regression(TextKind):
    name = "regression"
    has_label_set = False
    main_metric = "pearson"
    pipeline_tag = "text-classification"  # the Hub has no regression task type; its widget shows the score
    answer_shape = "a float"
    breakdown = None
    metric_feature = ("float64", False)
    softmax_loss = False

    def read_label(self, value: Any, task: TaskConfig, labels: Sequence[str] | None, where: str) -> float:
        try:
            # Text columns (CSV/TSV) hold numbers as strings; booleans are not targets.
            number = math.nan if isinstance(value, bool) or value is None else float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise DataError(f"{where}: regression target '{task.label_column}' must be a finite number, got {value!r}")
        return number

    def tokenize(self, examples: dict[str, list[Any]], tokenizer: Any, max_length: int) -> dict[str, list[Any]]:
        encoded = super().tokenize(examples, tokenizer, max_length)
        return {**encoded, "labels": [float(v) for v in encoded["labels"]]}

    def batch_predictions(
        self, logits: torch.Tensor, batch: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
    ) -> list[float]:
        return logits.float().tolist()  # (batch,)

    def score(self, eval_set: EvalSet, predicted: list[Any], spec: TaskSpec) -> Scored:
        from hfmtl.evaluation.metrics import compute_metrics

        records = [
            {"index": i, "text": text, "gold": gold, "prediction": value}
            for i, (text, gold, value) in enumerate(zip(eval_set.inputs, eval_set.gold, predicted, strict=True))
        ]
        return Scored(compute_metrics(self.name, predicted, eval_set.gold, None), records)

    def scores(
        self, predictions: Sequence[float], references: Sequence[float], label_names: Sequence[str] | None
    ) -> dict[str, Any]:
        """Pearson and Spearman correlation, mean squared and mean absolute error."""
        import numpy as np
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

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits  # the value itself is averaged over windows

    def decode(self, value: torch.Tensor, spec: TaskSpec) -> float:
        return float(value)

    def figure(self, task: str, metrics: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
        from hfmtl.evaluation.plots import scatter_svg

        predicted, gold = [r["prediction"] for r in records], [r["gold"] for r in records]
        return scatter_svg(predicted, gold, f"{task}: predicted vs gold")


REGRESSION = Regression()
