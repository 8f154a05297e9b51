"""The Markdown table of scripts/benchmark.py: the headline targets (met, missed, or unmeasured when their
part did not run), then each part's figures with its precision and device, and every peer's settings beside
the ratio it enters. Figures come only from the results given: a missing one reads "unmeasured"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmark_batch_shape import batch_shape_section
from benchmark_speed_table import inference_section, train_section
from benchmark_targets import TARGETS, Target
from benchmark_text import precision_name, settings_text, yes_no

UNMEASURED = "unmeasured"


def table(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = ["# hfmtl vs three single-task Trainer fine-tunes", ""]
    if meta["smoke_run"]:
        lines += [
            "> **Smoke run (`--quick`)**: few steps, capped rows, one seed, small peer recipes. It checks that the",
            "> benchmark runs; its figures are not the benchmark's and meet or miss nothing.",
            "",
        ]
    precision = meta["precision"]
    lines += [
        "Made by " + ", then ".join(f"`{command}`" for command in meta["commands"]),
        "",
        f"{meta['date']} · {meta['device']} · {meta.get('cpu', 'CPU features not recorded')} · "
        f"precision {precision['requested']} → {precision_name(precision['resolved'])} · "
        f"torch {meta['versions']['torch']} · transformers {meta['versions']['transformers']} · "
        f"config `{meta['config']}`",
        "",
        "| target | figure | bound | met | precision · device | compared against |",
        "|---|---:|---|---|---|---|",
        *(target_row(target, results) for target in TARGETS),
        "",
    ]
    sections = {
        "mfu": ("Training MFU, BERT-base size", mfu_section),
        "train": ("Training throughput", train_section),
        "inference": ("Inference", inference_section),
        "batch_shape": ("Batch shape: padding multiple and token budget", batch_shape_section),
        "time_to_quality": ("Time to the peers' quality", time_to_quality_section),
        "peer_spread": ("The peers' spread over seeds", peer_spread_section),
        "quality": ("Quality at equal budget", quality_section),
        "ner_raw_text": ("NER on raw text", ner_raw_text_section),
    }
    for part, (title, section) in sections.items():
        lines += [f"## {title} (`{part}`)", ""]
        if part not in results:
            lines += [f"{UNMEASURED}: this part has not run.", ""]
            continue
        figures = results[part]
        where = place(figures)
        lines += [f"{where} · `{figures['command']}`", "", *section(figures), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def place(figures: dict[str, Any]) -> str:
    """`precision · device` of a part's figures."""
    names = [precision_name(figures["precision"])] if "precision" in figures else []
    return " · ".join([*names, *([str(figures["device"])] if "device" in figures else [])])


def target_row(target: Target, results: dict[str, Any]) -> str:
    figures = results.get(target.part)
    if figures is None:
        return f"| {target.label} | {UNMEASURED} | {target.describe()} | {UNMEASURED} | | |"
    value = figures[target.key]
    where = place(figures)
    against = COMPARED_AGAINST[target.part](figures)
    if value is None:
        shown, met = unmeasured_reason(target.part, figures)
    else:
        shown, met = f"{value:.2f}{target.unit}", yes_no(target.is_met(value))
    if results["meta"]["smoke_run"] and met != UNMEASURED:
        met = f"smoke run ({met})"
    return f"| {target.label} | {shown} | {target.describe()} | {met} | {where} | {against} |"


def unmeasured_reason(part: str, figures: dict[str, Any]) -> tuple[str, str]:
    """What a part that ran but has no figure shows instead, and whether that misses the target."""
    if part == "time_to_quality":
        missing = [str(s["seed"]) for s in figures["seeds"] if not s["reached"]]
        if missing:
            return f"not reached by seed {', '.join(missing)}", "no"
        return f"{UNMEASURED} ({figures['seeds'][0]['note']})", UNMEASURED
    return UNMEASURED, UNMEASURED


