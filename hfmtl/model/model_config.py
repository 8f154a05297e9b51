"""MultiTaskConfig and TaskSpec: what a saved MultiTaskModel is, as plain config (the encoder's own config and
every task's spec), so that `from_pretrained` restores a model without the original encoder files.

Like modeling.py, this imports only transformers and its siblings (relatively): it is published beside it as
remote code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import PretrainedConfig

from .encoder_code import EncoderCode, encoder_config, own_code_classes


@dataclass(frozen=True)
class TaskSpec:
    """What the model needs to know about a task: its head's kind, its label names, how it pools."""

    name: str
    kind: str
    labels: tuple[str, ...] | None = None
    pooling: str = "mean"
    layer: int | None = None
    """The encoder layer the head reads (1 = the first); None: the top layer."""
    thresholds: tuple[float, ...] | None = None
    """Multi-label: each label's decision threshold; None: 0.5 for every label."""
    pairs: bool = False
    """The task reads a pair of texts (the tokenizer's text and text_pair)."""
    label_smoothing: float = 0.0
    """Softmax heads: the label smoothing of the training loss."""
    class_weights: tuple[float, ...] | None = None
    """Softmax heads: each label's weight in the training loss, in label order; None: all 1."""

    @property
    def num_outputs(self) -> int:
        return 1 if self.labels is None else len(self.labels)


class MultiTaskConfig(PretrainedConfig):
    """Config of a MultiTaskModel: the encoder's config as a dict, plus the task specs."""

    model_type = "hfmtl"

    def __init__(
        self,
        encoder: dict[str, Any] | None = None,
        tasks: list[dict[str, Any]] | None = None,
        encoder_name_or_path: str | None = None,
        head_dropout: float = 0.1,
        soft_layers: int = 0,
        soft_penalty: float = 0.0,
        **kwargs: Any,
    ) -> None:
        self.encoder = encoder or {}
        self.tasks = [dict(task, labels=list(task["labels"]) if task.get("labels") else None) for task in tasks or []]
        self.encoder_name_or_path = encoder_name_or_path
        self.head_dropout = head_dropout
        self.soft_layers = soft_layers
        self.soft_penalty = soft_penalty
        super().__init__(**kwargs)

    @property
    def task_specs(self) -> list[TaskSpec]:
        return [
            TaskSpec(
                **dict(
                    t,
                    labels=tuple(t["labels"]) if t["labels"] else None,
                    thresholds=tuple(t["thresholds"]) if t.get("thresholds") else None,
                    class_weights=tuple(t["class_weights"]) if t.get("class_weights") else None,
                )
            )
            for t in self.tasks
        ]

    @property
    def encoder_auto_map(self) -> dict[str, str]:
        """The encoder's own classes (`AutoConfig`/`AutoModel` → `module.Class`); empty for a built-in encoder."""
        return own_code_classes(self.encoder)

    def encoder_config(self, code: EncoderCode | None = None) -> PretrainedConfig:
        """The encoder's config, rebuilt from its settings; an encoder with its own code needs `code`."""
        return encoder_config(self.encoder, code)
