"""Padding efficiency across DDP processes on a config's real training data: the batches hfmtl gives the
processes of one step (neighbours in length order) against batches shuffled one by one (what each step
got before, and what an unaligned length-grouped sampler gives), counted at the pace of the slowest process.

    python scripts/ddp_padding.py --config configs/quickstart.yaml --out benchmarks/ddp-padding

It counts tokens only (no training), so it needs no GPU and runs in a minute.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from hfmtl.atomic import write_text_atomic
from hfmtl.config.run_config import load_config, task_batch_size
from hfmtl.data.batching import cross_process_padding_efficiency, length_grouped_batches, padding_efficiency
from hfmtl.data.loading import load_all_tasks, tokenize_task
from hfmtl.model.encoder import load_tokenizer

PROCESS_COUNTS = (2, 4, 8)


def measure(config_path: str, seed: int) -> dict[str, Any]:
    config = load_config(config_path)
    tokenizer = load_tokenizer(config.encoder)
    tasks = {task.name: task for task in config.tasks}
    rows = []
    for name, data in load_all_tasks(config).items():
        train = tokenize_task(data, tokenizer, config.encoder.max_length)["train"]
        lengths = [len(ids) for ids in train["input_ids"]]
        batch_size = task_batch_size(tasks[name], config.training)
        one_by_one = length_grouped_batches(lengths, batch_size, np.random.default_rng(seed))
        row: dict[str, Any] = {
            "task": name,
            "rows": len(lengths),
            "batch_size": batch_size,
            "one_process": padding_efficiency(lengths, one_by_one),
        }
        for processes in PROCESS_COUNTS:
            aligned = length_grouped_batches(lengths, batch_size, np.random.default_rng(seed), processes)
            row[f"{processes}_processes"] = {
                "aligned": cross_process_padding_efficiency(lengths, aligned, processes),
                "shuffled_one_by_one": cross_process_padding_efficiency(lengths, one_by_one, processes),
            }
        rows.append(row)
    return {"config": config_path, "seed": seed, "tasks": rows}


def markdown(results: dict[str, Any], command: str) -> str:
    header = " | ".join(f"{p} processes: aligned / one by one" for p in PROCESS_COUNTS)
    lines = [
        "# Padding efficiency across DDP processes",
        "",
        f"Made by `{command}` on {results['date']}; config `{results['config']}`, seed {results['seed']}.",
        "",
        "Real tokens over the tokens computed when every process of a step waits for the one with the most",
        "padded tokens. *aligned*: hfmtl's batches (the processes of a step get neighbours in length order);",
        "*one by one*: length-grouped batches shuffled one at a time, so a step's processes get unrelated lengths.",
        "",
        f"| task | training rows | batch | 1 process | {header} |",
        "|---|---:|---:|---:|" + "---:|" * len(PROCESS_COUNTS),
    ]
    for row in results["tasks"]:
        cells = [
            f"{row[f'{p}_processes']['aligned']:.3f} / {row[f'{p}_processes']['shuffled_one_by_one']:.3f}"
            for p in PROCESS_COUNTS
        ]
        first = f"| {row['task']} | {row['rows']:,} | {row['batch_size']} | {row['one_process']:.3f} |"
        lines.append(f"{first} {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/ddp-padding"), help="writes <out>.json and .md")
    args = parser.parse_args()
    results = {**measure(args.config, args.seed), "date": datetime.date.today().isoformat()}
    command = f"python scripts/ddp_padding.py --config {args.config} --seed {args.seed} --out {args.out}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(results, indent=1) + "\n")
    write_text_atomic(args.out.with_suffix(".md"), markdown(results, command))
    sys.stdout.write(markdown(results, command))


if __name__ == "__main__":
    main()