COMPARED_AGAINST: dict[str, Callable[[dict[str, Any]], str]] = {
    "train": lambda t: settings_text(t["grouped_peer"]["settings"]),
    "inference": lambda i: i["settings"]["plain_forwards"],
    "time_to_quality": lambda q: (
        f"{settings_text(q['peer_settings'])}; hfmtl seeds " + ", ".join(str(s["seed"]) for s in q["seeds"])
    ),
    "ner_raw_text": lambda n: f"`hfmtl evaluate` on the same model ({n['sentences']} sentences)",
}


def mfu_section(m: dict[str, Any]) -> list[str]:
    e = m["encoder"]
    return [
        f"{settings_text(m['settings'], who='hfmtl')}; encoder {e['num_hidden_layers']} layers × {e['hidden_size']} "
        f"hidden ({e['layer_parameters'] / 1e6:.1f} M layer parameters), {e['weights']}.",
        "",
        "| real tokens/s | padding efficiency | mean padded length | model GFLOP/s | matmul peak GFLOP/s | MFU |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {m['tokens_per_second']:.0f} | {m['padding_efficiency']:.3f} | {m['mean_padded_length']:.1f} "
        f"| {m['model_gflops_per_second']:.0f} | {m['matmul_peak_gflops']:.0f} | {m['mfu']:.2f} |",
        "",
        "Model FLOPs per real token: 6 × layer parameters + 12 × layers × hidden × mean padded length; "
        "embeddings and heads left out.",
    ]


def time_to_quality_section(q: dict[str, Any]) -> list[str]:
    lines = [
        f"Peers: the standard single-task recipe (seed {q['peer_seed']}), scored by hfmtl's own evaluation on "
        f"{rows_text(q['validation_rows'])}; `train_runtime` is the Trainer's training-loop time.",
        "",
        "| task | metric | peer | peer's settings | train_runtime (s) |",
        "|---|---|---:|---|---:|",
    ]
    lines += [
        f"| {p['task']} | {p['metric']} | {p['value']:.4f} | "
        f"{settings_text({**p['settings'], 'steps': recipe_steps(p)})} | {p['train_runtime']:.0f} |"
        for p in q["peers"]
    ]
    h = q["hfmtl_settings"]
    tasks = [p["task"] for p in q["peers"]]
    lines += [
        f"| all | | | | {q['peer_train_runtime']:.0f} |",
        "",
        f"hfmtl: `{h['config']}`, {settings_text(h, who='hfmtl')}, evaluated every {h['eval_every']} steps on the "
        "same rows; its time is `train_seconds` at the first evaluation where every task is at or above its "
        "peer (evaluations and checkpoints excluded).",
        "",
        "| seed | step | hfmtl train s | ratio | " + " | ".join(tasks) + " |",
        "|---:|---:|---:|---:|" + "---:|" * len(tasks),
    ]
    for s in q["seeds"]:
        if s["reached"]:
            seconds = UNMEASURED if s["train_seconds"] is None else f"{s['train_seconds']:.0f}"
            ratio = UNMEASURED if s["ratio"] is None else f"{s['ratio']:.2f}×"
            scores = [f"{s['metrics'][task]:.4f}" for task in tasks]
            lines.append(f"| {s['seed']} | {s['step']} | {seconds} | {ratio} | " + " | ".join(scores) + " |")
        else:
            total = s["train_seconds_total"]
            bound = "" if total is None else f", > {total / q['peer_train_runtime']:.2f}× ({total:.0f} s)"
            scores = [f"best {s['best'][task]:.4f}" for task in tasks]
            reason = f"not reached by step {s['last_step']}{bound}"
            lines.append(f"| {s['seed']} | {reason} | | | " + " | ".join(scores) + " |")
    if q["ratio"] is not None:
        lines += [
            "",
            f"Ratio over seeds: mean **{q['ratio']:.2f}×**, min {q['ratio_min']:.2f}×, max {q['ratio_max']:.2f}×.",
        ]
    else:
        lines += ["", f"Reached by {q['reached']} of {len(q['seeds'])} seeds: no mean over seeds."]
    if "speed_probes" in q:  # runs before the probes existed have none
        probes = ", ".join(f"{p['before']} {p['gflops']:.0f}" for p in q["speed_probes"])
        lines += [
            "",
            f"Machine speed before each phase (median matmul GFLOP/s of 5 timings): {probes}; spread "
            f"{q['speed_spread']:.0%} (fastest over slowest, minus 1). A time ratio between two phases carries "
            "the speed change between them.",
        ]
    return lines


