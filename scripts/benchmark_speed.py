"""The speed parts of scripts/benchmark.py: training throughput (hfmtl vs the Trainer, length-grouped and
random batches) and inference (one MultiTaskPipeline vs one model per task)."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from benchmark_peer_serving import matmul_peak, peer_forwards, peer_pipelines, torch_dtype  # scripts/ is on sys.path
from benchmark_peers import train_peer
from benchmark_runs import hfmtl_settings, load_config_with, matched_settings, peer_settings, timed, train
from transformers.trainer_pt_utils import get_length_grouped_indices

from hfmtl.config.run_config import RunConfig, task_batch_size
from hfmtl.data.batching import length_grouped_batches, padding_efficiency
from hfmtl.data.loading import load_all_tasks, tokenize_task
from hfmtl.model.encoder import build_model, load_tokenizer, resolve_encoder
from hfmtl.serve.pipeline import MultiTaskPipeline
from hfmtl.train.records import read_metrics_log
from hfmtl.train.trainer import TrainResult


def throughput(
    base: RunConfig, steps: int, repeats: int, work: Path, rounds: int = 1
) -> tuple[dict[str, Any], dict[str, Any]]:
    """hfmtl on the task mix vs the Trainer on each task in turn (steps split by the same mix), with
    length-grouped and with random batches. Returns the train figures and the padding efficiencies.

    With `rounds` > 1, hfmtl and the length-grouped peer run in turn that many times, the same work each time:
    on a shared machine whose speed drifts within the hour, the rounds' ratios show that drift as a spread
    instead of hiding it in one ratio. The headline figures pool the rounds (all tokens over all seconds)."""
    ours_rounds, grouped_rounds, grouped_runs = [], [], []
    for number in range(rounds):
        ours, result = hfmtl_throughput(base, steps, repeats, work / f"throughput-{number}")
        mix = Counter(result.tasks)
        task_steps = {task.name: max(1, round(steps * mix[task.name] / len(result.tasks))) for task in base.tasks}
        runs = peer_runs(base, task_steps, "group_by_length", work)
        ours_rounds.append(ours)
        grouped_rounds.append(peer_throughput(runs))
        grouped_runs += runs
    peers = {
        "grouped_peer": peer_throughput(grouped_runs),
        "default_peer": peer_throughput(peer_runs(base, task_steps, "random", work)),
    }
    ours = pooled_hfmtl(ours_rounds)
    layer_parameters = encoder_layer_parameters(base)
    peak = matmul_peak(base.training.mixed_precision)
    figures = {
        "hfmtl": ours,
        **peers,
        "ratio_vs_grouped_peer": ours["tokens_per_second"] / peers["grouped_peer"]["tokens_per_second"],
        "ratio_vs_default_peer": ours["tokens_per_second"] / peers["default_peer"]["tokens_per_second"],
        "rounds": [
            {
                "hfmtl_tokens_per_second": o["tokens_per_second"],
                "grouped_peer_tokens_per_second": g["tokens_per_second"],
                "ratio_vs_grouped_peer": o["tokens_per_second"] / g["tokens_per_second"],
            }
            for o, g in zip(ours_rounds, grouped_rounds, strict=True)
        ],
        "full_pass_padding": full_pass_padding(base),
        "matmul_peak_gflops": peak,
        "encoder_layer_parameters": layer_parameters,
        **{
            f"{who}_training_gflops": 6 * layer_parameters * figures["tokens_per_second"] / 1e9
            for who, figures in (("hfmtl", ours), *peers.items())
        },
    }
    padding = {who: figures["padding_efficiency"] for who, figures in (("hfmtl", ours), *peers.items())}
    return figures, padding


def full_pass_padding(base: RunConfig) -> dict[str, dict[str, float]]:
    """Each task's padding efficiency over one whole pass of its training rows, batched by hfmtl's length
    grouping and by the Trainer's `group_by_length` sampler (seeded alike). The timed runs above see a few
    hundred batches of a pass, whose padding depends on which ones they drew; a whole pass shows whether the
    two ways of batching themselves differ."""
    tokenizer = load_tokenizer(base.encoder)
    figures = {}
    data = load_all_tasks(base)
    for task in base.tasks:
        rows = tokenize_task(data[task.name], tokenizer, base.encoder.max_length)["train"]["input_ids"]
        lengths, size = [len(row) for row in rows], task_batch_size(task, base.training)
        ours = length_grouped_batches(lengths, size, np.random.default_rng(base.seed))
        generator = torch.Generator().manual_seed(base.seed)
        order = get_length_grouped_indices(lengths, size, generator=generator)
        theirs = [order[i : i + size] for i in range(0, len(order), size)]
        figures[task.name] = {
            "hfmtl": padding_efficiency(lengths, ours),
            "grouped_peer": padding_efficiency(lengths, theirs),
        }
    return figures


def peer_runs(base: RunConfig, task_steps: dict[str, int], sampling: str, work: Path) -> list[dict[str, Any]]:
    """The Trainer on each task in turn, `task_steps` steps each, with the hfmtl run's matched settings."""
    settings = {task.name: matched_settings(base, task, sampling, task_steps[task.name]) for task in base.tasks}
    return [train_peer(base, task, settings[task.name], work, measure=True).record for task in base.tasks]


