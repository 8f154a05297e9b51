"""The training loop: one shared encoder, one task per micro-batch, on Accelerate.

Read `train` top to bottom: set up → (resume) → steps (forward, backward, clip, optimizer step) with logging,
evaluation and checkpoints at their intervals → the best model saved as a loadable folder.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from hfmtl.checkpoint import TrainerState, find_latest_checkpoint, load_checkpoint, resolve_resume, save_checkpoint
from hfmtl.config import RunConfig, TrainingConfig, config_to_dict, save_config
from hfmtl.data.collate import Collator
from hfmtl.data.loading import load_all_tasks, model_rows, tokenize_task
from hfmtl.data.sampling import MultiTaskLoader
from hfmtl.encoder import build_model, load_tokenizer
from hfmtl.errors import ConfigError, HfmtlError
from hfmtl.evaluation import evaluate_tasks
from hfmtl.metrics import aggregate
from hfmtl.model_dir import save_model_dir
from hfmtl.modeling import MultiTaskModel
from hfmtl.optimization import build_optimizer, build_scheduler
from hfmtl.records import LogWindow, MetricsLog, environment, tracker_config, write_json

MODEL_DIR = "model"


class NonFiniteLossError(HfmtlError):
    """A loss became NaN or infinite; the run stopped before the optimizer could use it."""


@dataclass
class TrainResult:
    """Where the run's outputs are, and how it ended."""

    output_dir: Path
    model_dir: Path
    step: int
    best_step: int | None
    best_metrics: dict[str, dict[str, float]] | None
    stopped_early: bool
    model: MultiTaskModel
    """The model as it is after the last step (the best one is in `model_dir`)."""
    tasks: list[str]
    """The task of every micro-batch this process trained on in this call, in order."""


@dataclass
class _StepResult:
    """The micro-batches of one optimizer step: this process's tasks and tokens, every process's losses."""

    tasks: list[str]
    losses: dict[str, list[float]]
    tokens: int
    padded_tokens: int

    @property
    def is_finite(self) -> bool:
        return all(math.isfinite(loss) for values in self.losses.values() for loss in values)

    @property
    def non_finite_tasks(self) -> list[str]:
        return sorted(task for task, values in self.losses.items() if not all(map(math.isfinite, values)))


