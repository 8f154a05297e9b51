"""MultiTaskModel: one shared encoder, one small head per task, saved and loaded as a transformers model.

This file, `model_config.py` (the config and task specs), `heads.py` and `encoder_code.py` import only torch,
transformers and each other (relatively), so that all four can also be published as remote code.
The config carries the encoder's own config and every task's spec (kind, labels, pooling), so
`MultiTaskModel.from_pretrained(dir_or_repo)` restores everything without the original encoder files. An encoder
that ships its own modelling code has that code saved beside the weights; it runs only with `trust_remote_code=True`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.masking_utils import create_bidirectional_mask
from transformers.utils import ModelOutput

from .encoder_code import EncoderCode, build_encoder, save_encoder_code
from .heads import HEAD_TYPES  # relative, so that it resolves beside this file when published as remote code
from .model_config import MultiTaskConfig, TaskSpec

__all__ = ["MultiTaskConfig", "MultiTaskModel", "TaskOutput", "TaskSpec", "register_auto_classes"]


@dataclass
class TaskOutput(ModelOutput):
    """A forward's output: logits, and the loss when labels were given.

    For several tasks at once, `logits` and `losses` are dicts keyed by task and `loss` is their sum.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | dict[str, torch.Tensor] | None = None
    losses: dict[str, torch.Tensor] | None = None
    regularizer: torch.Tensor | None = None
    """The soft-sharing penalty of the forward's tasks, times `soft_penalty`; kept out of `loss`/`losses` so that
    loss weights and loss trends see only the tasks' own losses. None without labels or without a penalty."""


LOADING_PROBLEMS = ("missing_keys", "unexpected_keys", "mismatched_keys")
"""What `from_pretrained(..., output_loading_info=True)` reports that means the folder is not this model."""


