"""Resumable checkpoints: `accelerator.save_state` plus the trainer's own state, written so that a kill at
any moment leaves every earlier checkpoint intact.

A checkpoint is written into `checkpoint-NNNNNNN.incomplete` and renamed to `checkpoint-NNNNNNN` only once
complete, with a manifest (step, every file's size and sha256) written last. Resuming checks the manifest:
a damaged checkpoint is skipped for the newest intact one, with a warning naming what is wrong.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from hfmtl.atomic import file_sha256, write_json_atomic
from hfmtl.config.parsing import build_dataclass
from hfmtl.config.run_config import RunConfig, config_to_dict
from hfmtl.errors import ConfigError

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
MANIFEST = "manifest.json"
logger = logging.getLogger(__name__)
_NAME = re.compile(r"^checkpoint-(\d+)$")

# Keys that may change between a run and its resumption: they do not change what the model learns.
RESUMABLE_CHANGES = (
    "output_dir",
    "training.eval_every",
    "training.save_every",
    "training.keep_last",
    "training.log_every",
    "training.report_to",
    "training.early_stopping_patience",
    "training.eval_batch_size",
)


@dataclass
class TrainerState:
    """The loop's own state, saved in every checkpoint beside Accelerate's (weights, optimizer, RNG...)."""

    step: int = 0
    best_aggregate: float | None = None
    best_step: int | None = None
    best_metrics: dict[str, dict[str, float]] | None = None
    evaluations_without_improvement: int = 0
    loss_weighting: dict[str, Any] = field(default_factory=dict)
    """The state of a loss weighting that is not a module (DWA); learned weights are saved as a model."""
    train_seconds: float = 0.0
    """Time spent in training steps so far, evaluation and checkpoint writing excluded (across resumes)."""
    task_best: dict[str, float] = field(default_factory=dict)
    """Per-task early stopping: the best main metric so far of each task with an `early_stopping_patience`."""
    task_evaluations_without_improvement: dict[str, int] = field(default_factory=dict)
    stopped_tasks: list[str] = field(default_factory=list)
    """Tasks no longer drawn, their `early_stopping_patience` spent, in the order they stopped."""


def save_checkpoint(
    accelerator: Accelerator,
    output_dir: Path,
    state: TrainerState,
    loader_state: Mapping[str, Any],
    identity: Mapping[str, Any],
    keep_last: int,
) -> Path:
    """Write model, optimizer, scheduler, scaler, RNG, loader and trainer state; keep the newest `keep_last`.

    `identity` (config, task order, process count) is what a resuming run must match.
    """
    final = output_dir / CHECKPOINTS / f"checkpoint-{state.step:07d}"
    partial = final.with_name(final.name + ".incomplete")
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))  # every process writes its own RNG state
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_json_atomic(partial / STATE_FILE, {**asdict(state), "loader": dict(loader_state), **identity})
        write_json_atomic(partial / MANIFEST, {"step": state.step, "files": file_digests(partial)})
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        _remove_old(output_dir, keep_last, final)
    accelerator.wait_for_everyone()
    return final


def resolve_resume(output_dir: Path, resume: str | None, overwrite: bool) -> Path | None:
    """The checkpoint to resume from: None for a fresh run, the newest for "latest", else the path given."""
    if resume is None:
        if has_checkpoints(output_dir) and not overwrite:
            raise ConfigError(
                f"output_dir '{output_dir}' already holds checkpoints of an earlier run; pass --resume to continue "
                "it, --overwrite to start again there, or --set output_dir=... for a new folder"
            )
        return None
    if resume != "latest":
        path = Path(resume)
        if not path.is_dir():
            raise ConfigError(f"--resume: checkpoint '{path}' does not exist")
        if (path / CHECKPOINTS).is_dir():
            raise ConfigError(
                f"--resume: '{path}' is a run's folder, not one of its checkpoints; give a folder under "
                f"'{path / CHECKPOINTS}', or --resume alone with --set output_dir={path}"
            )
        problem = checkpoint_problem(path)
        if problem:
            raise ConfigError(f"--resume: checkpoint '{path}' is damaged: {problem}")
        return path
    path = find_latest_checkpoint(output_dir)
    if path is None:
        raise ConfigError(f"--resume: no intact checkpoint in '{output_dir / CHECKPOINTS}'")
    return path


def find_latest_checkpoint(output_dir: Path) -> Path | None:
    """The intact checkpoint with the highest step, if any; damaged newer ones are skipped with a warning."""
    for path in reversed(_checkpoints(output_dir)):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        logger.warning("skipping damaged checkpoint %s: %s", path, problem)
    return None


def checkpoint_problem(path: Path, *, verify_contents: bool = True) -> str | None:
    """What is wrong with a checkpoint folder (missing manifest, missing, resized or altered file), or None.
    Without `verify_contents` the files' sizes are checked but not their sha256 (a read of every byte)."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        return f"no {MANIFEST} (it was not completely written)"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"{MANIFEST} is not valid JSON"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(entry, dict) and {"bytes", "sha256"} <= set(entry) for entry in files.values()
    ):
        return f"{MANIFEST} does not list the files with their sizes and sha256 (it was altered)"
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != expected["bytes"]:
            return f"{name} has {file.stat().st_size} bytes, the manifest says {expected['bytes']}"
        if verify_contents and file_sha256(file) != expected["sha256"]:
            return f"{name} does not match its sha256 in the manifest"
    return None


