"""Checks across config fields that a single field's type cannot express (unique task names, known kinds,
weights per task, joint groups...), each error naming the dotted key at fault."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hfmtl.errors import ConfigError
from hfmtl.tasks import TASK_KINDS

if TYPE_CHECKING:
    from hfmtl.config.run_config import RunConfig, SamplingConfig, TaskConfig, TrainingConfig


def check_config(config: RunConfig) -> None:
    """Cross-field checks that a single field's type cannot express."""
    if not config.tasks:
        raise ConfigError("'tasks' must list at least one task")
    names = [task.name for task in config.tasks]
    for task in config.tasks:
        where = f"tasks.{task.name}"
        if not task.name.isidentifier():
            raise ConfigError(f"'{where}.name' must be a simple identifier (letters, digits, _), got '{task.name}'")
        if names.count(task.name) > 1:
            raise ConfigError(f"task name '{task.name}' is used twice; task names must be unique")
        if task.kind not in TASK_KINDS:
            raise ConfigError(f"'{where}.kind' is '{task.kind}'; expected one of: {', '.join(TASK_KINDS)}")
        TASK_KINDS[task.kind].check_config(task, where)
        if task.labels is not None and (len(set(task.labels)) != len(task.labels) or len(task.labels) < 2):
            raise ConfigError(f"'{where}.labels' must list at least two distinct names, got {list(task.labels)}")
        if task.loss_weight < 0:
            raise ConfigError(f"'{where}.loss_weight' must be >= 0, got {task.loss_weight}")
        if task.max_length is not None and not 8 <= task.max_length <= config.encoder.max_length:
            raise ConfigError(
                f"'{where}.max_length' must be between 8 and encoder.max_length ({config.encoder.max_length}), "
                f"got {task.max_length}"
            )
        if task.batch_size is not None and task.batch_size < 1:
            raise ConfigError(f"'{where}.batch_size' must be >= 1 or null, got {task.batch_size}")
    for task in config.tasks:
        for split in ("train", "validation"):
            cap = getattr(task.data, f"max_{split}_rows")
            if cap is not None and cap < 1:
                raise ConfigError(f"'tasks.{task.name}.data.max_{split}_rows' must be >= 1 or null, got {cap}")
    if not 0 <= config.seed < 2**32:  # numpy's and torch's seeding both take this range
        raise ConfigError(f"'seed' must be between 0 and {2**32 - 1}, got {config.seed}")
    if config.encoder.max_length < 8:
        raise ConfigError(f"'encoder.max_length' must be at least 8, got {config.encoder.max_length}")
    _check_sampling(config.sampling, names)
    selection = config.training.metric_for_best_model
    if selection != "mean" and selection.partition(".")[0] not in names:
        raise ConfigError(
            f"'training.metric_for_best_model' is '{selection}'; expected 'mean', a task name "
            f"({', '.join(names)}) or TASK.METRIC"
        )
    _check_training(config.training)
    _check_task_training(config)
    _check_sharing(config)
    _check_loss_weighting(config)
    _check_distillation(config)


def _check_sampling(sampling: SamplingConfig, names: list[str]) -> None:
    if sampling.temperature <= 0:
        raise ConfigError(f"'sampling.temperature' must be > 0, got {sampling.temperature}")
    if sampling.size_cap is not None and sampling.size_cap < 1:
        raise ConfigError(f"'sampling.size_cap' must be >= 1, got {sampling.size_cap}")
    if sampling.strategy == "fixed":
        _check_weights("sampling.weights", sampling.weights or {}, names)
        if sampling.final_weights is not None:
            _check_weights("sampling.final_weights", sampling.final_weights, names)
    else:
        for key in ("weights", "final_weights"):
            if getattr(sampling, key) is not None:
                raise ConfigError(f"'sampling.{key}' only applies to strategy 'fixed', not '{sampling.strategy}'")
    if sampling.mode == "all_tasks" and sampling.strategy == "fixed":
        raise ConfigError(
            "'sampling.weights' has no effect with 'sampling.mode: all_tasks': every step trains every task. "
            "Weigh the tasks' losses with 'tasks.NAME.loss_weight' instead"
        )


def _check_weights(key: str, weights: dict[str, float], names: list[str]) -> None:
    missing, unknown = set(names) - set(weights), set(weights) - set(names)
    if missing or unknown:
        raise ConfigError(
            f"'{key}' must give one weight per task ({', '.join(names)}); "
            f"missing: {sorted(missing) or 'none'}, unknown: {sorted(unknown) or 'none'}"
        )
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ConfigError(f"'{key}' must be >= 0 and not all zero, got {weights}")


