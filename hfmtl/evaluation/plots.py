"""The report's figures, drawn with matplotlib's object API (no pyplot global state) and returned as SVG
text with real text elements, so the HTML report embeds them inline and stays one self-contained file."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
from matplotlib.figure import Figure

COLORS = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#4a5568"]


def confusion_matrix_svg(matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str) -> str:
    """A heatmap of gold (rows) against predicted (columns) counts, each cell annotated."""
    size = max(3.0, 0.9 * len(labels) + 1.5)
    figure = Figure(figsize=(size, size * 0.85))
    axes = figure.add_subplot()
    axes.imshow(matrix, cmap="Blues")
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            axes.text(j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black")
    axes.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    axes.set_title(title)
    return _svg(figure)


def bars_svg(values: Mapping[str, float], title: str, ylabel: str) -> str:
    """One bar per name (e.g. F1 per entity type), each labelled with its value."""
    figure = Figure(figsize=(max(4.0, 0.8 * len(values) + 2), 3.2))
    axes = figure.add_subplot()
    names = list(values)
    bars = axes.bar(names, [values[n] for n in names], color=COLORS[0])
    axes.bar_label(bars, labels=[f"{values[n]:.3f}" for n in names], padding=2)
    axes.set_ylim(0, 1.1)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    return _svg(figure)


def scatter_svg(predicted: Sequence[float], gold: Sequence[float], title: str) -> str:
    """Predicted against gold values, with the identity line where perfect predictions would fall."""
    figure = Figure(figsize=(4.6, 4.2))
    axes = figure.add_subplot()
    axes.scatter(gold, predicted, s=10, alpha=0.45, color=COLORS[0], linewidths=0)
    low, high = min(min(gold), min(predicted)), max(max(gold), max(predicted))
    axes.plot([low, high], [low, high], color=COLORS[1], linewidth=1, label="identity (perfect)")
    axes.set_xlabel("gold")
    axes.set_ylabel("predicted")
    axes.set_title(title)
    axes.legend(loc="upper left")
    return _svg(figure)


def training_curves_svg(training: Mapping[str, Any]) -> str:
    """Left: training loss per task over steps. Right: each task's main validation metric over steps."""
    figure = Figure(figsize=(9.5, 3.4))
    loss_axes, eval_axes = figure.subplots(1, 2)
    tasks = list(dict.fromkeys([*training["eval"], *training["loss"]]))
    colors = {task: COLORS[i % len(COLORS)] for i, task in enumerate(tasks)}  # one color per task in both panels
    for task, points in training["loss"].items():
        loss_axes.plot([p[0] for p in points], [p[1] for p in points], label=task, color=colors[task])
    loss_axes.set_xlabel("step")
    loss_axes.set_ylabel("training loss")
    loss_axes.set_yscale("log")
    loss_axes.legend()
    for task, points in training["eval"].items():
        eval_axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=task, color=colors[task])
    eval_axes.set_xlabel("step")
    eval_axes.set_ylabel("validation main metric")
    eval_axes.legend()
    return _svg(figure)


def _svg(figure: Figure) -> str:
    figure.tight_layout()
    buffer = io.StringIO()
    # Text stays text (searchable, and checkable against report.json) instead of paths.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "hfmtl"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})  # no timestamp: same input, same file
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prologue: the SVG goes inline in HTML
