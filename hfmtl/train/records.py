"""What a run writes about itself: its environment, the JSONL metrics log, and the numbers trackers get."""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hfmtl.atomic import write_json_atomic, write_text_atomic
from hfmtl.config.run_config import RunConfig, config_to_dict, save_config
from hfmtl.errors import DataError

if TYPE_CHECKING:
    from accelerate import Accelerator

    from hfmtl.model.modeling import MultiTaskModel
    from hfmtl.train.step import ReadStep

logger = logging.getLogger(__name__)


def environment(seed: int, device: str, num_processes: int, mixed_precision: str) -> dict[str, Any]:
    """Package versions, device and seed: what someone needs to reproduce the run."""
    import accelerate
    import datasets
    import transformers

    import hfmtl

    return {
        "hfmtl": hfmtl.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "accelerate": accelerate.__version__,
        "platform": platform.platform(),
        "device": device,
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "num_processes": num_processes,
        "mixed_precision": mixed_precision,
        "seed": seed,
    }


def read_metrics_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl. A last line cut short by a kill is left out with a warning; any other
    line that is not a JSON object is an error naming the file and line."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
        elif number == len(lines):
            logger.warning("%s:%d: ignoring a partial last line (the run was stopped while writing it)", path, number)
        else:
            raise DataError(f"{path}:{number}: not a metrics record (a JSON object with a 'step'); the log is damaged")
    return records


class MetricsLog:
    """Appends one JSON object per line; on resume, drops what was logged after the checkpoint's step (and a
    partial last line a kill left behind).

    Only one process writes (`is_writer`); the others' writes are ignored, so callers need not check.
    """

    def __init__(self, path: str | Path, resume_step: int | None = None, is_writer: bool = True) -> None:
        self.path = Path(path)
        self.is_writer = is_writer
        if not is_writer:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.path.write_text("", encoding="utf-8")
        elif self.path.exists():
            kept = [line for line in self.read() if line["step"] <= resume_step]
            write_text_atomic(self.path, "".join(json.dumps(line) + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        if not self.is_writer:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        return read_metrics_log(self.path)


class TrainClock:
    """Seconds spent training, with evaluation and checkpoint writing left out (`with clock.paused(): ...`),
    like the Trainer's `train_runtime` of a run that does not evaluate. Starts from a resumed run's total."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.total = seconds
        self.started = time.perf_counter()

    def seconds(self) -> float:
        return self.total + time.perf_counter() - self.started

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self.total = self.seconds()
        try:
            yield
        finally:
            self.started = time.perf_counter()


@dataclass
class LogWindow:
    """Losses, tokens and tasks since the last log record; `start` is the TrainClock's reading then."""

    start: float
    losses: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    tasks: list[str] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    regularizers: list[float] = field(default_factory=list)
    examples: int = 0
    tokens: int = 0
    padded_tokens: int = 0

    def add(self, step: ReadStep) -> None:
        """One step: its tasks (this process's draws), every process's losses per task, and this process's
        (examples, real tokens, padded tokens)."""
        for task, values in step.losses.items():
            self.losses[task].extend(values)
        self.grad_norms.append(step.grad_norm)
        if step.regularizer is not None:
            self.regularizers.append(step.regularizer)
        self.tasks.extend(step.tasks)
        self.examples += step.counts[0]
        self.tokens += step.counts[1]
        self.padded_tokens += step.counts[2]

    def summary(self, step: int, learning_rate: float, num_processes: int, now: float) -> dict[str, Any]:
        """Mean loss per task (over all processes), throughput, learning rate and the task mix; `now` is the
        TrainClock's reading, so throughput counts training time only."""
        seconds = max(now - self.start, 1e-9)
        every_loss = [loss for losses in self.losses.values() for loss in losses]
        record = {
            "step": step,
            "loss": sum(every_loss) / len(every_loss) if every_loss else None,
            **{f"loss/{task}": sum(values) / len(values) for task, values in self.losses.items()},
            "learning_rate": learning_rate,
            "grad_norm": sum(self.grad_norms) / len(self.grad_norms) if self.grad_norms else None,
            "train_seconds": now,  # training time so far (evaluations and checkpoints excluded)
            "tokens_per_second": self.tokens * num_processes / seconds,
            "examples_per_second": self.examples * num_processes / seconds,
            "padding_efficiency": self.tokens / self.padded_tokens if self.padded_tokens else None,
            "tasks": self.tasks,
        }
        if self.regularizers:  # soft sharing's penalty, apart from the tasks' own losses
            record["regularizer"] = sum(self.regularizers) / len(self.regularizers)
        return record


def tracker_config(config: RunConfig) -> dict[str, Any]:
    """Scalars only, as trackers (TensorBoard hparams) accept."""
    flat = {}
    for section in ("encoder", "sampling", "training"):
        for key, value in config_to_dict(config)[section].items():
            if isinstance(value, (int, float, str, bool)):
                flat[f"{section}.{key}"] = value
    flat["tasks"] = ",".join(task.name for task in config.tasks)
    return flat


def numeric_leaves(data: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested metrics as flat `a/b/c: number` pairs, the only form trackers take (lists and text are dropped)."""
    flat: dict[str, float] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(numeric_leaves(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
            flat[name] = value
    return flat


def start_records(
    accelerator: Accelerator, model: MultiTaskModel, config: RunConfig, resume_step: int | None
) -> MetricsLog:
    """Write the resolved config, task specs and environment; open the metrics log and any trackers."""
    training, output_dir = config.training, Path(config.output_dir)
    if accelerator.is_main_process:
        save_config(config, output_dir / "run_config.yaml")
        write_json_atomic(output_dir / "tasks.json", model.config.tasks)
        env = environment(config.seed, str(accelerator.device), accelerator.num_processes, training.mixed_precision)
        write_json_atomic(output_dir / "environment.json", env)
    if training.report_to:
        accelerator.init_trackers("hfmtl", config=tracker_config(config))
    return MetricsLog(output_dir / "metrics.jsonl", resume_step=resume_step, is_writer=accelerator.is_main_process)