_TRAINING_MINIMUMS = {
    "max_steps": 1,
    "batch_size": 1,
    "eval_batch_size": 1,
    "gradient_accumulation_steps": 1,
    "eval_every": 1,
    "save_every": 1,
    "log_every": 1,
    "keep_last": 0,
}


def _check_training(training: TrainingConfig) -> None:
    for name, minimum in _TRAINING_MINIMUMS.items():
        if getattr(training, name) < minimum:
            raise ConfigError(f"'training.{name}' must be >= {minimum}, got {getattr(training, name)}")
    if training.warmup_steps < 0 or training.warmup_steps > training.max_steps:
        raise ConfigError(
            f"'training.warmup_steps' ({training.warmup_steps}) must be between 0 and "
            f"'training.max_steps' ({training.max_steps})"
        )
    if training.learning_rate <= 0:
        raise ConfigError(f"'training.learning_rate' must be > 0, got {training.learning_rate}")
    if not 0 < training.layer_lr_decay <= 1:
        raise ConfigError(f"'training.layer_lr_decay' must be in (0, 1] (1: no decay), got {training.layer_lr_decay}")
    if training.weight_decay < 0:
        raise ConfigError(f"'training.weight_decay' must be >= 0, got {training.weight_decay}")
    patience = training.early_stopping_patience
    if patience is not None and patience < 1:
        raise ConfigError(f"'training.early_stopping_patience' must be >= 1 (evaluations) or null, got {patience}")
    if training.max_grad_norm is not None and training.max_grad_norm <= 0:
        raise ConfigError(f"'training.max_grad_norm' must be > 0 or null, got {training.max_grad_norm}")
    if training.ema_decay is not None and not 0 < training.ema_decay < 1:
        decay = training.ema_decay
        raise ConfigError(f"'training.ema_decay' must be between 0 and 1 (exclusive) or null, got {decay}")
    budget = training.max_tokens_per_batch
    if budget is not None and budget < 1:
        raise ConfigError(f"'training.max_tokens_per_batch' must be >= 1 or null, got {budget}")
    if budget is not None and not training.group_by_length:
        raise ConfigError(
            "'training.max_tokens_per_batch' needs 'training.group_by_length: true': random batches mix "
            "lengths, so a token budget cannot size them; set one of the two"
        )
    for tracker in training.report_to:
        if tracker not in ("tensorboard", "wandb"):
            raise ConfigError(f"'training.report_to' lists '{tracker}'; expected tensorboard or wandb")


def _check_task_training(config: RunConfig) -> None:
    """Each task's own loss options, head learning rate and early stopping."""
    grouped = {name for group in config.joint_tasks for name in group}
    for task in config.tasks:
        where = f"tasks.{task.name}"
        if not TASK_KINDS[task.kind].softmax_loss:
            softmax_kinds = ", ".join(name for name, kind in TASK_KINDS.items() if kind.softmax_loss)
            for key, unset in (("label_smoothing", 0.0), ("class_weights", None)):
                if getattr(task, key) != unset:
                    raise ConfigError(
                        f"'{where}.{key}' only applies to tasks with a softmax over labels ({softmax_kinds}), "
                        f"not {task.kind}; remove it"
                    )
        if not 0 <= task.label_smoothing < 1:
            raise ConfigError(f"'{where}.label_smoothing' must be >= 0 and < 1, got {task.label_smoothing}")
        if isinstance(task.class_weights, dict):
            for label, weight in task.class_weights.items():
                if weight <= 0:
                    raise ConfigError(f"'{where}.class_weights.{label}' must be > 0, got {weight}")
                if task.labels is not None and label not in task.labels:
                    raise ConfigError(
                        f"'{where}.class_weights' names '{label}', which is not one of the task's labels "
                        f"({', '.join(task.labels)})"
                    )
        if task.head_lr_multiplier <= 0:
            raise ConfigError(f"'{where}.head_lr_multiplier' must be > 0, got {task.head_lr_multiplier}")
        patience = task.early_stopping_patience
        if patience is None:
            continue
        if patience < 1:
            raise ConfigError(f"'{where}.early_stopping_patience' must be >= 1 (evaluations) or null, got {patience}")
        why_not = None
        if task.data.validation is None:
            why_not = "it has no validation split to watch"
        elif config.sampling.mode == "all_tasks":
            why_not = "'sampling.mode' is all_tasks, where every step trains every task"
        elif task.name in grouped:
            why_not = "it is in a joint_tasks group, whose tasks share every batch"
        if why_not:
            raise ConfigError(f"'{where}.early_stopping_patience' cannot stop this task alone: {why_not}")