def train(
    config: RunConfig, *, resume: str | None = None, overwrite: bool = False, stop_at_step: int | None = None
) -> TrainResult:
    """Train the config's tasks together; `resume` is a checkpoint path or "latest"."""
    training = config.training
    output_dir = Path(config.output_dir)
    accelerator = _make_accelerator(training)
    resume_from = resolve_resume(output_dir, resume, overwrite)
    set_seed(config.seed)

    tokenizer = load_tokenizer(config.encoder)
    with accelerator.main_process_first():
        data = load_all_tasks(config)
        splits = {name: tokenize_task(d, tokenizer, config.encoder.max_length) for name, d in data.items()}
    eval_rows = {name: model_rows(s["validation"]) for name, s in splits.items() if "validation" in s}
    model = build_model(config, {name: d.labels for name, d in data.items()})
    collator = Collator(tokenizer.pad_token_id, pad_to_multiple_of=8 if training.mixed_precision != "no" else None)
    loader = MultiTaskLoader(
        {name: model_rows(s["train"]) for name, s in splits.items()},
        collator,
        config.sampling,
        batch_size=training.batch_size,
        total_draws=training.max_steps * training.gradient_accumulation_steps,
        seed=config.seed,
        group_by_length=training.group_by_length,
        num_processes=accelerator.num_processes,
        process_index=accelerator.process_index,
    )
    optimizer = build_optimizer(model, training, is_cuda=accelerator.device.type == "cuda")
    scheduler = build_scheduler(optimizer, training)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    unwrapped = accelerator.unwrap_model(model)

    progress = TrainerState()
    if resume_from is not None:
        progress, loader_state = load_checkpoint(accelerator, resume_from, config_to_dict(config))
        loader.load_state_dict(loader_state)
        _say(accelerator, f"Resumed from {resume_from} at step {progress.step}")
    log = _start_records(accelerator, config, output_dir, resume_step=progress.step if resume_from else None)
    last_step = min(training.max_steps, stop_at_step or training.max_steps)
    bar = tqdm(total=training.max_steps, initial=progress.step, disable=not accelerator.is_local_main_process)
    window, stopped_early, tasks = LogWindow(), False, []
    evaluate = _Evaluation(accelerator, unwrapped, tokenizer, eval_rows, collator, config, log)
    if eval_rows and training.eval_at_start and progress.step == 0:
        evaluate(progress)  # the untrained baseline, logged at step 0
    model.train()

    while progress.step < last_step:
        step = _forward_backward(model, loader, accelerator, config)
        tasks.extend(step.tasks)
        if step.is_finite:
            grad_norm = None
            if training.max_grad_norm is not None:
                grad_norm = accelerator.clip_grad_norm_(model.parameters(), training.max_grad_norm)
            optimizer.step()
            scheduler.step()
            window.add(step.tasks, step.losses, step.tokens, step.padded_tokens)
            if grad_norm is not None:
                window.grad_norms.append(grad_norm.detach().float())
        elif training.on_nonfinite_loss == "stop":
            raise _non_finite(step, progress.step + 1, output_dir)
        else:
            _say(accelerator, f"step {progress.step + 1}: non-finite loss on {step.tasks}; batch skipped")
        optimizer.zero_grad(set_to_none=True)
        progress.step += 1
        bar.update(1)

        if progress.step % training.log_every == 0 or progress.step == last_step:
            record = window.summary(progress.step, scheduler.get_last_lr()[0], accelerator.num_processes)
            window = LogWindow()
            _log(accelerator, log, record)
            bar.set_postfix(loss=f"{record['loss']:.4f}" if record["loss"] is not None else "-")
        if eval_rows and (progress.step % training.eval_every == 0 or progress.step == training.max_steps):
            stopped_early = evaluate(progress)
        is_stopping = stopped_early or progress.step == last_step
        if progress.step % training.save_every == 0 or (is_stopping and progress.step < training.max_steps):
            state = (progress, loader.state_dict(), config_to_dict(config))
            save_checkpoint(accelerator, output_dir, *state, training.keep_last)
        if stopped_early:
            patience = training.early_stopping_patience
            _say(accelerator, f"Early stopping at step {progress.step}: no improvement in {patience} evaluations")
            break

    bar.close()
    if not eval_rows and accelerator.is_main_process and progress.step == training.max_steps:
        save_model_dir(unwrapped, tokenizer, output_dir / MODEL_DIR, config, None)
    accelerator.wait_for_everyone()
    if training.report_to:
        accelerator.end_training()
    return TrainResult(
        output_dir=output_dir,
        model_dir=output_dir / MODEL_DIR,
        step=progress.step,
        best_step=progress.best_step,
        best_metrics=progress.best_metrics,
        stopped_early=stopped_early,
        model=unwrapped,
        tasks=tasks,
    )


def _forward_backward(model: Any, loader: MultiTaskLoader, accelerator: Accelerator, config: RunConfig) -> _StepResult:
    """Forward and backward every micro-batch of one step; gradients are summed, not yet applied."""
    accumulation = config.training.gradient_accumulation_steps
    weights = {task.name: task.loss_weight for task in config.tasks}
    tasks, losses, tokens, padded = [], [], 0, 0
    for micro_step in range(accumulation):
        task, batch = loader.next_batch()
        tokens += int(batch["attention_mask"].sum())  # counted on the host copy: no device sync
        padded += batch["attention_mask"].numel()
        batch = {key: value.to(accelerator.device, non_blocking=True) for key, value in batch.items()}
        # Gradients are averaged across processes only on the last micro-batch of a step.
        is_last = micro_step == accumulation - 1
        with contextlib.nullcontext() if is_last else accelerator.no_sync(model):
            with accelerator.autocast():
                loss = model(task=task, **batch).loss
            accelerator.backward(loss * weights[task] / accumulation)
        tasks.append(task)
        losses.append(loss.detach().float())
    # The one host sync of a step: every process must see a non-finite loss before any optimizer uses it.
    every_loss = accelerator.gather(torch.stack(losses)).tolist()  # process-major: same tasks on each
    by_task: dict[str, list[float]] = {}
    for task, loss in zip(tasks * accelerator.num_processes, every_loss, strict=True):
        by_task.setdefault(task, []).append(loss)
    return _StepResult(tasks, by_task, tokens, padded)