def pooled_hfmtl(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """hfmtl's figures over several runs of the same work: all their tokens over all their seconds."""
    totals = {key: sum(r[key] for r in rounds) for key in ("tokens", "examples", "padded_tokens", "seconds")}
    return {**rates(**totals), **totals, "settings": rounds[0]["settings"], "runs": len(rounds)}


def rates(tokens: float, examples: float, padded_tokens: float, seconds: float) -> dict[str, Any]:
    """Real tokens/s, examples/s and padding efficiency from the totals of the timed steps."""
    return {
        "tokens_per_second": tokens / seconds,
        "examples_per_second": examples / seconds,
        "padding_efficiency": tokens / padded_tokens,
        "estimate": "total",  # older files took the median of the windows' rates
    }


def hfmtl_throughput(
    base: RunConfig, steps: int, repeats: int, output_dir: Path, overrides: tuple[str, ...] = ()
) -> tuple[dict[str, Any], TrainResult]:
    """hfmtl's real tokens/s, examples/s and padding efficiency over the logged windows of a run of about
    `steps` steps on the task mix, split into `repeats` + 1 windows (no evaluation). The first window is
    warm-up and is dropped; the rest count as one total (tokens over seconds), as the Trainer peer's steps
    after its first tenth do, not as a median of per-window rates, which would weigh a window of short
    sentiment batches like one of long NER batches."""
    no_eval = [f"tasks.{t.name}.data.validation=null" for t in base.tasks]
    window = max(1, steps // (repeats + 1))
    total = window * (repeats + 1)
    config = load_config_with(
        base,
        [
            *no_eval,
            f"training.max_steps={total}",
            f"training.warmup_steps={max(1, total // 16)}",
            f"training.log_every={window}",
            f"training.save_every={10**9}",
            f"output_dir={output_dir}",
            "training.eval_at_start=false",
            *overrides,
        ],
    )
    result = train(config)
    log = [line for line in read_metrics_log(result.output_dir / "metrics.jsonl") if "tokens_per_second" in line]
    tokens = examples = padded = seconds = 0.0
    for earlier, logged in itertools.pairwise(log):  # from the second window on, each with its own seconds
        window_seconds = logged["train_seconds"] - earlier["train_seconds"]
        tokens += logged["tokens_per_second"] * window_seconds
        examples += logged["examples_per_second"] * window_seconds
        padded += logged["tokens_per_second"] * window_seconds / logged["padding_efficiency"]
        seconds += window_seconds
    ours: dict[str, Any] = {
        **rates(tokens, examples, padded, seconds),
        "tokens": tokens,
        "examples": examples,
        "padded_tokens": padded,
        "seconds": seconds,
        "settings": hfmtl_settings(config, steps=total),
    }
    return ours, result


def peer_throughput(runs: list[dict[str, Any]]) -> dict[str, Any]:
    tokens, seconds = sum(run["tokens"] for run in runs), sum(run["seconds"] for run in runs)
    return {
        "tokens_per_second": tokens / seconds,
        "examples_per_second": sum(run["examples"] for run in runs) / seconds,
        "padding_efficiency": tokens / sum(run["padded_tokens"] for run in runs),
        "settings": peer_settings(runs),
        "per_task": runs,
    }


def inference(base: RunConfig, count: int, repeats: int) -> dict[str, Any]:
    """texts/s answering every task: one MultiTaskPipeline vs one transformers pipeline or plain forward
    per task, in the run's precision."""
    precision = base.training.mixed_precision
    shown = "fp32" if precision == "no" else precision
    data = load_all_tasks(base)
    labels = {name: task_data.labels for name, task_data in data.items()}
    texts = validation_texts(data, count)
    model = build_model(base, labels)
    dtype = None if precision == "no" else torch_dtype(precision)
    ours = MultiTaskPipeline(
        model, load_tokenizer(base.encoder), batch_size=64, max_length=base.encoder.max_length, dtype=dtype
    )
    ours(texts[:64])  # warm-up (thread pools, allocator), untimed, for every contender alike
    ours_rate = statistics.median(len(texts) / timed(lambda: ours(texts)) for _ in range(repeats))
    rates = {}
    for name, make in (("pipelines", peer_pipelines), ("plain_forwards", peer_forwards)):
        peers = make(base, labels, precision)
        for peer in peers:
            peer(texts[:64])
        rates[name] = statistics.median(
            len(texts) / sum(timed(lambda p=p: p(texts)) for p in peers) for _ in range(repeats)
        )
    return {
        "texts": len(texts),
        "hfmtl_texts_per_second": ours_rate,
        "pipelines_texts_per_second": rates["pipelines"],
        "ratio_vs_pipelines": ours_rate / rates["pipelines"],
        "plain_forwards_texts_per_second": rates["plain_forwards"],
        "ratio_vs_plain_forwards": ours_rate / rates["plain_forwards"],
        "settings": {
            "hfmtl": f"MultiTaskPipeline, batch 64, {shown}",
            "pipelines": f"{len(base.tasks)} transformers pipelines, batch 64, {shown}",
            "plain_forwards": f"{len(base.tasks)} models, length-sorted batches of 64, argmax, {shown}",
        },
    }


def validation_texts(data: dict[str, Any], count: int) -> list[str]:
    """An even mix of the tasks' validation texts (NER sentences joined with spaces)."""
    per_task = []
    for task_data in data.values():
        split = task_data.splits["validation"]
        per_task.append([" ".join(t) for t in split["tokens"]] if "tokens" in split.column_names else split["text"])
    return [texts[i] for i in range(count) for texts in per_task if i < len(texts)][:count]


def encoder_layer_parameters(config: RunConfig) -> int:
    encoder = transformers.AutoModel.from_pretrained(resolve_encoder(config.encoder.name_or_path))
    return sum(p.numel() for p in encoder.encoder.layer.parameters())


BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
"""The BERT-base shape (transformers' BertConfig defaults, written out so the figure says what it measured)."""


def model_flops_utilization(base: RunConfig, steps: int, work: Path) -> dict[str, Any]:
    """Training model FLOP/s of a BERT-base-size encoder (built from a config with random weights, so
    nothing is downloaded) on the config's task mix, over the device's measured matmul peak.

    Model FLOPs per real token: 6 x the encoder layers' parameters (forward and backward of every weight
    matmul) + 12 x layers x hidden x the mean padded length (attention scores and values, forward and
    backward). Embeddings and heads are left out, as is usual for MFU.
    """
    tokenizer = load_tokenizer(base.encoder)
    folder = work / "bert-base-random"
    bert = transformers.BertConfig(vocab_size=len(tokenizer), **BERT_BASE)
    transformers.BertModel(bert).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    window = max(1, steps // 4)  # the first window is warm-up (and CUDA kernels' first runs) and is dropped
    config = load_config_with(
        base,
        [
            f"encoder.name_or_path={folder}",
            *(f"tasks.{t.name}.data.validation=null" for t in base.tasks),
            f"training.max_steps={window * 4}",
            f"training.warmup_steps={window}",
            f"training.log_every={window}",
            f"training.save_every={10**9}",
            "training.eval_at_start=false",
            f"output_dir={work / 'mfu'}",
        ],
    )
    result = train(config)
    log = [line for line in read_metrics_log(result.output_dir / "metrics.jsonl") if "tokens_per_second" in line]
    tokens_per_second = statistics.median(line["tokens_per_second"] for line in log[1:])
    padding = statistics.median(line["padding_efficiency"] for line in log[1:])
    layer_parameters = sum(p.numel() for p in result.model.encoder.encoder.layer.parameters())
    real_per_example = statistics.median(line["tokens_per_second"] / line["examples_per_second"] for line in log[1:])
    mean_padded_length = real_per_example / padding
    flops_per_token = 6 * layer_parameters + 12 * bert.num_hidden_layers * bert.hidden_size * mean_padded_length
    achieved = flops_per_token * tokens_per_second / 1e9
    peak = matmul_peak(config.training.mixed_precision)
    return {
        "encoder": {**BERT_BASE, "layer_parameters": layer_parameters, "weights": "random (built from a config)"},
        "settings": hfmtl_settings(config, steps=config.training.max_steps),
        "tokens_per_second": tokens_per_second,
        "padding_efficiency": padding,
        "mean_padded_length": mean_padded_length,
        "model_gflops_per_second": achieved,
        "matmul_peak_gflops": peak,
        "mfu": achieved / peak,
    }
