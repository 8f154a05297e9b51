"""The single-task way of serving, for scripts/benchmark.py: the peers' models as three `transformers`
pipelines or as plain length-sorted forwards, and the machine's measured matmul peak."""

from __future__ import annotations

import time
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer, pipeline

from hfmtl.config.run_config import RunConfig
from hfmtl.model.encoder import resolve_encoder


def torch_dtype(precision: str) -> torch.dtype:
    """The weights' dtype for inference in a resolved precision (no, fp16, bf16)."""
    return {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def peer_models(config: RunConfig, labels: dict[str, tuple[str, ...] | None]) -> list[torch.nn.Module]:
    """One untrained Auto* model per task of the config, with its head's size (only speed is measured)."""
    source = resolve_encoder(config.encoder.name_or_path)
    models = []
    for task in config.tasks:
        if task.kind == "token_classification":
            models.append(AutoModelForTokenClassification.from_pretrained(source, num_labels=len(labels[task.name])))
        else:
            size = 1 if task.kind == "regression" else len(labels[task.name])
            models.append(AutoModelForSequenceClassification.from_pretrained(source, num_labels=size))
    return models


def peer_pipelines(config: RunConfig, labels: dict[str, tuple[str, ...] | None], precision: str) -> list[Any]:
    """The transformers pipelines a user would serve, one per task (untrained heads: only speed is measured)."""
    source = resolve_encoder(config.encoder.name_or_path)
    device = 0 if torch.cuda.is_available() else -1
    options = {"tokenizer": source, "batch_size": 64, "device": device, "dtype": torch_dtype(precision)}
    truncation = {"truncation": True, "max_length": config.encoder.max_length}
    pipes = []
    for task, model in zip(config.tasks, peer_models(config, labels), strict=True):
        if task.kind == "token_classification":
            pipe = pipeline("token-classification", model=model, aggregation_strategy="simple", **options)
            pipes.append(PeerPipeline(pipe, {}))
        else:
            scoring = {"function_to_apply": "none"} if task.kind == "regression" else {}
            pipes.append(PeerPipeline(pipeline("text-classification", model=model, **scoring, **options), truncation))
    return pipes


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


def peer_forwards(config: RunConfig, labels: dict[str, tuple[str, ...] | None], precision: str) -> list[PlainForward]:
    """Plain batched forwards of the single-task models, sorted by length like hfmtl's pipeline."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder(config.encoder.name_or_path))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return [
        PlainForward(model.to(device, torch_dtype(precision)), tokenizer, config.encoder.max_length)
        for model in peer_models(config, labels)
    ]


def matmul_peak(precision: str) -> float:
    """The best GFLOP/s of a square matmul over a few tries (the device's practical peak) in `precision`."""
    return max(matmul_speeds(precision))


def matmul_speeds(precision: str, tries: int = 5) -> list[float]:
    """GFLOP/s of each of `tries` timings of three square matmuls in `precision`."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    size = 8192 if device == "cuda" else 2048
    a, b = (torch.randn(size, size, device=device, dtype=torch_dtype(precision)) for _ in range(2))
    # Untimed products first, for half a second: the first of a shape and dtype also picks (and on the CPU may
    # compile) its kernel, and a CPU's matrix units reach full speed only after some work (a fresh process timed
    # 1142 then about 1750 GFLOP/s in bf16 on an AMX CPU).
    warm_until = time.perf_counter() + 0.5
    while time.perf_counter() < warm_until:
        a @ b
    speeds = []
    for _ in range(tries):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(3):
            a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        speeds.append(3 * 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return speeds
