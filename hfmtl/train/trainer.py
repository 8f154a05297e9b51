"""The training loop: one shared encoder, one task per micro-batch (or every task, `sampling.mode: all_tasks`),
on Accelerate.

Read `train` top to bottom: set up → (resume) → steps (forward, backward, clip, optimizer step) with logging,
evaluation and checkpoints at their intervals → the best model saved as a loadable folder.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from hfmtl.config.run_config import RunConfig, TrainingConfig
from hfmtl.data.collate import Collator
from hfmtl.data.joint import sampling_units, unit_batch_sizes, unit_rows, unit_sampling
from hfmtl.data.loading import load_all_tasks, tokenize_task
from hfmtl.data.prefetch import PrefetchingLoader
from hfmtl.data.sampling import MultiTaskLoader
from hfmtl.errors import ConfigError
from hfmtl.evaluation.scoring import make_eval_set
from hfmtl.model.encoder import build_model, check_layers, check_task_names, load_tokenizer
from hfmtl.model.folder import MODEL_DIR, save_model_dir
from hfmtl.model.modeling import MultiTaskModel
from hfmtl.tasks import task_kind
from hfmtl.tasks.labels import class_weights
from hfmtl.train.averaging import WeightAverage, averaged_weights
from hfmtl.train.checkpoint import (
    TrainerState,
    load_checkpoint,
    resolve_resume,
    run_identity,
    save_checkpoint,
)
from hfmtl.train.distillation import load_teacher
from hfmtl.train.loss_weighting import build_loss_weighting
from hfmtl.train.optimization import build_optimizer, build_scheduler, rewind_schedule
from hfmtl.train.precision import accelerator_with_precision, pad_multiple, with_resolved_precision
from hfmtl.train.records import LogWindow, TrainClock, numeric_leaves, start_records
from hfmtl.train.run_dir import earlier_run_files, locked_output_dir, remove_run_files
from hfmtl.train.selection import ModelSelection
from hfmtl.train.step import (
    StepResult,
    forward_backward,
    forward_backward_all_tasks,
    gradient_rows,
    non_finite_error,
    non_finite_flag,
    read_steps,
)


@dataclass
class TrainResult:
    """Where the run's outputs are, and how it ended."""

    output_dir: Path
    model_dir: Path
    step: int
    best_step: int | None
    best_metrics: dict[str, dict[str, Any]] | None
    stopped_early: bool
    model: MultiTaskModel
    """The model as it is after the last step (the best one is in `model_dir`)."""
    tasks: list[str]
    """The task of every micro-batch this process trained on in this call, in order."""


def train(
    config: RunConfig, *, resume: str | None = None, overwrite: bool = False, stop_at_step: int | None = None
) -> TrainResult:
    """Train the config's tasks together; `resume` is a checkpoint path or "latest".

    The output folder is locked for the run: a second run into it is refused while this one lives."""
    config = with_resolved_precision(config)
    # `~/runs/x` means the home folder, as in data paths, not a folder named `~` in the working directory.
    config = dataclasses.replace(config, output_dir=str(Path(config.output_dir).expanduser()))
    accelerator = _make_accelerator(config.training, Path(config.output_dir))
    with locked_output_dir(Path(config.output_dir), is_main_process=accelerator.is_main_process):
        return _train(config, accelerator, resume, overwrite, stop_at_step)


