"""`hfmtl evaluate`: score a saved model on data (the splits its run config names, or any file given per
task) and write the report, with the identity of the model and of every data file."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hfmtl.atomic import file_sha256
from hfmtl.config.parsing import apply_override
from hfmtl.config.run_config import DataConfig, RunConfig, TaskConfig, config_from_dict, config_to_dict, load_config
from hfmtl.data.collate import Collator
from hfmtl.data.loading import load_split, tokenize_split
from hfmtl.errors import ConfigError, DataError
from hfmtl.evaluation.report import build_report, check_report_folder, write_report
from hfmtl.evaluation.scoring import evaluate_tasks, make_eval_set
from hfmtl.model.folder import LoadedModel, load_model_dir
from hfmtl.model.modeling import TaskSpec
from hfmtl.tasks import task_kind
from hfmtl.train.precision import (
    accelerator_with_precision,
    current_device_type,
    evaluation_precision,
    launcher_precision,
)
from hfmtl.train.records import environment, read_metrics_log

SPLITS = ("train", "validation")


def evaluate_model_dir(
    model_dir: str | Path,
    *,
    config_path: str | Path | None = None,
    overrides: Sequence[str] = (),
    split: str = "validation",
    data: Mapping[str, str] | None = None,
    out_dir: str | Path | None = None,
    baseline: str | Path | None = None,
    batch_size: int = 64,
    trust_remote_code: bool = False,
    allow_different_data: bool = False,
) -> tuple[dict[str, Any], Path]:
    """Evaluate every task that has data and write the report; returns the report and its folder.

    Data per task: `data[task]` (a file, relative to the working directory) if given, else the `split` of
    the task in the run config (`config_path`, or the run_config.yaml saved in the model folder).
    """
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    previous = _baseline(baseline) if baseline else None
    loaded = load_model_dir(model_dir, trust_remote_code=trust_remote_code)
    out = Path(out_dir) if out_dir else loaded.path.parent / f"report-{split}"
    check_report_folder(out)
    config = _run_config(loaded, config_path, overrides)
    sources = _task_sources(loaded.model.config.task_specs, config, split, dict(data or {}))
    # The run's own precision (as its evaluations during training used), unless `accelerate launch
    # --mixed_precision` asks for another; never whatever an earlier Accelerator in this process happened to use.
    device_type = current_device_type()
    trained_in = config.training.mixed_precision if config else None
    precision = launcher_precision(device_type) or evaluation_precision(trained_in, device_type)
    accelerator = accelerator_with_precision(precision, cpu=device_type == "cpu")
    model = loaded.model.to(accelerator.device)
    max_length = config.encoder.max_length if config else min(512, model.encoder.config.max_position_embeddings)

    sets, data_identity = {}, {}
    specs = {spec.name: spec for spec in model.config.task_specs}
    for name, (task, source, data_dir) in sources.items():
        examples, where = load_split(task, source, data_dir, specs[name].labels)
        data_identity[name] = {
            "source": where,
            "sha256": file_sha256(where) if Path(where).is_file() else None,
            "examples": len(examples),
        }
        if previous is not None and not allow_different_data:  # before any work on data that cannot compare
            _check_same_data(previous, {name: data_identity[name]})
        tokenized = tokenize_split(task, split, examples, loaded.tokenizer, max_length)
        sets[name] = make_eval_set(name, task.kind, tokenized)
    collator = Collator(loaded.tokenizer.pad_token_id)
    results = evaluate_tasks(model, sets, collator, accelerator, batch_size)

    identity = {
        "model": {
            "path": str(loaded.path),
            "sha256": file_sha256(loaded.path / "model.safetensors"),
            "encoder": model.config.encoder_name_or_path,
        },
        "split": split if not data else "given files" if set(data) == set(sets) else f"{split} and given files",
        "data": data_identity,
        "environment": environment(
            config.seed if config else None,
            str(accelerator.device),
            accelerator.num_processes,
            accelerator.mixed_precision,
        ),
    }
    report = build_report(
        results,
        {name: spec.kind for name, spec in specs.items() if name in results},
        identity,
        training_log=_training_log(loaded.path),
        baseline=previous,
    )
    if accelerator.is_main_process:
        write_report(report, results, out)
    accelerator.wait_for_everyone()
    return report, out


def _run_config(loaded: LoadedModel, config_path: str | Path | None, overrides: Sequence[str]) -> RunConfig | None:
    if config_path is not None:
        return load_config(config_path, overrides)
    if loaded.run_config is None:
        return None
    raw = config_to_dict(loaded.run_config)
    for override in overrides:
        apply_override(raw, override)
    return config_from_dict(raw)


def _task_sources(
    specs: list[TaskSpec], config: RunConfig | None, split: str, data: dict[str, str]
) -> dict[str, tuple[TaskConfig, str, Path | str]]:
    """Per task with data: the task's config, the file or split to read, and what relative paths resolve to."""
    names = [spec.name for spec in specs]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"--data names {unknown}, but the model's tasks are: {', '.join(names)}")
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got '{split}'")
    configured = {task.name: task for task in config.tasks} if config else {}
    lacking = [name for name in configured if name not in names]
    if lacking:
        raise ConfigError(
            f"the config names task(s) {', '.join(lacking)} that the model does not have; its tasks are: "
            f"{', '.join(names)}"
        )
    sources = {}
    for spec in specs:
        task = configured.get(spec.name) or TaskConfig(
            name=spec.name,
            kind=spec.kind,
            data=DataConfig(train=""),
            label_column=task_kind(spec.kind).default_label_column,
            text_pair_column="text_pair" if spec.pairs else None,
        )
        if spec.name in data:  # a file from the command line: its own format, relative to the working directory
            task = dataclasses.replace(task, data=DataConfig(train=data[spec.name]))
            sources[spec.name] = (task, data[spec.name], Path.cwd())
        elif spec.name in configured and getattr(task.data, split) is not None:
            sources[spec.name] = (task, getattr(task.data, split), config.data_dir)
    if not sources:
        raise ConfigError(
            "no task has data to evaluate: give files with --data TASK=PATH, or a run config (--config) whose "
            f"tasks have a '{split}' split"
        )
    return sources


def _check_same_data(baseline: Mapping[str, Any], data: Mapping[str, Mapping[str, Any]]) -> None:
    """A baseline is only comparable on the same data: every shared task's file must have the same sha256."""
    for task, ours in data.items():
        theirs = baseline.get("data", {}).get(task)
        if theirs is not None and theirs.get("sha256") != ours["sha256"]:
            raise DataError(
                f"--baseline {baseline['source']} scored task '{task}' on other data ({theirs.get('source')}) than "
                f"this evaluation ({ours['source']}): the sha256 differ. Pass --allow-different-data to compare anyway"
            )


def _training_log(model_dir: Path) -> list[dict[str, Any]] | None:
    log = model_dir.parent / "metrics.jsonl"
    if not log.is_file():
        return None
    return read_metrics_log(log)


def _baseline(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        baseline = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"--baseline {path}: cannot read it as a report.json ({error})") from None
    if not isinstance(baseline, dict) or "tasks" not in baseline:
        raise DataError(f"--baseline {path}: not an hfmtl report.json (no 'tasks')")
    return {**baseline, "source": str(path)}
