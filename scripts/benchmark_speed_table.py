"""The tables of the speed parts of scripts/benchmark.py: training throughput (hfmtl vs the Trainer, with each
round's ratio when the part ran in rounds, and the padding of a whole pass) and inference."""

from __future__ import annotations

from typing import Any

from benchmark_text import ratio_row, settings_text, yes_no


def train_section(t: dict[str, Any]) -> list[str]:
    ours = t["hfmtl"]
    lines = [
        f"hfmtl: {settings_text(ours['settings'], who='hfmtl')} (task sampling {ours['settings']['task_sampling']}): "
        f"{ours['tokens_per_second']:.0f} real tokens/s, {ours['examples_per_second']:.0f} examples/s, padding "
        f"efficiency {ours['padding_efficiency']:.3f} (≥ 0.90: {yes_no(ours['padding_efficiency'] >= 0.90)}).",
        "",
        "| peer | peer's settings | real tokens/s | ratio | examples/s | ratio | padding efficiency |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for key, name in (("grouped_peer", "Trainer, length-grouped"), ("default_peer", "Trainer, random batches")):
        peer = t[key]
        lines.append(
            f"| {name} | {settings_text(peer['settings'])} | {peer['tokens_per_second']:.0f} "
            f"| {ours['tokens_per_second'] / peer['tokens_per_second']:.2f}× | {peer['examples_per_second']:.0f} "
            f"| {ours['examples_per_second'] / peer['examples_per_second']:.2f}× | {peer['padding_efficiency']:.3f} |"
        )
    rounds = t.get("rounds", [])
    if len(rounds) > 1:  # older files have no rounds; one round is the table above
        ratios = [r["ratio_vs_grouped_peer"] for r in rounds]
        each = ", ".join(
            f"{r['ratio_vs_grouped_peer']:.2f}× ({r['hfmtl_tokens_per_second']:.0f} vs "
            f"{r['grouped_peer_tokens_per_second']:.0f})"
            for r in rounds
        )
        lines += [
            "",
            f"{len(rounds)} rounds, hfmtl then the length-grouped peer, the same work each time (the figures above "
            f"pool them): ratios {each}; min {min(ratios):.2f}×, max {max(ratios):.2f}×.",
        ]
    if "full_pass_padding" in t:  # older files lack it
        each = ", ".join(
            f"{task} {p['hfmtl']:.4f} vs {p['grouped_peer']:.4f}" for task, p in t["full_pass_padding"].items()
        )
        lines += [
            "",
            f"Padding efficiency over one whole pass of each task's training rows, hfmtl's length grouping vs the "
            f"Trainer's `group_by_length` sampler: {each}. The timed runs draw a few hundred batches of a pass, "
            "so their padding (and real tokens/s) also depends on which ones they drew.",
        ]
    share = t["hfmtl_training_gflops"] / t["matmul_peak_gflops"]
    return [
        *lines,
        "",
        f"Training GFLOP/s (6 × {t['encoder_layer_parameters'] / 1e6:.2f} M layer params × real tokens/s): "
        f"hfmtl {t['hfmtl_training_gflops']:.3g}, {share:.2f} of the measured matmul peak "
        f"{t['matmul_peak_gflops']:.0f} (≥ 0.5: {yes_no(share >= 0.5)}); Trainer length-grouped "
        f"{t['grouped_peer_training_gflops']:.3g}, random batches {t['default_peer_training_gflops']:.3g}.",
    ]


def inference_section(i: dict[str, Any]) -> list[str]:
    label = f"texts/s, every task ({i['texts']} texts)"
    return [
        f"hfmtl: {i['settings']['hfmtl']}",
        "",
        "| figure | hfmtl | peer | peer's settings | ratio |",
        "|---|---:|---:|---|---:|",
        ratio_row(
            f"{label} vs pipelines", i["hfmtl_texts_per_second"], i["pipelines_texts_per_second"],
            i["settings"]["pipelines"],
        ),
        ratio_row(
            f"{label} vs plain forwards", i["hfmtl_texts_per_second"], i["plain_forwards_texts_per_second"],
            i["settings"]["plain_forwards"],
        ),
    ]  # fmt: skip
