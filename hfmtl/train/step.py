"""One optimizer step's forward and backward passes: each micro-batch draws a sampling unit (a task, or a
joint group), runs its heads, weighs their losses and adds to the gradients. Applying them is the loop's;
the non-finite checks (a flag kept on the device, and the error the loop raises from it) are here.

Under `sampling.mode: all_tasks` each micro-batch is one batch of every unit; with a gradient method each
unit's gradient of the shared encoder is kept apart, and the method's combination of them is written as the
shared parameters' gradient (heads and private layers keep the gradient of the one unit that reaches them).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from hfmtl.config.run_config import RunConfig
from hfmtl.errors import HfmtlError
from hfmtl.train.checkpoint import find_latest_checkpoint
from hfmtl.train.distillation import Teacher


@dataclass
class StepResult:
    """The micro-batches of one optimizer step on this process: what it drew and its losses, still on the
    device (reading them would make the host wait for the step; the loop reads them at logging steps)."""

    tasks: list[str]
    """The sampling unit of each micro-batch: a task, or a joint group like `sentiment+intensity`."""
    loss_tasks: list[str]
    """The task of each entry of `losses` (a joint micro-batch gives one loss per task)."""
    losses: torch.Tensor
    """(len(loss_tasks),) unweighted task losses on the device; regularizers are not in them."""
    regularizer: torch.Tensor | None
    """The step's soft-sharing penalty (already weighted), on the device; None under hard sharing."""
    examples: int
    tokens: int
    padded_tokens: int


def forward_backward(
    model: Any,
    weighting: Any,
    loader: Any,
    units: dict[str, list[str]],
    accelerator: Accelerator,
    config: RunConfig,
    teacher: Teacher | None = None,
) -> StepResult:
    """Forward and backward every micro-batch of one step; gradients are summed, not yet applied.

    The step optimises sum over tasks of weight(task loss), plus the soft-sharing penalty as a plain
    regularizer: loss weights and DWA's loss trends see only the tasks' own losses.
    """
    accumulation = config.training.gradient_accumulation_steps
    drawn, loss_tasks, losses, regularizers, examples, tokens, padded = [], [], [], [], 0, 0, 0
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
                output, task_losses = _unit_forward(model, members, batch, accelerator, teacher)
            total = torch.stack([weighting(task, loss) for task, loss in task_losses.items()]).sum()
            if output.regularizer is not None:
                total = total + output.regularizer
                regularizers.append(output.regularizer.detach().float())
            accelerator.backward(total / accumulation)
        drawn.append(unit)
        loss_tasks += list(task_losses)
        losses += [loss.detach().float() for loss in task_losses.values()]
    regularizer = torch.stack(regularizers).mean() if regularizers else None
    return StepResult(drawn, loss_tasks, torch.stack(losses), regularizer, examples, tokens, padded)


def forward_backward_all_tasks(
    model: Any,
    weighting: Any,
    loader: Any,
    units: dict[str, list[str]],
    accelerator: Accelerator,
    config: RunConfig,
    step_number: int,
    rows: torch.Tensor | None = None,
    teacher: Teacher | None = None,
) -> StepResult:
    """Forward and backward one batch of every unit per micro-batch (`sampling.mode: all_tasks`).

    Without a gradient method the gradients simply add up, synchronised across processes once per step. With
    one (`weighting.combines_gradients`), every backward runs unsynchronised into its unit's own row of the
    shared parameters' gradients (the rows are the gradient storage, so nothing is copied), the rows (and the
    other gradients) are averaged across processes, and only then combined: the methods are not linear, so
    combining per process first would give another update than one process with the whole batch. `rows` is
    that storage, (units, shared parameters) from `gradient_rows`, kept by the loop so no step allocates it.
    """
    accumulation = config.training.gradient_accumulation_steps
    combines = weighting.combines_gradients
    shared = shared_parameters(model, accelerator) if combines else []
    if rows is None or not combines:
        rows = torch.zeros(len(units), sum(p.numel() for p in shared), device=accelerator.device)
    rows.zero_()
    unit_losses = torch.zeros(len(units), device=accelerator.device)
    drawn, loss_tasks, losses, regularizers, examples, tokens, padded = [], [], [], [], 0, 0, 0
    for micro_step in range(accumulation):
        for index, (name, members) in enumerate(units.items()):
            unit, batch = loader.next_batch()
            if unit != name:
                raise RuntimeError(f"the loader gave '{unit}' where all_tasks mode expects '{name}'")
            examples += batch["attention_mask"].shape[0]
            tokens += int(batch["attention_mask"].sum())
            padded += batch["attention_mask"].numel()
            batch = _to_device(batch, accelerator.device)
            is_last = micro_step == accumulation - 1 and index == len(units) - 1
            with contextlib.nullcontext() if is_last and not combines else accelerator.no_sync(model):
                with accelerator.autocast():
                    output, task_losses = _unit_forward(model, members, batch, accelerator, teacher)
                total = torch.stack([weighting(task, loss) for task, loss in task_losses.items()]).sum()
                unit_losses[index] += total.detach().float() / accumulation
                if output.regularizer is not None:
                    total = total + output.regularizer
                    regularizers.append(output.regularizer.detach().float())
                row = _as_gradients(shared, rows[index])
                accelerator.backward(total / accumulation)
                _keep_in_row(shared, row)
            drawn.append(unit)
            loss_tasks += list(task_losses)
            losses += [loss.detach().float() for loss in task_losses.values()]
    if combines:
        combined = combine_rows(model, shared, rows, unit_losses, weighting, accelerator, step_number)
        _as_gradients(shared, combined)
    regularizer = torch.stack(regularizers).mean() if regularizers else None
    return StepResult(drawn, loss_tasks, torch.stack(losses), regularizer, examples, tokens, padded)


