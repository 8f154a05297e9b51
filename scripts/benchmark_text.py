"""How a benchmark figure's settings read in the tables: a peer's (or hfmtl's) settings on one line, the
precision's name, per-task values. Shared by benchmark_table and the parts that render their own section."""

from __future__ import annotations

from typing import Any


def precision_name(precision: str) -> str:
    """How a resolved precision reads in the table: `no` (no autocast) is fp32."""
    return "fp32" if precision == "no" else precision


def settings_text(settings: dict[str, Any], who: str = "Trainer") -> str:
    """A peer's (or hfmtl's) settings on one line: batch, lr, precision, sampling, steps."""
    steps_text, batch_text = per_task_text(settings["steps"]), per_task_text(settings["batch_size"])
    parts = [who, f"batch {batch_text}", f"lr {settings['learning_rate']:g}"]
    if settings.get("layer_lr_decay", 1) != 1:
        parts.append(f"layer-wise lr decay {settings['layer_lr_decay']:g}")
    if "warmup" in settings:
        parts.append(f"warmup {settings['warmup']:g}")
    if "max_length" in settings:
        parts.append(f"max length {settings['max_length']}")
    parts += [precision_name(settings["precision"]), settings["sampling"], f"steps {steps_text}"]
    if "seed" in settings:
        parts.append(f"seed {settings['seed']}")
    if "seeds" in settings:
        parts.append("seeds " + ", ".join(map(str, settings["seeds"])))
    if settings.get("prior_bias"):
        parts.append("output biases at the label priors")
    if settings.get("task_weights"):  # hfmtl's task mix (results written before it was recorded lack it)
        mix = weights_text(settings["task_weights"])
        if settings.get("final_task_weights"):
            mix += f" moving to {weights_text(settings['final_task_weights'])}"
        parts.append(f"task weights {mix}")
    return " · ".join(parts)


def weights_text(weights: dict[str, float]) -> str:
    """`sentiment 0.2 / ner 0.55 / intensity 0.25`."""
    return " / ".join(f"{task} {weight:g}" for task, weight in weights.items())


def per_task_text(value: int | dict[str, int]) -> str:
    """`32`, or `sentiment 64 + ner 32` where each task has its own."""
    return " + ".join(f"{task} {n}" for task, n in value.items()) if isinstance(value, dict) else str(value)


def ratio_row(name: str, ours: float, theirs: float, settings: str) -> str:
    return f"| {name} | {ours:.0f} | {theirs:.0f} | {settings} | {ours / theirs:.2f}× |"


def yes_no(is_met: bool) -> str:
    return "yes" if is_met else "no"
