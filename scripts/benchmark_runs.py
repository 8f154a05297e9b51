"""What the benchmark parts share: the smoke-run sizes, configs derived from the base one, hfmtl runs and
their logs, and the settings records printed beside every ratio."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmark_peers import (  # scripts/ is on sys.path
    PeerSettings,
    starts_at_label_priors,
)

from hfmtl.config.parsing import apply_override
from hfmtl.config.run_config import RunConfig, TaskConfig, config_from_dict, config_to_dict, task_batch_size
from hfmtl.data.loading import load_all_tasks, tokenize_task
from hfmtl.evaluation.scoring import EvalSet, make_eval_set
from hfmtl.model.encoder import load_tokenizer
from hfmtl.train.trainer import TrainResult
from hfmtl.train.trainer import train as train_hfmtl

QUICK_TRAIN_ROWS = 4000
QUICK_VALIDATION_ROWS = 500
QUICK_PEER_STEPS = 30
"""Sizes of a smoke run (`--quick`): training rows, validation rows, steps per peer."""


def matched_settings(config: RunConfig, task: TaskConfig, sampling: str, steps: int) -> PeerSettings:
    """A peer with the hfmtl run's batch size for this task, learning rate, warmup share, precision, length
    and seed."""
    training = config.training
    return PeerSettings(
        batch_size=task_batch_size(task, training),
        learning_rate=training.learning_rate,
        warmup=1 / 16,
        weight_decay=training.weight_decay,
        max_length=config.encoder.max_length,
        precision=training.mixed_precision,
        sampling=sampling,
        seed=config.seed,
        steps=max(1, steps),
        prior_bias=starts_at_label_priors(task),
    )


def peer_settings(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The settings the peers share, and each one's steps (and batch size, where they differ)."""
    shared = {key: value for key, value in runs[0]["settings"].items() if key not in ("steps", "epochs")}
    batch_sizes = {run["task"]: run["settings"]["batch_size"] for run in runs}
    if len(set(batch_sizes.values())) > 1:
        shared["batch_size"] = batch_sizes
    return {**shared, "steps": {run["task"]: run["steps"] for run in runs}}


def hfmtl_settings(config: RunConfig, *, steps: int) -> dict[str, Any]:
    training = config.training
    batch_sizes = {task.name: task_batch_size(task, training) for task in config.tasks}
    return {
        "batch_size": batch_sizes if len(set(batch_sizes.values())) > 1 else training.batch_size,
        "learning_rate": training.learning_rate,
        "layer_lr_decay": training.layer_lr_decay,
        "precision": training.mixed_precision,
        "sampling": "group_by_length" if training.group_by_length else "random",
        "task_sampling": config.sampling.strategy,
        "task_weights": config.sampling.weights,
        "final_task_weights": config.sampling.final_weights,
        "steps": steps,
        "seed": config.seed,
    }


def validation_cap(quick: bool) -> int | None:
    return QUICK_VALIDATION_ROWS if quick else None


def validation_overrides(base: RunConfig, quick: bool) -> list[str]:
    """Full validation splits (a smoke run caps them)."""
    cap = validation_cap(quick)
    return [f"tasks.{t.name}.data.max_validation_rows={'null' if cap is None else cap}" for t in base.tasks]


def eval_sets(config: RunConfig) -> tuple[dict[str, EvalSet], int]:
    """Every task's validation rows as hfmtl's evaluation reads them, and the pad token id."""
    tokenizer = load_tokenizer(config.encoder)
    sets = {}
    for name, data in load_all_tasks(config).items():
        validation = tokenize_task(data, tokenizer, config.encoder.max_length)["validation"]
        sets[name] = make_eval_set(name, data.task.kind, validation)
    return sets, tokenizer.pad_token_id


def train(config: RunConfig) -> TrainResult:
    return train_hfmtl(config, overwrite=True)


def load_config_with(base: RunConfig, overrides: list[str]) -> RunConfig:
    raw = config_to_dict(base)
    for override in overrides:
        apply_override(raw, override)
    return config_from_dict(raw)


def timed(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start
