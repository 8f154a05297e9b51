"""What a run writes about itself: the environment, JSON files and the JSONL metrics log, all written so
that a crash never leaves half a file behind."""

from __future__ import annotations

import json
import os
import platform
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hfmtl.config import RunConfig, config_to_dict


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically: to a temporary file, then renamed over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


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


class MetricsLog:
    """Appends one JSON object per line; on resume, drops what was logged after the checkpoint's step.

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
            self.path.write_text("".join(json.dumps(line) + "\n" for line in kept), encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        if not self.is_writer:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class LogWindow:
    """Losses, tokens and tasks since the last log record."""

    losses: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    tasks: list[str] = field(default_factory=list)
    grad_norms: list[torch.Tensor] = field(default_factory=list)
    tokens: int = 0
    padded_tokens: int = 0
    start: float = field(default_factory=time.perf_counter)

    def add(self, tasks: list[str], losses: dict[str, list[float]], tokens: int, padded_tokens: int) -> None:
        """One step: its tasks (this process's draws), every process's losses per task, its token counts."""
        for task, values in losses.items():
            self.losses[task].extend(values)
        self.tasks.extend(tasks)
        self.tokens += tokens
        self.padded_tokens += padded_tokens

    def summary(self, step: int, learning_rate: float, num_processes: int) -> dict[str, Any]:
        """Mean loss per task (over all processes), throughput, learning rate and the task mix."""
        seconds = time.perf_counter() - self.start
        every_loss = [loss for losses in self.losses.values() for loss in losses]
        return {
            "step": step,
            "loss": sum(every_loss) / len(every_loss) if every_loss else None,
            **{f"loss/{task}": sum(values) / len(values) for task, values in self.losses.items()},
            "learning_rate": learning_rate,
            # Norms stay on the device until here: reading them is a host sync, done once per log record.
            "grad_norm": float(torch.stack(self.grad_norms).mean()) if self.grad_norms else None,
            "tokens_per_second": self.tokens * num_processes / seconds,
            "padding_efficiency": self.tokens / self.padded_tokens if self.padded_tokens else None,
            "tasks": self.tasks,
        }


def tracker_config(config: RunConfig) -> dict[str, Any]:
    """Scalars only, as trackers (TensorBoard hparams) accept."""
    flat = {}
    for section in ("encoder", "sampling", "training"):
        for key, value in config_to_dict(config)[section].items():
            if isinstance(value, (int, float, str, bool)):
                flat[f"{section}.{key}"] = value
    flat["tasks"] = ",".join(task.name for task in config.tasks)
    return flat
