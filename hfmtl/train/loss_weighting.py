"""How task losses are combined into the loss a step optimises.

- static: each task's configured `loss_weight`.
- uncertainty (Kendall, Gal and Cipolla, 2018): one learned log-variance s_t per task; a loss L_t counts as
  w_t * (exp(-s_t) * L_t + s_t), so a noisy task (large s_t) is down-weighted, and the + s_t term keeps s_t
  from growing without bound. (The simple form used by most implementations, the same for every task kind.)
  The static weight w_t multiplies the whole term: at the optimum exp(-s_t) = 1 / L_t whatever w_t is, so the
  effective weight w_t * exp(-s_t) keeps the ratio of the static weights (inside, w_t would cancel out).
- dwa, dynamic weight average (Liu, Johns and Davison, 2019): every `window` steps, each task's weight
  becomes K * softmax(r_t / T), with r_t its mean loss over the last window divided by the window before:
  a task whose loss stopped falling gets more weight.
The static weight multiplies the learned or dynamic one. All of them offer the same small interface.

The gradient methods (pcgrad, cagrad, gradnorm; `gradient_methods.py`) weigh each loss by its static weight,
and then `combine` the tasks' gradients of the shared parameters into the one the optimizer applies
(`combines_gradients`); the step runs one backward per task for them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from hfmtl.config.run_config import LossWeightingConfig, RunConfig
from hfmtl.train.gradient_methods import cagrad, gradnorm, pcgrad


class StaticWeighting:
    """loss_t * w_t with fixed weights."""

    window: int | None = None
    """Steps between `update` calls that can change the weights (None: never; the loop then reads no losses)."""
    combines_gradients = False
    """True for the gradient methods: the step gives `combine` every task's gradient of the shared weights."""

    def __init__(self, static: Mapping[str, float]) -> None:
        self.static = dict(static)

    def __call__(self, task: str, loss: torch.Tensor) -> torch.Tensor:
        return loss * self.static[task]

    def update(self, losses: Mapping[str, list[float]]) -> None:
        """Static weights learn nothing from the losses."""

    def weights(self) -> dict[str, float]:
        return dict(self.static)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Nothing to restore."""


class UncertaintyWeighting(nn.Module):
    """w_t * (exp(-s_t) * loss_t + s_t), with one learned s_t = log(sigma_t^2) per task (starting at 0)."""

    window: int | None = None
    """The weights learn through the optimizer: `update` has nothing to do."""
    combines_gradients = False

    def __init__(self, static: Mapping[str, float]) -> None:
        super().__init__()
        self.static = dict(static)
        self.task_names = list(static)
        self.log_variances = nn.Parameter(torch.zeros(len(self.task_names)))

    def forward(self, task: str, loss: torch.Tensor) -> torch.Tensor:
        log_variance = self.log_variances[self.task_names.index(task)]
        return self.static[task] * (torch.exp(-log_variance) * loss + log_variance)

    def update(self, losses: Mapping[str, list[float]]) -> None:
        """The weights learn through the optimizer, not from here."""

    def weights(self) -> dict[str, float]:
        """The effective weight exp(-s_t) * w_t per task (reading it syncs with the device: log steps only)."""
        values = torch.exp(-self.log_variances.detach().float()).tolist()
        return {task: value * self.static[task] for task, value in zip(self.task_names, values, strict=True)}


class DynamicWeightAverage:
    """w_t * K * softmax(r_t / T), r_t = mean loss over the last window / mean over the window before."""

    combines_gradients = False

    def __init__(self, static: Mapping[str, float], temperature: float, window: int) -> None:
        self.static = dict(static)
        self.temperature = temperature
        self.window: int | None = window
        """The loop hands over every step's losses at least every `window` steps, before the next step."""
        self.dynamic = {task: 1.0 for task in static}
        self.history: list[dict[str, float]] = []  # mean loss per task of the last two complete windows
        self.sums = {task: 0.0 for task in static}
        self.counts = {task: 0 for task in static}
        self.steps = 0

    def __call__(self, task: str, loss: torch.Tensor) -> torch.Tensor:
        return loss * self.static[task] * self.dynamic[task]

    def update(self, losses: Mapping[str, list[float]]) -> None:
        """Add one step's (unweighted) losses; at the end of a window, recompute the weights."""
        for task, values in losses.items():
            self.sums[task] += sum(values)
            self.counts[task] += len(values)
        self.steps += 1
        if self.steps < self.window:
            return
        previous = self.history[-1] if self.history else {}
        # A task not drawn in this window keeps its last mean: its trend reads as flat.
        means = {t: self.sums[t] / self.counts[t] if self.counts[t] else previous.get(t, math.nan) for t in self.sums}
        self.history = [*self.history[-1:], means]
        self.sums, self.counts, self.steps = dict.fromkeys(self.sums, 0.0), dict.fromkeys(self.counts, 0), 0
        if len(self.history) == 2:
            ratios = {t: _ratio(self.history[1][t], self.history[0][t]) for t in self.dynamic}
            exps = {t: math.exp(r / self.temperature) for t, r in ratios.items()}
            total = sum(exps.values())
            self.dynamic = {t: len(exps) * value / total for t, value in exps.items()}

    def weights(self) -> dict[str, float]:
        return {task: self.static[task] * self.dynamic[task] for task in self.static}

    def state_dict(self) -> dict[str, Any]:
        keys = ("dynamic", "history", "sums", "counts", "steps")
        return {key: getattr(self, key) for key in keys}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


