"""The headline targets scripts/benchmark.py is judged on: each figure, where it lives in the results and the
bound it must meet (from issue 11)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """One headline figure, the bound it must meet, and where it lives in the results."""

    label: str
    part: str
    key: str
    bound: float
    is_upper: bool
    """True: the figure must be at most `bound`; False: at least."""
    unit: str = "×"

    def describe(self) -> str:
        return f"{'≤' if self.is_upper else '≥'} {self.bound:g}{self.unit}"

    def is_met(self, value: float) -> bool:
        return value <= self.bound if self.is_upper else value >= self.bound


TARGETS = (
    Target(
        "time to the peers' validation quality, worst seed, over the peers' training time",
        "time_to_quality",
        "ratio_max",
        0.65,
        is_upper=True,
    ),
    Target(
        "training real tokens/s vs the Trainer with length-grouped batches",
        "train",
        "ratio_vs_grouped_peer",
        1.05,
        is_upper=False,
    ),
    Target(
        "NER F1 gap: raw-text pipeline vs word-level evaluate",
        "ner_raw_text",
        "f1_gap_points",
        0.5,
        is_upper=True,
        unit=" points",
    ),
    Target(
        "inference texts/s vs plain length-sorted forwards",
        "inference",
        "ratio_vs_plain_forwards",
        2.7,
        is_upper=False,
    ),
)