def _start_records(
    accelerator: Accelerator, config: RunConfig, output_dir: Path, resume_step: int | None
) -> MetricsLog:
    """Write the resolved config and environment; open the metrics log and any trackers."""
    training = config.training
    if accelerator.is_main_process:
        save_config(config, output_dir / "run_config.yaml")
        env = environment(config.seed, str(accelerator.device), accelerator.num_processes, training.mixed_precision)
        write_json(output_dir / "environment.json", env)
    if training.report_to:
        accelerator.init_trackers("hfmtl", config=tracker_config(config))
    return MetricsLog(output_dir / "metrics.jsonl", resume_step=resume_step, is_writer=accelerator.is_main_process)


def _say(accelerator: Accelerator, message: str) -> None:
    """Print on the main process without breaking the progress bar."""
    if accelerator.is_local_main_process:
        tqdm.write(message)


def _make_accelerator(training: TrainingConfig) -> Accelerator:
    is_cuda = torch.cuda.is_available()
    if training.mixed_precision == "fp16" and not is_cuda:
        raise ConfigError("'training.mixed_precision' is fp16, which is ~19x slower on the CPU; use bf16 or no")
    if training.mixed_precision == "bf16" and not is_cuda and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        raise ConfigError("'training.mixed_precision' is bf16, but this CPU has no bf16 support; use no")
    return Accelerator(
        cpu=not is_cuda,  # under torchrun on CPU-only machines this makes a real (gloo) process group
        mixed_precision=training.mixed_precision,
        log_with=list(training.report_to) or None,
        # The scheduler is stepped once per optimizer step by the loop, not once per process.
        step_scheduler_with_optimizer=False,
        # A step trains one task: the other heads get no gradient, which DDP must be told to expect.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


def _log(accelerator: Accelerator, log: MetricsLog, record: dict[str, Any]) -> None:
    log.write(record)
    numbers = {key: value for key, value in record.items() if isinstance(value, (int, float)) and key != "step"}
    accelerator.log(numbers, step=record["step"])


@dataclass
class _Evaluation:
    """Scores every task, logs the scores, keeps the best model folder, and says when to stop early."""

    accelerator: Accelerator
    model: MultiTaskModel
    tokenizer: Any
    rows: dict[str, list[dict[str, Any]]]
    collator: Collator
    config: RunConfig
    log: MetricsLog

    def __call__(self, progress: TrainerState) -> bool:
        """Evaluate at `progress.step`; True when early stopping says to stop."""
        training, accelerator = self.config.training, self.accelerator
        kinds = {task.name: task.kind for task in self.config.tasks}
        metrics = evaluate_tasks(self.model, self.rows, self.collator, accelerator, training.eval_batch_size)
        score = aggregate(metrics, kinds)
        self.log.write({"step": progress.step, "eval": metrics, "aggregate": score})
        flat = {f"eval/{task}/{name}": value for task, values in metrics.items() for name, value in values.items()}
        accelerator.log(flat | {"eval/aggregate": score}, step=progress.step)
        _say(accelerator, f"step {progress.step}: aggregate {score:.4f} " + _format_main(metrics, kinds))
        if progress.best_aggregate is None or score > progress.best_aggregate:
            progress.best_aggregate, progress.best_step, progress.best_metrics = score, progress.step, metrics
            progress.evaluations_without_improvement = 0
            if accelerator.is_main_process:
                best = {"step": progress.step, "aggregate": score, "metrics": metrics}
                save_model_dir(self.model, self.tokenizer, Path(self.config.output_dir) / MODEL_DIR, self.config, best)
        else:
            progress.evaluations_without_improvement += 1
        patience = training.early_stopping_patience
        return patience is not None and progress.evaluations_without_improvement >= patience


def _format_main(metrics: dict[str, dict[str, float]], kinds: dict[str, str]) -> str:
    from hfmtl.metrics import MAIN_METRICS

    return " ".join(
        f"{task}/{MAIN_METRICS[kinds[task]]}={values[MAIN_METRICS[kinds[task]]]:.4f}"
        for task, values in metrics.items()
    )


def _non_finite(result: _StepResult, step: int, output_dir: Path) -> NonFiniteLossError:
    bad = result.non_finite_tasks
    latest = find_latest_checkpoint(output_dir)
    kept = f"the last checkpoint ({latest}) is intact" if latest else "no checkpoint was written yet"
    return NonFiniteLossError(
        f"non-finite loss on task {', '.join(repr(t) for t in bad)} at step {step}; stopped before the optimizer "
        f"used it, {kept}. Lower training.learning_rate, or set training.on_nonfinite_loss=skip"
    )