class MultiTaskModel(PreTrainedModel):
    """A shared encoder and one head per task.

    Hard sharing (default): every head reads the top layer. Hierarchical: a head reads a lower layer
    (`TaskSpec.layer`) of the same pass. Soft (`soft_layers=k`): each task runs its own copy of the top k
    layers on the shared lower ones; `soft_penalty` ties each copy to the mean of all copies.
    """

    config_class = MultiTaskConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: MultiTaskConfig, *, encoder_code: EncoderCode | None = None) -> None:
        super().__init__(config)
        self.encoder = build_encoder(config.encoder_config(encoder_code), config.encoder_auto_map, encoder_code)
        if getattr(self.encoder, "pooler", None) is not None:
            # Heads pool for themselves; an unused pooler only adds weights, and unused parameters under DDP.
            self.encoder.pooler = None
        self.specs = {spec.name: spec for spec in config.task_specs}
        self.num_layers = self.encoder.config.num_hidden_layers
        self.num_shared_layers = self.num_layers - config.soft_layers
        for spec in self.specs.values():
            if spec.layer is not None and not 1 <= spec.layer <= self.num_layers:
                raise ValueError(f"task '{spec.name}' reads layer {spec.layer}; the encoder has 1..{self.num_layers}")
        if config.soft_layers:
            parent, name, stack = layer_stack(self.encoder)
            if config.soft_layers > len(stack):
                raise ValueError(f"soft_layers={config.soft_layers}, but the encoder has {len(stack)} layers")
            top = nn.ModuleList(stack[self.num_shared_layers :])
            self.private_layers = nn.ModuleDict({task: copy.deepcopy(top) for task in self.specs})
            setattr(parent, name, nn.ModuleList(stack[: self.num_shared_layers]))
        hidden_size = self.encoder.config.hidden_size
        self.heads = nn.ModuleDict(
            {
                spec.name: HEAD_TYPES[spec.kind](hidden_size, spec.num_outputs, spec.pooling, config.head_dropout)
                for spec in self.specs.values()
            }
        )
        for spec in self.specs.values():  # only softmax heads have these; a spec sets them for no other kind
            if spec.label_smoothing or spec.class_weights:
                self.heads[spec.name].set_loss_options(spec.label_smoothing, spec.class_weights)
        # Lower layers' states are kept only when a head reads one: hard sharing pays nothing for this.
        self.needs_hidden_states = any(
            spec.layer is not None and spec.layer < self.num_shared_layers for spec in self.specs.values()
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
        soft_layers: int = 0,
        soft_penalty: float = 0.0,
        num_layers: int | None = None,
    ) -> MultiTaskModel:
        """A new model: pretrained encoder weights (also in every private layer copy), fresh heads.
        `num_layers` keeps the encoder's first k layers only (their pretrained weights; the rest are left out)."""
        fewer_layers = {"num_hidden_layers": num_layers} if num_layers is not None else {}
        encoder = AutoModel.from_pretrained(
            encoder_name_or_path, revision=revision, trust_remote_code=trust_remote_code, **fewer_layers
        )
        config = MultiTaskConfig(
            encoder=encoder.config.to_dict(),
            tasks=[asdict(task) for task in tasks],
            encoder_name_or_path=encoder_name_or_path,
            head_dropout=head_dropout,
            soft_layers=soft_layers,
            soft_penalty=soft_penalty,
        )
        model = cls(config, encoder_code=EncoderCode(encoder_name_or_path, revision) if trust_remote_code else None)
        if soft_layers:
            parent, name, stack = layer_stack(encoder)
            for copies in model.private_layers.values():
                copies.load_state_dict(nn.ModuleList(stack[model.num_shared_layers :]).state_dict())
            setattr(parent, name, nn.ModuleList(stack[: model.num_shared_layers]))
        weights = {name: tensor for name, tensor in encoder.state_dict().items() if not name.startswith("pooler.")}
        model.encoder.load_state_dict(weights)
        return model

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: Any, *args: Any, trust_remote_code: bool = False, **kwargs: Any
    ) -> MultiTaskModel:
        """`PreTrainedModel.from_pretrained`, with every weight copied into freshly allocated memory.

        Tensors read from safetensors can sit at unaligned addresses; CPU kernels then take other SIMD paths
        and outputs differ from the saved model's in the last bit. Fresh copies make a reload exact.
        An encoder with its own code builds from the copy of that code saved with the model, and only when
        `trust_remote_code` is set.
        """
        if trust_remote_code:
            kwargs["encoder_code"] = EncoderCode(str(pretrained_model_name_or_path), kwargs.get("revision"))
        wants_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs)
        # transformers builds a tensor the folder lacks freshly initialised, with only a log line: a head
        # answering at random. A folder whose tensors do not match its config is refused instead.
        problems = [f"{key.replace('_', ' ')}: {sorted(info[key])[:5]}" for key in LOADING_PROBLEMS if info.get(key)]
        if problems:
            raise ValueError(
                f"the weights in '{pretrained_model_name_or_path}' do not match its config.json "
                f"({'; '.join(problems)}); the folder is damaged or mixed from two models, so it is not loaded"
            )
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.data = parameter.data.clone()
        return (model, info) if wants_info else model

    def save_pretrained(self, save_directory: Any, is_main_process: bool = True, **kwargs: Any) -> None:
        """`PreTrainedModel.save_pretrained`, plus the encoder's own code files when it has some, so that the
        folder reloads without the original encoder (`from_pretrained(folder, trust_remote_code=True)`)."""
        super().save_pretrained(save_directory, is_main_process=is_main_process, **kwargs)
        if not is_main_process:
            return
        save_encoder_code(self.encoder, self.config.encoder_auto_map, save_directory)

    @property
    def task_names(self) -> list[str]:
        return list(self.heads)

    def forward(
        self,
        task: str | Sequence[str],
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | dict[str, torch.Tensor] | None = None,
        **encoder_inputs: Any,
    ) -> TaskOutput:
        """One task's logits (and loss when `labels` is given), as used in training; or, for a list of tasks,
        every listed head on one encoder pass (`labels` then maps task → labels)."""
        tasks = [task] if isinstance(task, str) else list(task)
        for name in tasks:
            if name not in self.heads:
                raise KeyError(f"this model has no task '{name}'; it has: {', '.join(self.heads)}")
        encoded = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            output_hidden_states=self.needs_hidden_states,
            **encoder_inputs,
        )
        layer_mask = self._layer_mask(encoded.last_hidden_state, attention_mask)
        logits = {
            name: self.heads[name](self._task_states(name, encoded, layer_mask), attention_mask) for name in tasks
        }
        if labels is None:
            return TaskOutput(logits=logits[task] if isinstance(task, str) else logits)
        if isinstance(task, str):
            loss = self.heads[task].loss(logits[task], labels)
            return TaskOutput(loss=loss, logits=logits[task], regularizer=self._regularizer(tasks))
        losses = {name: self.heads[name].loss(logits[name], labels[name]) for name in tasks}
        loss = torch.stack(list(losses.values())).sum()
        return TaskOutput(loss=loss, logits=logits, losses=losses, regularizer=self._regularizer(tasks))

    def forward_all(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **encoder_inputs: Any
    ) -> dict[str, torch.Tensor]:
        """Every task's logits from a single encoder pass, as used at inference."""
        return self.forward(self.task_names, input_ids, attention_mask, **encoder_inputs).logits

    def soft_sharing_penalty(self, task: str) -> torch.Tensor:
        """Squared L2 distance of `task`'s layer copy from the mean of all copies (the mean held constant, so
        only this task's copy is pulled toward it). Zero while the copies are equal, as right after init."""
        if not self.config.soft_layers:
            return torch.zeros((), device=self.device)
        all_copies = [list(copies.parameters()) for copies in self.private_layers.values()]
        total = torch.zeros((), device=self.device)
        for own, *each in zip(self.private_layers[task].parameters(), *all_copies, strict=True):
            # In float64 the mean of identical copies is exactly each copy: the penalty is 0, not 1e-15.
            mean = torch.stack([parameter.detach().double() for parameter in each]).mean(0)
            total = total + (own.double() - mean).pow(2).sum().float()
        return total

    def _regularizer(self, tasks: Sequence[str]) -> torch.Tensor | None:
        """`soft_penalty` times the summed soft-sharing penalty of `tasks`; None when there is no penalty."""
        if not (self.config.soft_layers and self.config.soft_penalty):
            return None
        return self.config.soft_penalty * torch.stack([self.soft_sharing_penalty(task) for task in tasks]).sum()

    def _layer_mask(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        """The attention mask in the form the encoder's own layers take (only needed by private copies)."""
        if not self.config.soft_layers:
            return None
        return create_bidirectional_mask(
            config=self.encoder.config, inputs_embeds=hidden, attention_mask=attention_mask
        )

    def _task_states(self, task: str, encoded: Any, layer_mask: Any) -> torch.Tensor:
        """(batch, seq, hidden) states the task's head reads: a shared layer's, or its private copy's."""
        wanted = self.specs[task].layer or self.num_layers
        if wanted == self.num_shared_layers:
            return encoded.last_hidden_state
        if wanted < self.num_shared_layers:
            return encoded.hidden_states[wanted]  # index 0 holds the embeddings
        hidden = encoded.last_hidden_state
        for layer in self.private_layers[task][: wanted - self.num_shared_layers]:
            output = layer(hidden, attention_mask=layer_mask)
            hidden = output[0] if isinstance(output, tuple) else output
        return hidden


LAYER_STACKS = (("encoder", "layer"), ("transformer", "layer"), ("layers",))


def layer_stack(encoder: nn.Module) -> tuple[nn.Module, str, nn.ModuleList]:
    """Where an encoder keeps its list of transformer layers: (parent module, attribute name, the list)."""
    for path in LAYER_STACKS:
        parent: Any = encoder
        for name in path[:-1]:
            parent = getattr(parent, name, None)
        stack = getattr(parent, path[-1], None)
        if isinstance(stack, nn.ModuleList):
            return parent, path[-1], stack
    raise ValueError(
        f"soft sharing and layer-wise learning rates need the encoder's layers as a ModuleList at .encoder.layer "
        f"(BERT, RoBERTa, ELECTRA, DeBERTa), .transformer.layer or .layers; {type(encoder).__name__} has none of these"
    )


def register_auto_classes() -> None:
    """Let `AutoConfig`/`AutoModel.from_pretrained` open hfmtl model directories. Call once, explicitly."""
    AutoConfig.register(MultiTaskConfig.model_type, MultiTaskConfig, exist_ok=True)
    AutoModel.register(MultiTaskConfig, MultiTaskModel, exist_ok=True)
