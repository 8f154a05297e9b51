"""Sequence classification (e.g. sentiment): one label per text, softmax over the labels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hfmtl.tasks.kind import EvalSet, Scored, TextKind
from hfmtl.tasks.labels import label_id

if TYPE_CHECKING:
    import torch

    from hfmtl.config.run_config import TaskConfig
    from hfmtl.model.modeling import TaskSpec


class Classification(TextKind):
    name = "classification"
    main_metric = "accuracy"
    pipeline_tag = "text-classification"
    answer_shape = "{'label', 'score'}"
    breakdown = "per_class"
    metric_feature = ("int64", False)
    softmax_loss = True

    def read_label(self, value: Any, task: TaskConfig, labels: Sequence[str] | None, where: str) -> int:
        return label_id(value, labels or (), where)

    def batch_predictions(
        self, logits: torch.Tensor, batch: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
    ) -> list[tuple[int, float]]:
        """(class id, its probability) per row."""
        probabilities, ids = logits.float().softmax(-1).max(-1)
        return list(zip(ids.tolist(), probabilities.tolist(), strict=True))

    def score(self, eval_set: EvalSet, predicted: list[Any], spec: TaskSpec) -> Scored:
        from hfmtl.evaluation.metrics import compute_metrics

        names = list(spec.labels or ())
        metrics = compute_metrics(self.name, [label for label, _ in predicted], eval_set.gold, names)
        records = [
            {"index": i, "text": text, "gold": names[gold], "prediction": names[label], "score": score}
            for i, (text, gold, (label, score)) in enumerate(
                zip(eval_set.inputs, eval_set.gold, predicted, strict=True)
            )
        ]
        return Scored(metrics, records)

    def scores(
        self, predictions: Sequence[int], references: Sequence[int], label_names: Sequence[str] | None
    ) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class precision/recall/F1/support, and the confusion matrix (rows: gold)."""
        import numpy as np
        from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

        names = list(label_names or ())
        ids = list(range(len(names)))
        predicted, gold = np.asarray(predictions), np.asarray(references)
        precision, recall, f1, support = precision_recall_fscore_support(
            gold, predicted, labels=ids, average=None, zero_division=0
        )
        return {
            "accuracy": float((predicted == gold).mean()),
            "macro_f1": float(np.mean(f1)),
            "per_class": {
                name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
            },
            "confusion_matrix": confusion_matrix(gold, predicted, labels=ids).tolist(),
            "labels": names,
        }

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(-1)

    def decode(self, probabilities: torch.Tensor, spec: TaskSpec) -> dict[str, Any]:
        """(num_labels,) probabilities → the predicted label name and its probability."""
        best = int(probabilities.argmax())
        return {"label": (spec.labels or ())[best], "score": float(probabilities[best])}

    def figure(self, task: str, metrics: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
        from hfmtl.evaluation.plots import confusion_matrix_svg

        return confusion_matrix_svg(metrics["confusion_matrix"], metrics["labels"], f"{task}: confusion matrix")


CLASSIFICATION = Classification()