def _unit_forward(
    model: Any, members: list[str], batch: dict[str, Any], accelerator: Accelerator, teacher: Teacher | None
) -> tuple[Any, dict[str, torch.Tensor]]:
    """A unit's forward: the output and each task's loss, with the teacher's soft targets mixed in if distilling."""
    output = model(task=members[0] if len(members) == 1 else members, **batch)
    task_losses = output.losses or {members[0]: output.loss}
    if teacher is not None:
        task_losses = teacher.mix(accelerator.unwrap_model(model), members, batch, output.logits, task_losses)
    return output, task_losses


def shared_parameters(model: Any, accelerator: Accelerator) -> list[torch.Tensor]:
    """The parameters every task reads: the shared encoder's (soft sharing's private layers are not in it)."""
    return [p for p in accelerator.unwrap_model(model).encoder.parameters() if p.requires_grad]


def gradient_rows(model: Any, units: int, accelerator: Accelerator) -> torch.Tensor:
    """The storage of each unit's gradient of the shared parameters, (units, their size), in float32."""
    size = sum(p.numel() for p in shared_parameters(model, accelerator))
    return torch.zeros(units, size, device=accelerator.device)


def _as_gradients(parameters: list[torch.Tensor], flat: torch.Tensor) -> list[torch.Tensor]:
    """Make slices of `flat` the parameters' `.grad`, so a backward accumulates into it in place."""
    views, offset = [], 0
    for parameter in parameters:
        view = flat[offset : offset + parameter.numel()].view_as(parameter)
        parameter.grad = view
        views.append(view)
        offset += parameter.numel()
    return views


def _keep_in_row(parameters: list[torch.Tensor], views: list[torch.Tensor]) -> None:
    """Autograd adds into an existing `.grad` in place; should it ever replace one, copy it into the row."""
    for parameter, view in zip(parameters, views, strict=True):
        if parameter.grad is not None and parameter.grad.data_ptr() != view.data_ptr():
            view.copy_(parameter.grad)
            parameter.grad = view


def combine_rows(
    model: Any,
    shared: list[torch.Tensor],
    rows: torch.Tensor,
    unit_losses: torch.Tensor,
    weighting: Any,
    accelerator: Accelerator,
    step_number: int,
) -> torch.Tensor:
    """The shared parameters' gradient: the rows averaged across processes (with every other gradient, which
    the unsynchronised backwards left per process), unscaled under fp16, combined, and scaled back."""
    if accelerator.num_processes > 1:
        shared_ids = {id(p) for p in shared}
        others = [p for p in model.parameters() if id(p) not in shared_ids and p.grad is not None]
        for tensor in (rows, unit_losses, *(p.grad for p in others)):
            torch.distributed.all_reduce(tensor)
            tensor /= accelerator.num_processes
    # Under fp16 each row carries the grad scaler's factor: the methods see true gradients, and the result is
    # scaled back so that the optimizer's unscaling (and its inf check) work as usual.
    scale = float(accelerator.scaler.get_scale()) if accelerator.scaler is not None else 1.0
    if not bool(torch.isfinite(rows.sum())):  # the step will be skipped: keep the inf/NaN where checks see it
        return rows.sum(dim=0)
    if scale == 1.0:
        return weighting.combine(rows, unit_losses, step_number)
    combined = weighting.combine(rows / scale, unit_losses, step_number) * scale
    if isinstance(weighting, torch.nn.Module):  # GradNorm's logits: the optimizer unscales their gradient too
        for parameter in weighting.parameters():
            if parameter.grad is not None:
                parameter.grad *= scale
    return combined


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        key: {task: t.to(device, non_blocking=True) for task, t in value.items()}
        if isinstance(value, dict)
        else value.to(device, non_blocking=True)
        for key, value in batch.items()
    }


