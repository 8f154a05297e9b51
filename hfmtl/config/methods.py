"""The run config's sections on how tasks share and balance: sharing of encoder layers, loss weighting
(static, learned, dynamic or gradient methods), and distillation from a teacher. `run_config.RunConfig` holds
them; their field docstrings are the help `hfmtl config` prints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class SharingConfig:
    soft_layers: int = 0
    """Soft sharing: each task gets its own copy of the top k encoder layers (initialised from the pretrained
    ones). 0 is hard sharing: every head reads the one shared encoder, at no extra cost."""
    soft_penalty: float = 1e-3
    """Weight of the L2 penalty that ties a task's copy to the mean of all copies (added when it trains)."""


@dataclass(frozen=True)
class LossWeightingConfig:
    strategy: Literal["static", "uncertainty", "dwa", "pcgrad", "cagrad", "gradnorm"] = "static"
    """static: each task's `loss_weight`. uncertainty: one learned log-variance per task (Kendall et al.
    2018). dwa: dynamic weight average from each task's recent loss trend (Liu et al. 2019). Gradient methods,
    with `sampling.mode: all_tasks` (one backward per task each step): pcgrad projects conflicting task
    gradients apart (Yu et al. 2020); cagrad moves the mean gradient toward the worst-off task (Liu et al.
    2021); gradnorm learns weights that balance the tasks' gradient norms (Chen et al. 2018)."""
    dwa_temperature: float = 2.0
    """DWA temperature: larger spreads the weights less."""
    dwa_window: int = 50
    """DWA compares each task's mean loss over consecutive windows of this many steps."""
    learning_rate: float = 0.01
    """Uncertainty and gradnorm: the learning rate of the learned weights (log-variances, or GradNorm's
    logits; no weight decay). They start at 0 and must move by about 1 within a run, so the model's learning
    rate would leave them nearly fixed."""
    cagrad_c: float = 0.4
    """CAGrad's c: how far (relative to the mean gradient's norm) the update may turn toward the worst-off
    task; 0 is the plain mean gradient."""
    gradnorm_alpha: float = 1.5
    """GradNorm's alpha: how strongly a task that trains slower (its loss relative to its first step's, over
    the mean of those ratios) gets a larger gradient; 0 equalises the gradient norms."""


@dataclass(frozen=True)
class DistillationConfig:
    teacher: str | None = None
    """A trained hfmtl model folder (or Hub id) whose answers the model learns from, as well as from the labels
    (`hfmtl distill TEACHER CONFIG` sets it); null trains from the labels alone. The teacher must have every
    task of this config, with the same kind and labels, and the same tokenizer."""
    alpha: float = 0.5
    """Weight of the gold-label loss; 1 - alpha goes to the teacher's soft targets."""
    temperature: float = 2.0
    """Softening of the teacher's and the student's distributions (classification kinds); the soft loss is
    scaled by T^2 so its gradients keep their size (Hinton et al. 2015). Regression matches the teacher's value."""