def _train(
    config: RunConfig, accelerator: Accelerator, resume: str | None, overwrite: bool, stop_at_step: int | None
) -> TrainResult:
    training = config.training
    output_dir = Path(config.output_dir)
    resume_from = resolve_resume(output_dir, resume, overwrite)
    leftovers = earlier_run_files(output_dir, overwrite=overwrite, resume_from=resume_from)
    _last_step(training.max_steps, stop_at_step, 0)  # --stop-at is checked before anything is removed
    set_seed(config.seed)

    tokenizer = load_tokenizer(config.encoder)
    check_task_names(config)
    check_layers(config)
    with accelerator.local_main_process_first():  # each machine fills its own data cache once
        data = load_all_tasks(config)
        splits = {name: tokenize_task(d, tokenizer, config.encoder.max_length) for name, d in data.items()}
    eval_sets = {
        name: make_eval_set(name, data[name].task.kind, s["validation"])
        for name, s in splits.items()
        if "validation" in s
    }
    labels = {name: d.labels for name, d in data.items()}
    weights = {t.name: class_weights(t, labels[t.name] or (), splits[t.name]["train"]) for t in config.tasks}
    model = build_model(config, labels, weights)
    teacher = load_teacher(config, tokenizer, labels, accelerator.device)  # None unless distilling
    for task in config.tasks:  # a kind may start its head from the training labels (resume restores weights)
        task_kind(task.kind).init_head(model.heads[task.name], splits[task.name]["train"])
    units = sampling_units(config)
    weighting = build_loss_weighting(config, list(units))
    all_tasks = config.sampling.mode == "all_tasks"
    is_cuda = accelerator.device.type == "cuda"
    collator = Collator(
        tokenizer.pad_token_id, pad_to_multiple_of=pad_multiple(accelerator.device.type, training.mixed_precision)
    )
    loader = MultiTaskLoader(
        {unit: unit_rows(members, splits) for unit, members in units.items()},
        collator,
        unit_sampling(config, units),
        batch_size=unit_batch_sizes(config, units),
        total_draws=training.max_steps * training.gradient_accumulation_steps * (len(units) if all_tasks else 1),
        seed=config.seed,
        group_by_length=training.group_by_length,
        max_tokens=training.max_tokens_per_batch,
        num_processes=accelerator.num_processes,
        process_index=accelerator.process_index,
    )
    learned = [weighting] if isinstance(weighting, torch.nn.Module) else []  # learned loss weights train too
    weight_groups = [
        {"params": list(module.parameters()), "lr": config.loss_weighting.learning_rate, "weight_decay": 0.0}
        for module in learned
    ]
    head_rates = {task.name: task.head_lr_multiplier for task in config.tasks if task.head_lr_multiplier != 1}
    optimizer = build_optimizer(model, training, head_lr_multipliers=head_rates, extra_groups=weight_groups)
    scheduler = build_scheduler(optimizer, training)
    model, optimizer, scheduler, *learned = accelerator.prepare(model, optimizer, scheduler, *learned)
    weigh = learned[0] if learned else weighting  # what the step calls (DDP-wrapped when learned)
    rows = None
    if weighting.combines_gradients:  # a gradient method: it only scales losses, and sets its own gradient
        weigh, rows = weighting, gradient_rows(model, len(units), accelerator)
    unwrapped = accelerator.unwrap_model(model)
    average = WeightAverage(unwrapped, training.ema_decay) if training.ema_decay is not None else None
    if average is not None:
        accelerator.register_for_checkpointing(average)  # saved and restored with the weights

    identity = run_identity(config, accelerator, {name: d.contents["train"] for name, d in data.items()})
    progress = TrainerState()
    if resume_from is not None:
        progress, loader_state = load_checkpoint(accelerator, resume_from, identity)
        loader.load_state_dict(loader_state)
        if not learned:  # learned weights come back with the modules; DWA's state lives in the trainer state
            weighting.load_state_dict(progress.loss_weighting)
        _say(accelerator, f"Resumed from {resume_from} at step {progress.step}")
    if accelerator.is_main_process and leftovers:  # a fresh folder: nothing of an earlier run may remain
        _say(accelerator, f"Replacing the earlier run in {output_dir}: {', '.join(p.name for p in leftovers)}")
        remove_run_files(leftovers)
    last_step = _last_step(training.max_steps, stop_at_step, progress.step)
    log = start_records(accelerator, unwrapped, config, resume_step=progress.step if resume_from else None)
    evaluate = ModelSelection(accelerator, unwrapped, tokenizer, eval_sets, collator, config, log)
    bar = tqdm(total=training.max_steps, initial=progress.step, disable=not accelerator.is_local_main_process)
    clock = TrainClock(progress.train_seconds)
    window, stopped_early, tasks = LogWindow(start=clock.seconds()), None, []
    if eval_sets and training.eval_at_start and progress.step == 0:
        with clock.paused(), averaged_weights(average):
            evaluate(progress)  # the untrained baseline, logged at step 0
    batches = PrefetchingLoader(loader, pin_memory=is_cuda)  # the next batch is made while a step computes
    unread: list[tuple[StepResult, torch.Tensor, torch.Tensor]] = []
    model.train()

    while progress.step < last_step:
        if all_tasks:
            step = forward_backward_all_tasks(
                model, weigh, batches, units, accelerator, config, progress.step, rows, teacher
            )
        else:
            step = forward_backward(model, weigh, batches, units, accelerator, config, teacher)
        tasks.extend(step.tasks)
        grad_norm = accelerator.clip_grad_norm_(model.parameters(), training.max_grad_norm or math.inf)
        # A non-finite loss or gradient must never reach the weights, yet reading it here would make the host
        # wait for every step: the fused optimizer skips the update on the device (as under a grad scaler),
        # and the loop reads what happened at its next logging, evaluation or checkpoint step.
        skipped = non_finite_flag(step.losses, grad_norm, training.mixed_precision, accelerator)
        if training.mixed_precision != "fp16":  # under fp16 the grad scaler sets found_inf itself
            optimizer.optimizer.found_inf = skipped
        optimizer.step()
        if average is not None:
            average.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        unread.append((step, grad_norm, skipped))
        progress.step += 1
        bar.update(1)

        is_log = progress.step % training.log_every == 0 or progress.step == last_step
        is_eval = bool(eval_sets) and (progress.step % training.eval_every == 0 or progress.step == training.max_steps)
        is_save = progress.step % training.save_every == 0 or progress.step == last_step
        is_window = weighting.window is not None and progress.step % weighting.window == 0
        if is_log or is_eval or is_save or is_window:
            first_unread, skipped_updates = progress.step - len(unread) + 1, 0
            for number, read in enumerate(read_steps(unread, accelerator), start=first_unread):
                if read.is_skipped:
                    if training.on_nonfinite_loss == "stop":
                        raise non_finite_error(read.losses, read.grad_norm, number, output_dir)
                    _say(accelerator, f"step {number}: non-finite loss or gradient on {read.tasks}; skipped")
                    skipped_updates += 1
                    continue
                weighting.update(read.losses)
                window.add(read)
            if training.mixed_precision != "fp16":  # under fp16 the scheduler already skips what the scaler skips
                rewind_schedule(scheduler, skipped_updates)
            unread = []
            progress.train_seconds = clock.seconds()
        if is_log:
            record = window.summary(
                progress.step, scheduler.get_last_lr()[0], accelerator.num_processes, clock.seconds()
            )
            record["loss_weights"] = weighting.weights()
            window = LogWindow(start=clock.seconds())
            log.write(record)
            accelerator.log(numeric_leaves(record), step=progress.step)
            bar.set_postfix(loss=f"{record['loss']:.4f}" if record["loss"] is not None else "-")
        with clock.paused():  # evaluation and checkpoints are not training time
            if is_eval:
                with averaged_weights(average):  # what is evaluated, and saved if best, is the average
                    verdict = evaluate(progress)
                stopped_early = verdict.stop_run
                if verdict.stop_tasks and not stopped_early:
                    batches.stop_units(verdict.stop_tasks)
                    names = ", ".join(verdict.stop_tasks)
                    _say(accelerator, f"step {progress.step}: {names} stopped (early_stopping_patience); others go on")
            is_stopping = stopped_early is not None or progress.step == last_step
            if progress.step % training.save_every == 0 or (is_stopping and progress.step < training.max_steps):
                progress.loss_weighting = {} if learned else weighting.state_dict()
                save_checkpoint(accelerator, output_dir, progress, batches.state_dict(), identity, training.keep_last)
        if stopped_early is not None:
            _say(accelerator, f"Early stopping at step {progress.step}: {stopped_early}")
            break

    batches.close()
    bar.close()
    if not eval_sets and accelerator.is_main_process and progress.step == training.max_steps:
        with averaged_weights(average):
            save_model_dir(unwrapped, tokenizer, output_dir / MODEL_DIR, config, None)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return TrainResult(
        output_dir=output_dir,
        model_dir=output_dir / MODEL_DIR,
        step=progress.step,
        best_step=progress.best_step,
        best_metrics=progress.best_metrics,
        stopped_early=stopped_early is not None,
        model=unwrapped,
        tasks=tasks,
    )