class ProjectedGradients(StaticWeighting):
    """Static loss weights; the shared gradient is PCGrad's or CAGrad's combination of the tasks' gradients."""

    combines_gradients = True

    def __init__(self, static: Mapping[str, float], settings: LossWeightingConfig, seed: int) -> None:
        super().__init__(static)
        self.strategy = settings.strategy
        self.cagrad_c = settings.cagrad_c
        self.seed = seed

    def combine(self, grads: torch.Tensor, losses: torch.Tensor, step: int) -> torch.Tensor:
        """The gradient to apply, from `grads` (one row per unit, in `units` order) at optimizer step `step`."""
        if self.strategy == "cagrad":
            return cagrad(grads, self.cagrad_c)
        # PCGrad's random order of the other tasks: seeded by the step, so a resumed run draws the same one.
        return pcgrad(grads, np.random.default_rng([self.seed, step]))


class GradNormWeighting(nn.Module):
    """Static loss weights, and GradNorm's learned weights K * softmax(logits) over the sampling units in the
    combined gradient. The logits learn in the optimizer (from the gradient `combine` sets); the first step's
    losses are a buffer: both travel with the checkpoint's modules."""

    window: int | None = None
    combines_gradients = True

    def __init__(self, static: Mapping[str, float], units: list[str], alpha: float) -> None:
        super().__init__()
        self.static = dict(static)
        self.units = list(units)
        self.alpha = alpha
        self.logits = nn.Parameter(torch.zeros(len(units)))
        self.register_buffer("initial_losses", torch.full((len(units),), math.nan))

    def forward(self, task: str, loss: torch.Tensor) -> torch.Tensor:
        return loss * self.static[task]

    def combine(self, grads: torch.Tensor, losses: torch.Tensor, step: int) -> torch.Tensor:
        losses = losses.to(self.initial_losses.device)
        if torch.isnan(self.initial_losses).any():  # the first step: later losses count relative to it
            self.initial_losses.copy_(losses)
        combined, logits_grad = gradnorm(grads, losses, self.initial_losses, self.logits, self.alpha)
        self.logits.grad = logits_grad.to(self.logits.dtype)
        return combined

    def update(self, losses: Mapping[str, list[float]]) -> None:
        """The weights learn through the optimizer, not from here."""

    def weights(self) -> dict[str, float]:
        """Each task's effective weight: its static weight times its unit's learned one (syncs: log steps only)."""
        learned = (len(self.units) * torch.softmax(self.logits.detach().float(), dim=0)).tolist()
        by_unit = dict(zip(self.units, learned, strict=True))
        return {task: value * by_unit[_unit_of(task, self.units)] for task, value in self.static.items()}


def _unit_of(task: str, units: list[str]) -> str:
    return next(unit for unit in units if task in unit.split("+"))


LossWeighting = StaticWeighting | UncertaintyWeighting | DynamicWeightAverage | ProjectedGradients | GradNormWeighting


def build_loss_weighting(config: RunConfig, units: list[str]) -> LossWeighting:
    """The weighting the config asks for, over the config's tasks (GradNorm's over the sampling `units`)."""
    static = {task.name: task.loss_weight for task in config.tasks}
    settings = config.loss_weighting
    if settings.strategy == "uncertainty":
        return UncertaintyWeighting(static)
    if settings.strategy == "dwa":
        return DynamicWeightAverage(static, settings.dwa_temperature, settings.dwa_window)
    if settings.strategy in ("pcgrad", "cagrad"):
        return ProjectedGradients(static, settings, config.seed)
    if settings.strategy == "gradnorm":
        return GradNormWeighting(static, units, settings.gradnorm_alpha)
    return StaticWeighting(static)


def _ratio(latest: float, before: float) -> float:
    """r_t; 1 (a flat trend) when a mean is missing or the earlier one is 0."""
    if not math.isfinite(latest) or not math.isfinite(before) or before == 0:
        return 1.0
    return latest / before
