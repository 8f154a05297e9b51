"""Gradient-level balancing: the shared parameters' update made from every task's own gradient.

Each method takes G, a (tasks, parameters) matrix whose row t is the gradient of task t's loss (times its
`loss_weight`) with respect to the shared encoder's parameters, and returns the one gradient to apply:

- pcgrad (Yu et al., 2020, "Gradient Surgery for Multi-Task Learning"): each task's gradient, in a random order
  of the others, loses its component along every other task's (original) gradient it conflicts with
  (negative dot product); the projected gradients are summed.
- cagrad (Liu et al., 2021, "Conflict-Averse Gradient Descent"): the average gradient g0 plus the direction
  g_w that most helps the worst-off task within a ball of radius c * |g0|: w on the simplex minimises
  g_w . g0 + c |g0| |g_w|, and the update is (g0 + c |g0| / |g_w| * g_w) / (1 + c^2), as in the authors' code.
- gradnorm (Chen et al., 2018): learned task weights w = K * softmax(logits) (so they stay positive and sum to
  K); the update is sum_t w_t g_t, and the logits learn to make each task's weighted gradient norm
  w_t |g_t| match mean_s(w_s |g_s|) * r_t^alpha, r_t being the task's loss relative to its first step's loss,
  over the mean of those ratios (a task that trains slower gets a larger gradient).

Heads and soft-shared private layers keep their own gradients: only one task reaches them.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize


def pcgrad(grads: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """The sum of each task's gradient projected off the gradients it conflicts with (Yu et al. 2020)."""
    projected = grads.clone()
    squared_norms = (torch.linalg.vector_norm(grads, dim=1) ** 2).clamp(min=1e-20)
    for task in range(grads.shape[0]):
        for other in rng.permutation(grads.shape[0]):
            if other != task:  # only a negative dot product projects: no branch, so no host sync per pair
                dot = (projected[task] @ grads[other]).clamp(max=0)
                projected[task] -= dot / squared_norms[other] * grads[other]
    return projected.sum(dim=0)


def cagrad_weights(gram: np.ndarray, c: float) -> np.ndarray:
    """w on the simplex minimising g_w . g0 + c |g0| |g_w|, from the tasks' Gram matrix G G^T (float64)."""
    tasks = gram.shape[0]
    mean = np.full(tasks, 1.0 / tasks)
    radius = c * np.sqrt(max(mean @ gram @ mean, 0.0) + 1e-8)

    def objective(w: np.ndarray) -> float:
        return float(w @ gram @ mean + radius * np.sqrt(max(w @ gram @ w, 0.0) + 1e-8))

    result = minimize(
        objective,
        mean,
        bounds=[(0.0, 1.0)] * tasks,
        constraints=({"type": "eq", "fun": lambda w: 1.0 - w.sum()},),
        method="SLSQP",
    )
    return np.clip(result.x, 0.0, 1.0)


def cagrad(grads: torch.Tensor, c: float) -> torch.Tensor:
    """(g0 + c |g0| / |g_w| * g_w) / (1 + c^2), with g0 the mean gradient (Liu et al. 2021)."""
    if c == 0:
        return grads.mean(dim=0)
    gram = (grads @ grads.T).double().cpu().numpy()  # tasks x tasks: only this small matrix goes to float64
    weights = torch.as_tensor(cagrad_weights(gram, c), dtype=grads.dtype, device=grads.device)
    mean = grads.mean(dim=0)
    towards_worst = weights @ grads
    scale = c * torch.sqrt(torch.clamp(mean @ mean, min=0) + 1e-8) / (towards_worst.norm() + 1e-8)
    return (mean + scale * towards_worst) / (1 + c**2)


def gradnorm(
    grads: torch.Tensor, losses: torch.Tensor, initial_losses: torch.Tensor, logits: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """GradNorm's update sum_t w_t g_t, w = K * softmax(logits), and the gradient for the logits of
    sum_t |w_t |g_t| - target_t|, target_t = mean_s(w_s |g_s|) * r_t^alpha held fixed (Chen et al. 2018)."""
    norms = grads.float().norm(dim=1)
    logits = logits.detach().float().requires_grad_(True)
    with torch.enable_grad():
        weights = len(norms) * torch.softmax(logits, dim=0)
        weighted_norms = weights * norms
        ratios = losses.float() / initial_losses.float().clamp(min=1e-12)
        relative = ratios / ratios.mean().clamp(min=1e-12)
        target = (weighted_norms.mean() * relative**alpha).detach()
        (logits_grad,) = torch.autograd.grad((weighted_norms - target).abs().sum(), logits)
    return weights.detach().to(grads.dtype) @ grads, logits_grad
