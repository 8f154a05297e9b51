"""One optimizer step's forward and backward passes: each micro-batch draws a sampling unit (a task, or a
joint group), runs its heads, weighs their losses and adds to the gradients. Applying them is the loop's."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator

from hfmtl.config import RunConfig
from hfmtl.data.sampling import MultiTaskLoader


@dataclass
class StepResult:
    """The micro-batches of one optimizer step: what this process drew, and every process's losses."""

    tasks: list[str]
    """The sampling unit of each micro-batch: a task, or a joint group like `sentiment+intensity`."""
    loss_tasks: list[str]
    """The task of each entry of `losses` on one process (a joint micro-batch gives one loss per task)."""
    losses: torch.Tensor
    """(num_processes * len(loss_tasks),) on the device, process-major: every process drew the same units."""
    examples: int
    tokens: int
    padded_tokens: int

    def losses_by_task(self, losses: list[float], num_processes: int) -> dict[str, list[float]]:
        by_task: dict[str, list[float]] = {}
        for task, loss in zip(self.loss_tasks * num_processes, losses, strict=True):
            by_task.setdefault(task, []).append(loss)
        return by_task


def forward_backward(
    model: Any,
    weighting: Any,
    loader: MultiTaskLoader,
    units: dict[str, list[str]],
    accelerator: Accelerator,
    config: RunConfig,
) -> StepResult:
    """Forward and backward every micro-batch of one step; gradients are summed, not yet applied."""
    accumulation = config.training.gradient_accumulation_steps
    drawn, loss_tasks, losses, examples, tokens, padded = [], [], [], 0, 0, 0
    for micro_step in range(accumulation):
        unit, batch = loader.next_batch()
        examples += batch["attention_mask"].shape[0]
        tokens += int(batch["attention_mask"].sum())  # counted on the host copy: no device sync
        padded += batch["attention_mask"].numel()
        batch = _to_device(batch, accelerator.device)
        members = units[unit]
        # Gradients are averaged across processes only on the last micro-batch of a step.
        is_last = micro_step == accumulation - 1
        with contextlib.nullcontext() if is_last else accelerator.no_sync(model):
            with accelerator.autocast():
                output = model(task=members[0] if len(members) == 1 else members, **batch)
            task_losses = output.losses or {members[0]: output.loss}
            weighted = torch.stack([weighting(task, loss) for task, loss in task_losses.items()]).sum()
            accelerator.backward(weighted / accumulation)
        drawn.append(unit)
        loss_tasks += list(task_losses)
        losses += [loss.detach().float() for loss in task_losses.values()]
    return StepResult(drawn, loss_tasks, accelerator.gather(torch.stack(losses)), examples, tokens, padded)


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        key: {task: t.to(device, non_blocking=True) for task, t in value.items()}
        if isinstance(value, dict)
        else value.to(device, non_blocking=True)
        for key, value in batch.items()
    }
