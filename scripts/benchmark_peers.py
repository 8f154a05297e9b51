"""The single-task peer of scripts/benchmark.py: one `transformers` Trainer fine-tune per task, set up the
way its users set it up (Auto* model for the task, the standard padding collator, the Trainer's own sampler),
the standard recipe per task, and its scoring by hfmtl's own evaluation. Serving them and the machine's
matmul peak are in benchmark_peer_serving.py."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from hfmtl.config.run_config import RunConfig, TaskConfig
from hfmtl.data.collate import Collator
from hfmtl.data.loading import load_task_data, tokenize_task
from hfmtl.evaluation.scoring import EvalSet, evaluate_tasks
from hfmtl.model.encoder import resolve_encoder
from hfmtl.model.modeling import TaskOutput, TaskSpec
from hfmtl.tasks import main_metric
from hfmtl.tasks.multi_label import label_log_odds


@dataclass(frozen=True)
class PeerSettings:
    """How one Trainer fine-tune is set up: the figures the benchmark prints beside every peer's ratio."""

    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup: float = 0.06
    """`TrainingArguments.warmup_steps`: a fraction of the steps below 1, a number of steps from 1 on."""
    weight_decay: float = 0.0
    """The Trainer's default."""
    max_length: int = 128
    precision: str = "no"
    """The resolved precision, as hfmtl.train.precision gives it: no, fp16 or bf16."""
    sampling: str = "group_by_length"
    """`TrainingArguments.train_sampling_strategy`: group_by_length (length-grouped batches) or random."""
    seed: int = 42
    steps: int | None = None
    """Optimizer steps; None trains `epochs` epochs."""
    epochs: float = 3.0
    prior_bias: bool = False
    """Multi-label only: each output bias starts at the log-odds of its label's training frequency, as
    hfmtl's multi-label heads do, instead of the Auto* head's 0 (a careful user's fix: from 0, AdamW needs
    tens of thousands of steps to bring a rare label's bias near its log-odds)."""


STANDARD_RECIPES: dict[str, dict[str, Any]] = {
    "sentiment": {"steps": 2000},  # SST-2: 67k rows, about one epoch at batch 32
    "ner": {"epochs": 3.0},  # CoNLL-2003: 439 steps an epoch; one epoch is ~6 F1 points short of three
    "intensity": {"epochs": 3.0},  # SST fine-grained intensity: 267 steps an epoch
}
"""How long each task of configs/quickstart.yaml trains in the standard single-task recipe (the one ENV.md
measured: batch 32, lr 5e-5, 6 % warmup, max length 128, length-grouped batches, seed 42). A task of another
name trains for `PeerSettings.epochs` (3) epochs."""


def starts_at_label_priors(task: TaskConfig) -> bool:
    """Whether the task's peer starts its output biases at the label priors (`PeerSettings.prior_bias`)."""
    return task.kind == "multi_label_classification"


def standard_settings(task: TaskConfig, precision: str) -> PeerSettings:
    """The standard single-task recipe for `task`, in `precision`."""
    return PeerSettings(
        precision=precision,
        prior_bias=starts_at_label_priors(task),
        **STANDARD_RECIPES.get(task.name, {}),
    )


@dataclass
class PeerRun:
    """A trained peer: its JSON-ready record (task, settings, steps, times, throughput) and the model."""

    record: dict[str, Any]
    model: torch.nn.Module
    labels: tuple[str, ...] | None


class CountingCollator:
    """Wraps a collator and counts examples, real tokens and padded tokens of every batch it makes."""

    def __init__(self, collator: Any) -> None:
        self.collator = collator
        self.batches: list[tuple[int, int, int]] = []

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collator(features)
        mask = batch["attention_mask"]
        self.batches.append((mask.shape[0], int(mask.sum()), mask.numel()))
        return batch


