"""What the data looks like once tokenized: rows, tokens, truncation, and how much padding batching costs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc
from datasets import Dataset

from hfmtl.config.run_config import RunConfig, task_batch_size
from hfmtl.data.batching import length_grouped_batches, padding_efficiency, random_batches
from hfmtl.data.loading import load_all_tasks, tokenize_task
from hfmtl.model.encoder import load_tokenizer


@dataclass(frozen=True)
class SplitStats:
    """Token statistics of one tokenized split."""

    task: str
    split: str
    rows: int
    tokens: int
    mean_length: float
    max_length: int
    rows_at_max_length: int
    """Rows that reached the length limit, so were probably truncated."""
    padding_random: float
    """Real / padded tokens with random batches."""
    padding_grouped: float
    """Real / padded tokens with length-grouped batches."""


def split_stats(
    task: str,
    split: str,
    dataset: Dataset,
    max_length: int,
    batch_size: int,
    seed: int,
    max_tokens: int | None = None,
) -> SplitStats:
    """Count tokens and measure padding efficiency of one pass of dynamically padded batches (length-grouped
    ones cut by the token budget `max_tokens` when there is one, as training cuts them)."""
    # Lengths straight from the Arrow column: no Python list per row, however large the split.
    lengths = pc.list_value_length(dataset.with_format("arrow")[:]["input_ids"]).to_numpy().tolist()
    rng = np.random.default_rng(seed)
    return SplitStats(
        task=task,
        split=split,
        rows=len(lengths),
        tokens=sum(lengths),
        mean_length=sum(lengths) / len(lengths),
        max_length=max(lengths),
        rows_at_max_length=sum(length >= max_length for length in lengths),
        padding_random=padding_efficiency(lengths, random_batches(len(lengths), batch_size, rng)),
        padding_grouped=padding_efficiency(lengths, length_grouped_batches(lengths, batch_size, rng, 1, max_tokens)),
    )


def format_stats(stats: list[SplitStats]) -> str:
    """A Markdown table of split statistics."""
    lines = [
        "| task | split | rows | tokens | mean len | max len | at limit | padding random | padding grouped |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in stats:
        lines.append(
            f"| {s.task} | {s.split} | {s.rows:,} | {s.tokens:,} | {s.mean_length:.1f} | {s.max_length} | "
            f"{s.rows_at_max_length} | {s.padding_random:.3f} | {s.padding_grouped:.3f} |"
        )
    return "\n".join(lines)


def describe_run_data(config: RunConfig) -> list[SplitStats]:
    """Load, check and tokenize every task of a run config and measure each split."""
    tokenizer = load_tokenizer(config.encoder)
    stats = []
    tasks = {task.name: task for task in config.tasks}
    budget = config.training.max_tokens_per_batch
    for name, data in load_all_tasks(config).items():
        batch_size = task_batch_size(tasks[name], config.training)
        for split, dataset in tokenize_task(data, tokenizer, config.encoder.max_length).items():
            limit = data.task.max_length or config.encoder.max_length
            stats.append(split_stats(name, split, dataset, limit, batch_size, config.seed, budget))
    return stats