@dataclass
class ReadStep:
    """A step's figures read back to the host: every process's losses per task, its gradient norm, and
    whether its update was skipped on the device for a non-finite loss or gradient."""

    tasks: list[str]
    losses: dict[str, list[float]]
    grad_norm: float
    regularizer: float | None
    is_skipped: bool
    counts: tuple[int, int, int]
    """This process's (examples, real tokens, padded tokens)."""


def read_steps(steps: list[tuple[StepResult, torch.Tensor, torch.Tensor]], accelerator: Accelerator) -> list[ReadStep]:
    """The steps since the last read, as host numbers: one gather across processes and one device → host copy
    for all of them, instead of one per step. Each entry is (step, gradient norm, skipped flag)."""
    if not steps:
        return []
    parts = []
    for step, grad_norm, skipped in steps:
        extra = [] if step.regularizer is None else [step.regularizer.reshape(1)]
        parts += [step.losses, *extra, grad_norm.reshape(1).float(), skipped.reshape(1).float()]
    flat = torch.cat(parts)
    processes = accelerator.num_processes
    values = (accelerator.gather(flat) if processes > 1 else flat).view(processes, -1).tolist()
    read, start = [], 0
    for step, _, _ in steps:
        width = len(step.loss_tasks)
        regularizer = None if step.regularizer is None else values[0][start + width]
        end = start + width + (regularizer is not None)
        by_task: dict[str, list[float]] = {}
        for process_values in values:  # process-major, as every process drew the same units
            for task, loss in zip(step.loss_tasks, process_values[start : start + width], strict=True):
                by_task.setdefault(task, []).append(loss)
        norm, skipped = values[0][end], values[0][end + 1]
        counts = (step.examples, step.tokens, step.padded_tokens)
        read.append(ReadStep(step.tasks, by_task, norm, regularizer, skipped > 0, counts))
        start = end + 2
    return read


def non_finite_flag(
    losses: torch.Tensor, grad_norm: torch.Tensor, mixed_precision: str, accelerator: Accelerator
) -> torch.Tensor:
    """1.0 on the device when this step's update must be skipped, else 0.0; the same on every process.

    Under fp16 an infinite gradient is routine (the grad scaler skips that step by itself): only the loss counts.
    """
    is_bad = ~torch.isfinite(losses).all()
    if mixed_precision != "fp16":
        is_bad = is_bad | ~torch.isfinite(grad_norm)
    flag = is_bad.float()  # 0-dim, as the fused optimizer takes found_inf
    if accelerator.num_processes > 1:  # a collective, not a host sync: every process skips together
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return flag


class NonFiniteLossError(HfmtlError):
    """A loss or gradient became NaN or infinite; the run stopped before the optimizer could use it."""


def non_finite_error(
    losses: dict[str, list[float]], grad_norm: float, step: int, output_dir: Path
) -> NonFiniteLossError:
    """The error that stops a run at a non-finite step: the task (or the gradient), the step, and whether the
    last checkpoint is intact."""
    bad = sorted(task for task, values in losses.items() if not all(map(math.isfinite, values)))
    what = f"loss on task {', '.join(repr(t) for t in bad)}" if bad else f"gradient norm ({grad_norm})"
    latest = find_latest_checkpoint(output_dir)
    kept = f"the last checkpoint ({latest}) is intact" if latest else "no checkpoint was written yet"
    return NonFiniteLossError(
        f"non-finite {what} at step {step}; stopped before the optimizer used it, {kept}. "
        "Lower training.learning_rate, or set training.on_nonfinite_loss=skip"
    )