def _make_accelerator(training: TrainingConfig, output_dir: Path) -> Accelerator:
    for tracker in training.report_to:
        if importlib.util.find_spec(tracker) is None:
            raise ConfigError(f"'training.report_to' lists {tracker}, which is not installed (pip install {tracker})")
    is_cuda = torch.cuda.is_available()
    return accelerator_with_precision(
        training.mixed_precision,
        cpu=not is_cuda,  # under torchrun on CPU-only machines this makes a real (gloo) process group
        log_with=list(training.report_to) or None,
        project_dir=str(output_dir / "logs"),  # where TensorBoard writes
        # The scheduler is stepped once per optimizer step by the loop, not once per process.
        step_scheduler_with_optimizer=False,
        # A step trains one task: the other heads get no gradient, which DDP must be told to expect.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


def _last_step(max_steps: int, stop_at_step: int | None, current_step: int) -> int:
    if stop_at_step is None:
        return max_steps
    if not current_step < stop_at_step <= max_steps:
        raise ConfigError(
            f"--stop-at {stop_at_step} must be after the current step ({current_step}) and at most "
            f"training.max_steps ({max_steps})"
        )
    return stop_at_step


def _say(accelerator: Accelerator, message: str) -> None:
    """Print on the main process without breaking the progress bar."""
    if accelerator.is_local_main_process:
        tqdm.write(message)