def peer_spread_section(p: dict[str, Any]) -> list[str]:
    lines = [
        "Each peer at its standard recipe (as in `time_to_quality`), changing only the seed; scored on "
        f"{rows_text(p['validation_rows'])}.",
        "",
        "| task | metric | seed | value | peer's settings | train_runtime (s) |",
        "|---|---|---:|---:|---|---:|",
    ]
    lines += [
        f"| {r['task']} | {r['metric']} | {r['settings']['seed']} | {r['value']:.4f} | "
        f"{settings_text({**r['settings'], 'steps': recipe_steps(r)})} | {r['train_runtime']:.0f} |"
        for r in p["runs"]
    ]
    lines += ["", "| task | mean | sd | min | max |", "|---|---:|---:|---:|---:|"]
    for task, t in p["tasks"].items():
        sd = UNMEASURED if t["sd"] is None else f"{t['sd']:.4f}"
        lines.append(f"| {task} | {t['mean']:.4f} | {sd} | {t['min']:.4f} | {t['max']:.4f} |")
    return lines


def quality_section(q: dict[str, Any]) -> list[str]:
    rows = rows_text(q["validation_rows"])
    lines = [
        f"hfmtl: {settings_text(q['hfmtl_settings'], who='hfmtl')} ({q['hfmtl_seconds']:.0f} s); each peer "
        f"trained on as many examples of its task: {settings_text(q['peer_settings'])}. Scored on {rows}.",
        "",
        "| task | metric | examples | hfmtl | peer | Δ | peer train_runtime (s) | within 1 point |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r['task']} | {r['metric']} | {r['examples']} | {r['hfmtl']:.4f} | {r['peer']:.4f} "
        f"| {r['delta']:+.4f} | {r['peer_train_runtime']:.0f} | {yes_no(r['delta'] >= -0.01)} |"
        for r in q["tasks"]
    ]
    change = q["mean_relative_change"]
    if change is not None:
        lines += ["", f"Mean relative change over tasks: **{100 * change:+.2f}%** (≥ 0: {yes_no(change >= 0)})"]
    return lines


def ner_raw_text_section(n: dict[str, Any]) -> list[str]:
    return [
        f"Model `{n['model_dir']}`; CoNLL validation sentences detokenized to plain text through MultiTaskPipeline "
        "vs `hfmtl evaluate`'s word-level F1.",
        "",
        "| sentences | pipeline F1 | evaluate F1 | gap (points) | word-split agreement |",
        "|---:|---:|---:|---:|---:|",
        f"| {n['sentences']} | {n['pipeline_f1']:.4f} | {n['evaluate_f1']:.4f} | {n['f1_gap_points']:.2f} "
        f"| {n['word_split_agreement']:.4f} |",
    ]


def rows_text(validation_rows: int | None) -> str:
    return "full validation splits" if validation_rows is None else f"the first {validation_rows} rows"


def recipe_steps(peer: dict[str, Any]) -> str:
    """A peer's steps, and the epochs they came from when its recipe counts epochs."""
    epochs = peer["settings"]["epochs"]
    return str(peer["steps"]) if peer["settings"]["steps"] is not None else f"{peer['steps']} ({epochs:g} epochs)"