def load_checkpoint(
    accelerator: Accelerator, path: Path, identity: Mapping[str, Any]
) -> tuple[TrainerState, dict[str, Any]]:
    """Restore everything `save_checkpoint` wrote, after checking it was written by the same kind of run.

    Returns the trainer state and the loader state.
    """
    if not (path / STATE_FILE).is_file():
        raise ConfigError(f"{path} is not a complete hfmtl checkpoint (no {STATE_FILE})")
    saved = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    differences = config_differences(saved["config"], identity["config"])
    for key in ("task_order", "num_processes"):
        if saved[key] != identity[key]:
            differences.append(f"{key}: {saved[key]!r} -> {identity[key]!r}")
    saved_data = saved.get("training_data", {})  # checkpoints written before it was recorded have none
    changed = sorted(task for task, content in saved_data.items() if identity["training_data"].get(task) != content)
    differences += [f"the training data of task '{task}' changed since the checkpoint" for task in changed]
    if differences:
        raise ConfigError(f"cannot resume from {path}: this run differs from it: " + "; ".join(differences))
    accelerator.load_state(str(path))
    fields = {name: saved[name] for name in TrainerState.__dataclass_fields__ if name in saved}
    return TrainerState(**fields), saved["loader"]


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two config dicts, except the ones a resume may change. The saved
    config is read with today's defaults for the keys it lacks (a checkpoint written before a key existed):
    a new key's default is what the older code did."""
    flat_saved, flat_current = _flatten(_with_defaults(saved)), _flatten(current)
    return [
        f"{key}: {flat_saved.get(key)!r} -> {flat_current.get(key)!r}"
        for key in sorted(set(flat_saved) | set(flat_current))
        if flat_saved.get(key) != flat_current.get(key) and not key.startswith(RESUMABLE_CHANGES)
    ]


def _with_defaults(saved: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        return config_to_dict(build_dataclass(RunConfig, saved))
    except ConfigError:  # a key since removed or a value no longer valid: compared as written, so it shows
        return saved


def file_digests(folder: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file under `folder` (the manifest excepted), by relative path."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    return {str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": file_sha256(p)} for p in files}


def has_checkpoints(output_dir: Path) -> bool:
    return any(_checkpoints(output_dir))


def _checkpoints(output_dir: Path) -> list[Path]:
    folder = output_dir / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), path) for path in folder.iterdir() if (m := _NAME.match(path.name))]
    return [path for _, path in sorted(found)]


def _remove_old(output_dir: Path, keep_last: int, saved: Path) -> None:
    """Keep the newest `keep_last` intact checkpoints up to the one just `saved`. Those of later steps are from a
    continuation this run went back on (it resumed from an earlier one) and damaged ones can never be resumed:
    left, either would count as the newest and push out the one just written."""
    if keep_last <= 0:
        return
    checkpoints = _checkpoints(output_dir)
    position = checkpoints.index(saved)
    # Sizes only: a checkpoint cut short by a kill or a full disk shows there, without hashing every older one
    # at every save (resume still verifies the sha256 of the one it takes).
    intact = [path for path in checkpoints[:position] if checkpoint_problem(path, verify_contents=False) is None]
    removed = [path for path in checkpoints if path != saved and path not in intact[len(intact) - keep_last + 1 :]]
    for path in removed:
        shutil.rmtree(path)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key == "tasks" and isinstance(value, list):
            for task in value:
                flat.update(_flatten(task, f"tasks.{task.get('name')}."))
        elif isinstance(value, Mapping):
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def run_identity(config: RunConfig, accelerator: Accelerator, training_data: Mapping[str, str]) -> dict[str, Any]:
    """What a checkpoint must share with the run that resumes it: the config, task order and process count
    (the task order seeds the sampler; the process count decides each process's share of every batch), and
    the content of each task's training data (`training_data`: task → hash of its training split)."""
    return {
        "config": config_to_dict(config),
        "task_order": [task.name for task in config.tasks],
        "num_processes": accelerator.num_processes,
        "training_data": dict(training_data),
    }
