"""MultiTaskModel: one shared encoder, one small head per task, saved and loaded as a transformers model.

This file imports only torch and transformers so that it can also be published as remote code.
The config carries the encoder's own config and every task's spec (kind, labels, pooling), so
`MultiTaskModel.from_pretrained(dir_or_repo)` restores everything without the original encoder files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

IGNORE_INDEX = -100


@dataclass(frozen=True)
class TaskSpec:
    """What the model needs to know about a task: its head's kind, its label names, how it pools."""

    name: str
    kind: str
    labels: tuple[str, ...] | None = None
    pooling: str = "mean"

    @property
    def num_outputs(self) -> int:
        return 1 if self.labels is None else len(self.labels)


@dataclass
class TaskOutput(ModelOutput):
    """The output of one task's head: logits, and the loss when labels were given."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class MultiTaskConfig(PretrainedConfig):
    """Config of a MultiTaskModel: the encoder's config as a dict, plus the task specs."""

    model_type = "hfmtl"

    def __init__(
        self,
        encoder: dict[str, Any] | None = None,
        tasks: list[dict[str, Any]] | None = None,
        encoder_name_or_path: str | None = None,
        head_dropout: float = 0.1,
        **kwargs: Any,
    ) -> None:
        self.encoder = encoder or {}
        self.tasks = [dict(task, labels=list(task["labels"]) if task.get("labels") else None) for task in tasks or []]
        self.encoder_name_or_path = encoder_name_or_path
        self.head_dropout = head_dropout
        super().__init__(**kwargs)

    @property
    def task_specs(self) -> list[TaskSpec]:
        return [
            TaskSpec(t["name"], t["kind"], tuple(t["labels"]) if t["labels"] else None, t["pooling"])
            for t in self.tasks
        ]

    def encoder_config(self) -> PretrainedConfig:
        settings = dict(self.encoder)
        return AutoConfig.for_model(settings.pop("model_type"), **settings)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    """(batch, seq, hidden) → (batch, hidden): the first token, or the mean over real tokens."""
    if how == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class ClassificationHead(nn.Module):
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
        return F.cross_entropy(logits.float(), labels)


class RegressionHead(ClassificationHead):
    """The classification head with one output, read as a real value."""

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return super().forward(hidden, attention_mask).squeeze(-1)  # (batch,)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(logits.float(), labels.float())


class TokenClassificationHead(nn.Module):
    """Every token's hidden state → one logit per tag."""

    def __init__(self, hidden_size: int, num_outputs: int, pooling: str, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_outputs)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(hidden))  # (batch, seq, num_outputs)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX)


HEAD_TYPES: dict[str, type[nn.Module]] = {
    "classification": ClassificationHead,
    "token_classification": TokenClassificationHead,
    "regression": RegressionHead,
}


class MultiTaskModel(PreTrainedModel):
    """A shared encoder and one head per task (hard sharing: every head reads the top layer)."""

    config_class = MultiTaskConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: MultiTaskConfig) -> None:
        super().__init__(config)
        self.encoder = AutoModel.from_config(config.encoder_config())
        if getattr(self.encoder, "pooler", None) is not None:
            # Heads pool for themselves; an unused pooler only adds weights, and unused parameters under DDP.
            self.encoder.pooler = None
        hidden_size = self.encoder.config.hidden_size
        self.heads = nn.ModuleDict(
            {
                spec.name: HEAD_TYPES[spec.kind](hidden_size, spec.num_outputs, spec.pooling, config.head_dropout)
                for spec in config.task_specs
            }
        )
        self.post_init()

    @classmethod
    def from_encoder(
        cls,
        encoder_name_or_path: str,
        tasks: Sequence[TaskSpec],
        *,
        revision: str | None = None,
        trust_remote_code: bool = False,
        head_dropout: float = 0.1,
    ) -> MultiTaskModel:
        """A new model: pretrained encoder weights, freshly initialised heads."""
        encoder = AutoModel.from_pretrained(
            encoder_name_or_path, revision=revision, trust_remote_code=trust_remote_code
        )
        config = MultiTaskConfig(
            encoder=encoder.config.to_dict(),
            tasks=[asdict(task) for task in tasks],
            encoder_name_or_path=encoder_name_or_path,
            head_dropout=head_dropout,
        )
        model = cls(config)
        weights = {name: tensor for name, tensor in encoder.state_dict().items() if not name.startswith("pooler.")}
        model.encoder.load_state_dict(weights)
        return model

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> MultiTaskModel:
        """`PreTrainedModel.from_pretrained`, with every weight copied into freshly allocated memory.

        Tensors read from safetensors can sit at unaligned addresses; CPU kernels then take other SIMD paths
        and outputs differ from the saved model's in the last bit. Fresh copies make a reload exact.
        """
        model = super().from_pretrained(*args, **kwargs)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.data = parameter.data.clone()
        return model

    @property
    def task_names(self) -> list[str]:
        return list(self.heads)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **encoder_inputs: Any) -> torch.Tensor:
        """Run the shared encoder once: (batch, seq) ids → (batch, seq, hidden) states."""
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask, **encoder_inputs).last_hidden_state

    def forward(
        self,
        task: str,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        **encoder_inputs: Any,
    ) -> TaskOutput:
        """One task's logits (and loss when `labels` is given), as used in training."""
        if task not in self.heads:
            raise KeyError(f"this model has no task '{task}'; it has: {', '.join(self.heads)}")
        head = self.heads[task]
        logits = head(self.encode(input_ids, attention_mask, **encoder_inputs), attention_mask)
        return TaskOutput(loss=None if labels is None else head.loss(logits, labels), logits=logits)

    def forward_all(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **encoder_inputs: Any
    ) -> dict[str, torch.Tensor]:
        """Every task's logits from a single encoder pass, as used at inference."""
        hidden = self.encode(input_ids, attention_mask, **encoder_inputs)
        return {name: head(hidden, attention_mask) for name, head in self.heads.items()}


def register_auto_classes() -> None:
    """Let `AutoConfig`/`AutoModel.from_pretrained` open hfmtl model directories. Call once, explicitly."""
    AutoConfig.register(MultiTaskConfig.model_type, MultiTaskConfig, exist_ok=True)
    AutoModel.register(MultiTaskConfig, MultiTaskModel, exist_ok=True)
