"""Distillation: the student learns from a trained multi-task teacher's answers as well as from the labels.

Each task's loss becomes alpha * (its label loss) + (1 - alpha) * (its head's `soft_loss` against the teacher's
logits on the same batch, softened by `temperature`). The teacher runs in eval mode without gradients, so a
step stays a function of the batch and a resumed run is bit-identical. It must answer every task of the run
with the same kind and labels, and read text with the same tokenizer: the soft targets are compared position
by position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from hfmtl.config.run_config import RunConfig
from hfmtl.errors import ConfigError
from hfmtl.model.folder import load_model_dir
from hfmtl.model.modeling import MultiTaskModel


@dataclass
class Teacher:
    model: MultiTaskModel
    alpha: float
    temperature: float

    def mix(
        self,
        student: MultiTaskModel,
        members: list[str],
        batch: dict[str, Any],
        student_logits: Any,
        label_losses: dict[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Each task's loss with the teacher's soft targets mixed in (one teacher pass for the batch)."""
        inputs = {name: value for name, value in batch.items() if name != "labels"}
        with torch.no_grad():
            teacher_logits = self.model(task=list(members), **inputs).logits
        if len(members) == 1:
            student_logits, labels = {members[0]: student_logits}, {members[0]: batch["labels"]}
        else:
            labels = batch["labels"]
        return {
            task: self.alpha * loss
            + (1 - self.alpha)
            * student.heads[task].soft_loss(student_logits[task], teacher_logits[task], labels[task], self.temperature)
            for task, loss in label_losses.items()
        }


def load_teacher(
    config: RunConfig,
    tokenizer: PreTrainedTokenizerBase,
    labels: dict[str, tuple[str, ...] | None],
    device: torch.device,
) -> Teacher | None:
    """The config's teacher, checked against the student's tasks, labels and tokenizer; None without one."""
    settings = config.distillation
    if settings.teacher is None:
        return None
    from hfmtl.hub.publish import model_path

    loaded = load_model_dir(model_path(settings.teacher))
    where = f"the teacher '{settings.teacher}'"
    specs = {spec.name: spec for spec in loaded.model.config.task_specs}
    for task in config.tasks:
        spec = specs.get(task.name)
        if spec is None:
            raise ConfigError(
                f"{where} has no task '{task.name}' (it has: {', '.join(specs)}); it must answer every task"
            )
        if spec.kind != task.kind:
            raise ConfigError(f"{where} has '{task.name}' as {spec.kind}, this config as {task.kind}")
        if spec.labels != labels[task.name]:
            ours = list(labels[task.name] or [])
            raise ConfigError(f"{where} labels '{task.name}' as {list(spec.labels or [])}, this run as {ours}")
    theirs = loaded.tokenizer
    same_tokenizer = type(theirs) is type(tokenizer) and theirs.get_vocab() == tokenizer.get_vocab()
    if not same_tokenizer:
        raise ConfigError(
            f"the student's tokenizer ('{config.encoder.name_or_path}') differs from the one of {where}; distillation "
            "compares their outputs token by token, so the student's encoder must read text as the teacher's does"
        )
    model = loaded.model.to(device).eval().requires_grad_(False)
    return Teacher(model, settings.alpha, settings.temperature)
