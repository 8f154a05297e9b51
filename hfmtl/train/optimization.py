"""AdamW with decoupled weight decay (none on biases and norms) and a warmup + decay schedule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from transformers import get_scheduler

from hfmtl.config.run_config import TrainingConfig
from hfmtl.errors import ConfigError
from hfmtl.model.modeling import layer_stack


def build_optimizer(
    model: nn.Module,
    training: TrainingConfig,
    *,
    head_lr_multipliers: Mapping[str, float] | None = None,
    extra_groups: Sequence[dict[str, Any]] = (),
) -> torch.optim.AdamW:
    """AdamW over two groups: weight matrices decay; biases and LayerNorm weights (1-d tensors) do not.
    The heads named in `head_lr_multipliers` (task → multiplier of the learning rate) get two groups of their
    own at the scaled rate; with `training.layer_lr_decay` below 1 each encoder depth gets groups of its own
    (`layer_lr_factors`); the schedule scales every group alike. `extra_groups` are further parameter groups
    with settings of their own (e.g. learned loss weights)."""
    multiplier = layer_lr_factors(model, training.layer_lr_decay) if training.layer_lr_decay != 1 else {}
    multiplier |= {
        id(parameter): factor
        for task, factor in (head_lr_multipliers or {}).items()
        for parameter in model.heads[task].parameters()
    }
    # The two base groups always come first, so that a run without multipliers has the groups it always had.
    grouped: dict[tuple[float, bool], list[nn.Parameter]] = {(1.0, True): [], (1.0, False): []}
    for parameter in model.parameters():
        if parameter.requires_grad:
            grouped.setdefault((multiplier.get(id(parameter), 1.0), parameter.dim() >= 2), []).append(parameter)
    groups = [
        {
            "params": parameters,
            "lr": training.learning_rate * factor,
            "weight_decay": training.weight_decay if decays else 0.0,
        }
        for (factor, decays), parameters in grouped.items()
    ]
    groups += extra_groups
    # The fused kernel is the fastest on GPU, and on any device it can skip an update on the device itself
    # (`found_inf`), which is how the loop drops a non-finite step without waiting for the step to finish.
    return torch.optim.AdamW(groups, lr=training.learning_rate, fused=True)


def layer_lr_factors(model: nn.Module, decay: float) -> dict[int, float]:
    """Learning-rate factor of every encoder parameter (by `id`) under layer-wise decay: `decay ** (L - depth)`,
    where the embeddings are depth 0, transformer layer k (from the bottom, 1-based) depth k, and L the
    encoder's number of layers. Soft sharing's private copies of the top layers keep their layers' depths;
    encoder parameters outside embeddings and layers (a final norm, DeBERTa's relative positions used by
    every layer) count as the top. Heads are not in the map: they train at the base rate (or their own)."""
    try:
        _, _, shared = layer_stack(model.encoder)
    except ValueError as error:
        raise ConfigError(f"'training.layer_lr_decay' is {decay}, but {error}") from None
    layers = list(enumerate(shared, start=1))
    for copies in getattr(model, "private_layers", {}).values():
        layers += enumerate(copies, start=len(shared) + 1)
    total = model.num_layers
    factors: dict[int, float] = {}
    embeddings = getattr(model.encoder, "embeddings", None)
    for parameter in embeddings.parameters() if embeddings is not None else ():
        factors[id(parameter)] = decay**total
    for depth, layer in layers:
        for parameter in layer.parameters():
            factors[id(parameter)] = decay ** (total - depth)
    for parameter in model.encoder.parameters():
        factors.setdefault(id(parameter), 1.0)
    return factors


def build_scheduler(optimizer: torch.optim.Optimizer, training: TrainingConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to the peak learning rate, then linear/cosine decay to 0 (or constant), for every group."""
    name = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}[training.lr_schedule]
    return get_scheduler(
        name, optimizer, num_warmup_steps=training.warmup_steps, num_training_steps=training.max_steps
    )


def rewind_schedule(scheduler: Any, steps: int) -> None:
    """Take back `steps` scheduler steps, for updates that were skipped on the device (a non-finite loss or
    gradient) and known only when the loop next read its figures: the schedule counts applied updates, as
    it does when a grad scaler skips a step."""
    if steps <= 0:
        return
    inner = getattr(scheduler, "scheduler", scheduler)  # accelerate wraps the LambdaLR
    inner.last_epoch -= steps + 1
    inner.step()  # recomputes every group's learning rate at the rewound step