class StepClock(TrainerCallback):
    """The time training began, then the time at the end of every optimizer step (`times[k]`: after step k)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.times.append(time.perf_counter())

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.times.append(time.perf_counter())


def train_peer(config: RunConfig, task: TaskConfig, settings: PeerSettings, work: Path, *, measure: bool) -> PeerRun:
    """Fine-tune a single-task model of the config's encoder on `task` (the config's data) with the Trainer.

    The record holds the settings, the steps run, the Trainer's `train_runtime` (the training loop alone) and,
    with `measure`, throughput over the steps after the first tenth (warm-up), the way hfmtl's are read.
    """
    source = resolve_encoder(config.encoder.name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source)
    data = load_task_data(task, config.data_dir)
    train_split = tokenize_task(data, tokenizer, settings.max_length)["train"]
    inputs = [name for name in ("input_ids", "token_type_ids", "labels") if name in train_split.column_names]
    train_split = train_split.select_columns(inputs)
    if task.kind == "token_classification":
        model = AutoModelForTokenClassification.from_pretrained(source, num_labels=len(data.labels))
        collator = CountingCollator(DataCollatorForTokenClassification(tokenizer))
    else:  # regression: one output read as a value; multi-label: sigmoid outputs and BCE
        num_labels = 1 if data.labels is None else len(data.labels)
        problem = "multi_label_classification" if task.kind == "multi_label_classification" else None
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=num_labels, problem_type=problem)
        if settings.prior_bias:
            start_at_label_priors(model, train_split, num_labels)
        collator = CountingCollator(DataCollatorWithPadding(tokenizer))
    arguments = TrainingArguments(
        output_dir=str(work / f"peer-{task.name}"),
        per_device_train_batch_size=settings.batch_size,
        max_steps=settings.steps if settings.steps is not None else -1,
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        warmup_steps=settings.warmup,
        weight_decay=settings.weight_decay,
        bf16=settings.precision == "bf16",
        fp16=settings.precision == "fp16",
        train_sampling_strategy=settings.sampling,
        use_cpu=not torch.cuda.is_available(),
        seed=settings.seed,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
    )
    clock = StepClock()
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=train_split,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[clock],
    )
    output = trainer.train()
    steps = trainer.state.global_step
    record: dict[str, Any] = {
        "task": task.name,
        "kind": task.kind,
        "settings": dataclasses.asdict(settings),
        "steps": steps,
        "train_runtime": output.metrics["train_runtime"],
    }
    if measure:
        skip = min(max(1, steps // 10), steps - 1)  # a one-step run keeps its only step
        counted = collator.batches[skip:steps]
        record.update(
            seconds=clock.times[steps] - clock.times[skip],
            examples=sum(b[0] for b in counted),
            tokens=sum(b[1] for b in counted),
            padded_tokens=sum(b[2] for b in counted),
        )
    return PeerRun(record=record, model=trainer.model.eval(), labels=data.labels)


def start_at_label_priors(model: torch.nn.Module, train_split: Any, num_labels: int) -> None:
    """Set the output layer's bias (the last Linear with one output per label, whatever the architecture
    names it) to each label's log-odds in the training split."""
    outputs = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == num_labels]
    with torch.no_grad():
        outputs[-1].bias.copy_(torch.as_tensor(label_log_odds(train_split), dtype=outputs[-1].bias.dtype))


def score_peer(run: PeerRun, task: TaskConfig, eval_set: EvalSet, pad_token_id: int) -> float:
    """The peer's main validation metric, computed by hfmtl's own evaluation code on `eval_set` (with thresholds
    tuned on it, as hfmtl's are, when the task's config says `threshold: tuned`)."""
    spec = TaskSpec(task.name, task.kind, run.labels)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    tuned = [task.name] if task.threshold == "tuned" else []
    scored = evaluate_tasks(
        PeerModel(run.model, spec),
        {task.name: eval_set},
        Collator(pad_token_id),
        accelerator,
        64,
        tune_thresholds=tuned,
    )
    return scored[task.name].metrics[main_metric(task.kind)]


class PeerModel(torch.nn.Module):
    """A single-task transformers model behind the interface hfmtl's evaluation uses, so that peers are
    scored by exactly the same code (word-level NER, same metrics)."""

    def __init__(self, model: torch.nn.Module, spec: TaskSpec) -> None:
        super().__init__()
        self.model = model
        # what evaluate_tasks reads of a model's config (and where it writes tuned thresholds)
        self.config = type("PeerConfig", (), {"task_specs": [spec], "tasks": [{"name": spec.name}]})()

    def forward(
        self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor, **encoder_inputs: torch.Tensor
    ) -> TaskOutput:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, **encoder_inputs).logits
        return TaskOutput(logits=logits.squeeze(-1) if logits.shape[-1] == 1 and logits.dim() == 2 else logits)
