"""An exponential moving average of the trained weights (`training.ema_decay`): evaluation, model selection and
the saved model use the average, while the optimizer keeps training the live weights.

Why: at a high learning rate the weights jitter around a good point, and classification accuracy (SST-2
above all) jumps only when the schedule brings the rate near 0; the average of the recent weights sits near
that point earlier. The average is kept in the weights' own dtype, on their device, and is part of every
checkpoint, so a resumed run goes on with the same average.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """The moving average `average ← average + (1 − d) · (weights − average)` of every trainable parameter,
    with `d = min(decay, (1 + n) / (10 + n))` after n updates: the first updates weigh the new weights more, so
    the average does not cling to the random initialisation of the heads (the warmup of TF and timm EMAs)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.names = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
        self.parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
        self.average = [parameter.detach().clone() for parameter in self.parameters]

    @torch.no_grad()
    def update(self) -> None:
        """Move the average toward the current weights; called once per optimizer step."""
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.average, [p.detach() for p in self.parameters], 1.0 - decay)
        self.updates += 1

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Inside, the model's parameters hold the average (to evaluate or save it); after, the live weights
        are back exactly as they were, even if the block raised."""
        with torch.no_grad():
            live = [parameter.detach().clone() for parameter in self.parameters]
            for parameter, average in zip(self.parameters, self.average, strict=True):
                parameter.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for parameter, saved in zip(self.parameters, live, strict=True):
                    parameter.copy_(saved)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (accelerate saves it with the other registered objects)."""
        return {"updates": self.updates, "average": dict(zip(self.names, self.average, strict=True))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state["average"]
        if list(saved) != self.names:
            raise ValueError("the checkpoint's weight average holds other parameters than this model")
        with torch.no_grad():
            for average, name in zip(self.average, self.names, strict=True):
                average.copy_(saved[name])
        self.updates = int(state["updates"])


def averaged_weights(average: WeightAverage | None) -> AbstractContextManager[None]:
    """The average swapped into the model for the block, or the live weights when no average is kept."""
    return average.swapped_in() if average is not None else nullcontext()
