"""The task heads: pooled text to class logits, a value or per-label logits, every token to tag logits, each
with its loss, and its `soft_loss` against a teacher's logits for distillation (Hinton et al. 2015: the KL
divergence of temperature-softened distributions, times T^2 so that its gradients keep their size).

Like modeling.py, this file imports only torch, so that it is published beside it as remote code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100
"""Label of positions the loss skips (padding, special tokens, continuation sub-tokens)."""


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """(batch, seq, hidden) → (batch, hidden): the first token, or the mean over real tokens."""
    if how == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class SoftmaxLoss:
    """Cross-entropy over the labels, with the task's label smoothing and per-label weights (`TaskSpec`)."""

    label_smoothing: float = 0.0
    class_weights: tuple[float, ...] | None = None
    """Plain floats rather than a buffer, so that the head's state dict stays what it was without them."""

    def set_loss_options(self, label_smoothing: float = 0.0, class_weights: Sequence[float] | None = None) -> None:
        self.label_smoothing = label_smoothing
        self.class_weights = tuple(class_weights) if class_weights else None

    def cross_entropy(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean over the positions read (weighted by their labels' weights, as `F.cross_entropy` does)."""
        weight = None if self.class_weights is None else logits.new_tensor(self.class_weights, dtype=torch.float32)
        return F.cross_entropy(
            logits.float(), labels, weight=weight, ignore_index=IGNORE_INDEX, label_smoothing=self.label_smoothing
        )


class ClassificationHead(SoftmaxLoss, nn.Module):
    """Pooled text → dense → tanh → one logit per label."""

    def __init__(self, hidden_size: int, num_outputs: int, pooling: str, dropout: float) -> None:
        super().__init__()
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, num_outputs)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = pool(hidden, attention_mask, self.pooling)
        return self.out(self.dropout(torch.tanh(self.dense(self.dropout(pooled)))))  # (batch, num_outputs)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.cross_entropy(logits, labels)

    def soft_loss(
        self, logits: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, temperature: float
    ) -> torch.Tensor:
        return softened_kl(logits, teacher, temperature)


class RegressionHead(ClassificationHead):
    """The classification head with one output, read as a real value."""

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return super().forward(hidden, attention_mask).squeeze(-1)  # (batch,)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(logits.float(), labels.float())

    def soft_loss(
        self, logits: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, temperature: float
    ) -> torch.Tensor:
        """The squared distance to the teacher's value (a value has no distribution to soften)."""
        return F.mse_loss(logits.float(), teacher.float())


class MultiLabelHead(ClassificationHead):
    """The classification head read as one independent yes/no per label (sigmoid, binary cross-entropy)."""

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())

    def soft_loss(
        self, logits: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, temperature: float
    ) -> torch.Tensor:
        """Each label's softened teacher probability as the target of its softened sigmoid, times T^2."""
        targets = torch.sigmoid(teacher.float() / temperature)
        return F.binary_cross_entropy_with_logits(logits.float() / temperature, targets) * temperature**2


class TokenClassificationHead(SoftmaxLoss, nn.Module):
    """Every token's hidden state → one logit per tag."""

    def __init__(self, hidden_size: int, num_outputs: int, pooling: str, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_outputs)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(hidden))  # (batch, seq, num_outputs)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.cross_entropy(logits.flatten(0, 1), labels.flatten())

    def soft_loss(
        self, logits: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, temperature: float
    ) -> torch.Tensor:
        """The softened KL over the positions the label loss reads (each word's first sub-token)."""
        read = labels != IGNORE_INDEX
        return softened_kl(logits[read], teacher[read], temperature)


def softened_kl(logits: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(teacher / T) || softmax(logits / T)) averaged over rows, times T^2."""
    student = F.log_softmax(logits.float() / temperature, dim=-1)
    target = F.log_softmax(teacher.float() / temperature, dim=-1)
    return F.kl_div(student, target, log_target=True, reduction="batchmean") * temperature**2


HEAD_TYPES: dict[str, type[nn.Module]] = {
    "classification": ClassificationHead,
    "token_classification": TokenClassificationHead,
    "regression": RegressionHead,
    "multi_label_classification": MultiLabelHead,
}