def _check_sharing(config: RunConfig) -> None:
    """Layer indices, soft sharing and joint groups; bounds that need the encoder are checked when it loads."""
    for task in config.tasks:
        if task.layer is not None and task.layer < 1:
            raise ConfigError(
                f"'tasks.{task.name}.layer' must be >= 1 (1 is the first encoder layer), got {task.layer}"
            )
    if config.sharing.soft_layers < 0 or config.sharing.soft_penalty < 0:
        raise ConfigError("'sharing.soft_layers' and 'sharing.soft_penalty' must be >= 0")
    grouped: list[str] = []
    for group in config.joint_tasks:
        tasks = [config_task(config, name, "joint_tasks") for name in group]
        if len(tasks) < 2:
            raise ConfigError(f"'joint_tasks' group {list(group)} must name at least two tasks")
        first = tasks[0]
        for task in tasks[1:]:
            same_texts = (task.text_column, task.text_pair_column) == (first.text_column, first.text_pair_column)
            if task.data != first.data or not same_texts:
                raise ConfigError(
                    f"'joint_tasks' group {list(group)}: '{task.name}' and '{first.name}' must read the same data "
                    "(same data section, text_column and text_pair_column) to share batches"
                )
        if len({task.batch_size for task in tasks}) > 1:
            raise ConfigError(
                f"'joint_tasks' group {list(group)}: its tasks share batches, so they must have the same "
                f"batch_size, got {[task.batch_size for task in tasks]}"
            )
        if not all(TASK_KINDS[task.kind].per_text for task in tasks):
            raise ConfigError(f"'joint_tasks' group {list(group)}: only sequence-level tasks can share batches")
        grouped += list(group)
    if len(grouped) != len(set(grouped)):
        raise ConfigError(
            f"'joint_tasks': a task may be in one group only, got {[list(g) for g in config.joint_tasks]}"
        )


GRADIENT_METHODS = ("pcgrad", "cagrad", "gradnorm")
"""The `loss_weighting.strategy` values that combine per-task gradients, so need every task in every step."""


def _check_loss_weighting(config: RunConfig) -> None:
    weighting = config.loss_weighting
    if weighting.dwa_temperature <= 0 or weighting.dwa_window < 1:
        raise ConfigError("'loss_weighting.dwa_temperature' must be > 0 and 'loss_weighting.dwa_window' >= 1")
    if weighting.learning_rate <= 0:
        raise ConfigError(f"'loss_weighting.learning_rate' must be > 0, got {weighting.learning_rate}")
    if weighting.cagrad_c < 0 or weighting.gradnorm_alpha < 0:
        raise ConfigError("'loss_weighting.cagrad_c' and 'loss_weighting.gradnorm_alpha' must be >= 0")
    if weighting.strategy not in GRADIENT_METHODS:
        return
    if config.sampling.mode != "all_tasks":
        raise ConfigError(
            f"'loss_weighting.strategy' is '{weighting.strategy}', a gradient method: it combines every task's "
            "gradient in each step, so it needs 'sampling.mode: all_tasks' (today each step trains one task)"
        )
    grouped = {name for group in config.joint_tasks for name in group}
    units = len(config.joint_tasks) + sum(task.name not in grouped for task in config.tasks)
    if units < 2:
        raise ConfigError(
            f"'loss_weighting.strategy' is '{weighting.strategy}', which balances two or more tasks' gradients, "
            "but this config trains one task (or one joint group); use 'static'"
        )


def _check_distillation(config: RunConfig) -> None:
    distillation = config.distillation
    if not 0 <= distillation.alpha <= 1:
        raise ConfigError(f"'distillation.alpha' must be between 0 and 1, got {distillation.alpha}")
    if distillation.temperature <= 0:
        raise ConfigError(f"'distillation.temperature' must be > 0, got {distillation.temperature}")
    if config.encoder.num_layers is not None and config.encoder.num_layers < 1:
        raise ConfigError(f"'encoder.num_layers' must be >= 1 or null, got {config.encoder.num_layers}")


def config_task(config: RunConfig, name: str, key: str) -> TaskConfig:
    """The task called `name`, or an error naming the config key that referred to it."""
    for task in config.tasks:
        if task.name == name:
            return task
    raise ConfigError(f"'{key}' names '{name}', but the tasks are: {', '.join(t.name for t in config.tasks)}")
