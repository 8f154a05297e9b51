"""The Markdown table of scripts/benchmark.py: every figure beside its target, and whether it is met."""

from __future__ import annotations

from typing import Any


def table(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "# hfmtl vs three single-task Trainer fine-tunes",
        "",
        ", then ".join(f"`{command}`" for command in meta["commands"]),
        "",
        f"{meta['date']} · {meta['device']} · {meta['dtype']} · batch {meta['batch_size']} · "
        f"torch {meta['versions']['torch']} · transformers {meta['versions']['transformers']} · "
        f"measured matmul peak {meta['matmul_peak_gflops']:.0f} GFLOP/s",
        "",
    ]
    lines += ["| figure | hfmtl | single-task peer | ratio | target | met |", "|---|---:|---:|---:|---|---|"]
    if "train" in results:
        t = results["train"]
        flops_share = t["hfmtl_training_gflops"] / t["matmul_peak_gflops"]
        lines += [
            row(
                "training real tokens/s",
                t["hfmtl"]["tokens_per_second"],
                t["peer"]["tokens_per_second"],
                "≥ 1.3× peer",
                t["ratio_tokens_per_second"] >= 1.3,
            ),
            row("training examples/s", t["hfmtl"]["examples_per_second"], t["peer"]["examples_per_second"], "", None),
            row(
                "padding efficiency",
                t["hfmtl"]["padding_efficiency"],
                t["peer"]["padding_efficiency"],
                "≥ 0.90",
                t["hfmtl"]["padding_efficiency"] >= 0.90,
                digits=3,
            ),
            f"| training GFLOP/s (6 × {t['encoder_layer_parameters'] / 1e6:.2f} M layer params × tokens/s) "
            f"| {t['hfmtl_training_gflops']:.0f} "
            f"| {t['peer_training_gflops']:.0f} | {flops_share:.2f} of {t['matmul_peak_gflops']:.0f} | ≥ 0.5 of peak "
            f"| {'yes' if flops_share >= 0.5 else 'no'} |",
        ]
    if "inference" in results:
        i = results["inference"]
        label = f"inference texts/s, all 3 tasks ({i['texts']} texts)"
        ours, ratio = i["hfmtl_texts_per_second"], i["ratio"]
        lines.append(
            row(f"{label}, vs 3 transformers pipelines", ours, i["peer_texts_per_second"], "≥ 2.7× peer", ratio >= 2.7)
        )
        plain = i["ratio_to_plain_forwards"]
        lines.append(
            row(
                f"{label}, vs 3 plain sorted forwards",
                ours,
                i["plain_forward_texts_per_second"],
                "≥ 2.7× peer",
                plain >= 2.7,
            )
        )
    if "quality" in results:
        q = results["quality"]
        lines += [
            "",
            f"Quality at equal budget: hfmtl {q['steps']} steps ({q['hfmtl_seconds']:.0f} s); "
            "each peer trained on as many examples of its task.",
            "",
            "| task | metric | examples | hfmtl | peer | Δ | peer time (s) | within 1 point |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| {r['task']} | {r['metric']} | {r['examples']} | {r['hfmtl']:.4f} | {r['peer']:.4f} "
            f"| {r['delta']:+.4f} | {r['peer_seconds']:.0f} | {'yes' if r['delta'] >= -0.01 else 'no'} |"
            for r in q["tasks"]
        ]
        met = "yes" if q["mean_relative_change"] >= 0 else "no"
        lines += [
            "",
            f"Mean relative change over tasks: **{100 * q['mean_relative_change']:+.2f}%** (target ≥ 0: {met})",
        ]
    return "\n".join(lines) + "\n"


def row(name: str, ours: float, theirs: float, target: str, met: bool | None, digits: int = 0) -> str:
    verdict = "" if met is None else ("yes" if met else "no")
    return f"| {name} | {ours:.{digits}f} | {theirs:.{digits}f} | {ours / theirs:.2f}× | {target} | {verdict} |"
