"""The `batch_shape` part of scripts/benchmark.py, and its table: hfmtl's training throughput on the task mix
with and without padding to a multiple of 8, and with and without a token budget per batch
(`training.max_tokens_per_batch`), four runs of the same steps side by side.

The multiple of 8 is what hfmtl pads to under CUDA mixed precision (tensor cores want it) and nowhere else;
the part forces each choice on any device, so the GPU check shows what the rule buys there and the CPU run
what it costs here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

from benchmark_speed import hfmtl_throughput  # scripts/ is on sys.path
from benchmark_text import settings_text

from hfmtl.config.run_config import RunConfig

DEFAULT_TOKEN_BUDGET = 4096
"""Padded tokens per batch: batch 32 at the shipped max length 128, so a batch of the longest rows is the
size it is today and only batches of shorter rows grow."""


def batch_shape(base: RunConfig, steps: int, repeats: int, work: Path, budget: int) -> dict[str, Any]:
    """Real tokens/s, examples/s and padding efficiency of hfmtl for each (pad multiple, token budget)."""
    variants = []
    for multiple in (None, 8):
        for tokens in (None, budget):
            name = f"pad{multiple or 1}-budget{'none' if tokens is None else tokens}"
            overrides = (f"training.max_tokens_per_batch={'null' if tokens is None else tokens}",)
            # The trainer asks precision.pad_multiple for the rule; here each run gets the multiple it measures.
            with mock.patch("hfmtl.train.trainer.pad_multiple", lambda *_, m=multiple: m):
                figures, _ = hfmtl_throughput(base, steps, repeats, work / name, overrides)
            variants.append({"pad_to_multiple_of": multiple, "max_tokens_per_batch": tokens, **figures})
    return {"steps": variants[0]["settings"]["steps"], "variants": variants}


def batch_shape_section(b: dict[str, Any]) -> list[str]:
    first = b["variants"][0]
    lines = [
        f"hfmtl: {settings_text(first['settings'], who='hfmtl')}; each row one run of the same steps, "
        + (
            "all its logged windows after the first, as one total"
            if first.get("estimate") == "total"
            else "median of its logged windows after the first"
        )
        + ".",
        "",
        "| pad to a multiple of | token budget per batch | real tokens/s | vs first row | examples/s | padding "
        "efficiency |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for v in b["variants"]:
        lines.append(
            f"| {v['pad_to_multiple_of'] or 1} | {v['max_tokens_per_batch'] or 'none'} | "
            f"{v['tokens_per_second']:.0f} | {v['tokens_per_second'] / first['tokens_per_second']:.2f}× | "
            f"{v['examples_per_second']:.0f} | {v['padding_efficiency']:.3f} |"
        )
    return lines
