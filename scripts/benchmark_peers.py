"""The single-task peer of scripts/benchmark.py: one `transformers` Trainer fine-tune per task, set up the
way its users set it up (Auto* model for the task, the standard padding collator, default random batches),
plus the three `transformers` pipelines that serve those models, and the machine's measured matmul peak."""

from __future__ import annotations

import time
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
    pipeline,
)

from hfmtl.config import RunConfig, TaskConfig
from hfmtl.data.loading import load_task_data, tokenize_task
from hfmtl.encoder import resolve_encoder
from hfmtl.modeling import TaskOutput, TaskSpec


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
    """The time at the end of every optimizer step."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.times.append(time.perf_counter())


def train_peer(config: RunConfig, task: TaskConfig, steps: int, work: Path, *, measure: bool) -> dict[str, Any]:
    """Fine-tune a single-task model on `task` for `steps` steps with the Trainer (same encoder, batch size,
    max length, learning rate and precision as the hfmtl run). With `measure`, return throughput figures
    over the steps after the first tenth (warm-up), the way hfmtl's are read."""
    steps = max(steps, 1)
    source = resolve_encoder(config.encoder.name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source)
    data = load_task_data(task, config.data_dir)
    train_split = tokenize_task(data, tokenizer, config.encoder.max_length)["train"].select_columns(
        ["input_ids", "labels"]
    )
    if task.kind == "token_classification":
        model = AutoModelForTokenClassification.from_pretrained(source, num_labels=len(data.labels))
        collator = CountingCollator(DataCollatorForTokenClassification(tokenizer))
    else:
        num_labels = 1 if task.kind == "regression" else len(data.labels)
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=num_labels)
        collator = CountingCollator(DataCollatorWithPadding(tokenizer))
    training = config.training
    arguments = TrainingArguments(
        output_dir=str(work / f"peer-{task.name}"),
        per_device_train_batch_size=training.batch_size,
        max_steps=steps,
        learning_rate=training.learning_rate,
        warmup_steps=max(1, steps // 16),
        weight_decay=training.weight_decay,
        bf16=training.mixed_precision == "bf16",
        use_cpu=not torch.cuda.is_available(),
        seed=config.seed,
        report_to="none",
        save_strategy="no",
        logging_steps=max(1, steps),
        disable_tqdm=True,
    )
    clock = StepClock()
    trainer = Trainer(
        model=model, args=arguments, train_dataset=train_split, data_collator=collator, callbacks=[clock]
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {
        "task": task.name,
        "steps": steps,
        "seconds": seconds,
        "model": trainer.model.eval(),
        "accelerator": Accelerator(cpu=not torch.cuda.is_available()),
    }
    if measure:
        skip = max(1, steps // 10)
        counted = collator.batches[skip:steps]
        result = {
            "task": task.name,
            "steps": steps,
            "seconds": clock.times[steps - 1] - clock.times[skip - 1],
            "examples": sum(b[0] for b in counted),
            "tokens": sum(b[1] for b in counted),
            "padded_tokens": sum(b[2] for b in counted),
        }
    return result


class PeerModel(torch.nn.Module):
    """A single-task transformers model behind the interface hfmtl's evaluation uses, so that peers are
    scored by exactly the same code (word-level NER, same metrics)."""

    def __init__(self, model: torch.nn.Module, spec: TaskSpec) -> None:
        super().__init__()
        self.model = model
        self.config = type("PeerConfig", (), {"task_specs": [spec]})()

    def forward(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TaskOutput:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        return TaskOutput(logits=logits.squeeze(-1) if logits.shape[-1] == 1 and logits.dim() == 2 else logits)


def peer_pipelines(config: RunConfig, dtype: str) -> list[Any]:
    """The three transformers pipelines a user would serve (untrained heads: only speed is measured)."""
    source = resolve_encoder(config.encoder.name_or_path)
    torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    device = 0 if torch.cuda.is_available() else -1
    options = {"tokenizer": source, "batch_size": 64, "device": device, "dtype": torch_dtype}
    sentiment = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2)
    ner = AutoModelForTokenClassification.from_pretrained(source, num_labels=9)
    intensity = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    truncation = {"truncation": True, "max_length": config.encoder.max_length}
    return [
        PeerPipeline(pipeline("text-classification", model=sentiment, **options), truncation),
        PeerPipeline(pipeline("token-classification", model=ner, aggregation_strategy="simple", **options), {}),
        PeerPipeline(
            pipeline("text-classification", model=intensity, function_to_apply="none", **options), truncation
        ),
    ]


class PeerPipeline:
    """A transformers pipeline with the call options its task needs."""

    def __init__(self, pipe: Any, options: dict[str, Any]) -> None:
        self.pipe, self.options = pipe, options

    def __call__(self, texts: list[str]) -> Any:
        return self.pipe(texts, **self.options)


class PlainForward:
    """The tightest single-task baseline: tokenize, sort by length, batch, forward, argmax; no pipeline."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, max_length: int, batch_size: int = 64) -> None:
        self.model, self.tokenizer, self.max_length, self.batch_size = model.eval(), tokenizer, max_length, batch_size

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> list[Any]:
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        answers: list[Any] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            batch = self.tokenizer.pad({"input_ids": [encoded[i] for i in chunk]}, return_tensors="pt")
            logits = self.model(**batch.to(self.model.device)).logits
            for row, index in enumerate(chunk):
                answers[index] = logits[row].argmax(-1).tolist()
        return answers


def peer_forwards(config: RunConfig, dtype: str) -> list[PlainForward]:
    """Plain batched forwards of the three single-task models, sorted by length like hfmtl's pipeline."""
    source = resolve_encoder(config.encoder.name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    models = [
        AutoModelForSequenceClassification.from_pretrained(source, num_labels=2),
        AutoModelForTokenClassification.from_pretrained(source, num_labels=9),
        AutoModelForSequenceClassification.from_pretrained(source, num_labels=1),
    ]
    return [PlainForward(m.to(device, torch_dtype), tokenizer, config.encoder.max_length) for m in models]


def matmul_peak(dtype: str) -> float:
    """The best GFLOP/s of a 2048 x 2048 matmul over a few tries (the device's practical peak)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    size = 8192 if device == "cuda" else 2048
    a, b = (torch.randn(size, size, device=device, dtype=torch_dtype) for _ in range(2))
    best = 0.0
    for _ in range(5):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(3):
            a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, 3 * 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best
