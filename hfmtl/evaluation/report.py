"""Evaluation reports: `report.json` (every number, with model and data identity), `report.md` (tables to
paste into a pull request), a self-contained `report.html` (tables and inline SVG figures), and
`predictions/<task>.jsonl` so any number can be recomputed. All files are written atomically."""

from __future__ import annotations

import fnmatch
import html
import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hfmtl.atomic import write_text_atomic
from hfmtl.errors import ConfigError
from hfmtl.evaluation.plots import training_curves_svg
from hfmtl.evaluation.scoring import TaskResult
from hfmtl.tasks import main_metric, task_kind


def build_report(
    results: Mapping[str, TaskResult],
    kinds: Mapping[str, str],
    identity: Mapping[str, Any],
    training_log: list[dict[str, Any]] | None = None,
    baseline: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """All numbers of an evaluation, plus where they came from (`identity`: model, data, environment)."""
    main = {
        task: {"name": main_metric(kinds[task]), "value": r.metrics[main_metric(kinds[task])]}
        for task, r in results.items()
    }
    report: dict[str, Any] = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **identity,
        "tasks": {task: {"kind": kinds[task], "metrics": result.metrics} for task, result in results.items()},
        "main_metrics": main,
        "aggregate": sum(m["value"] for m in main.values()) / len(main),
    }
    if training_log:
        report["training"] = training_curves(training_log, kinds)
    if baseline is not None:
        report["baseline"] = compare(report, baseline)
    return report


def training_curves(log: list[dict[str, Any]], kinds: Mapping[str, str]) -> dict[str, Any]:
    """Loss per task and main validation metric per task over steps, from a run's metrics.jsonl."""
    loss: dict[str, list[list[float]]] = {}
    evaluations: dict[str, list[list[float]]] = {}
    for record in log:
        for key, value in record.items():
            if key.startswith("loss/") and value is not None:
                loss.setdefault(key[len("loss/") :], []).append([record["step"], value])
        for task, metrics in record.get("eval", {}).items():
            if task in kinds:
                evaluations.setdefault(task, []).append([record["step"], metrics[main_metric(kinds[task])]])
    return {"loss": loss, "eval": evaluations}


def compare(report: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, Any]:
    """Per task and metric, this report's value minus the baseline's; and the mean relative change of the
    main metrics over the tasks both reports have."""
    deltas, relative = {}, []
    for task, entry in report["tasks"].items():
        theirs = baseline.get("tasks", {}).get(task)
        if theirs is None:
            continue
        ours_metrics, their_metrics = entry["metrics"], theirs["metrics"]
        deltas[task] = {
            name: ours_metrics[name] - their_metrics[name]
            for name in ours_metrics
            if _is_number(ours_metrics[name]) and _is_number(their_metrics.get(name))
        }
        main_name = report["main_metrics"][task]["name"]
        if their_metrics.get(main_name):
            relative.append((ours_metrics[main_name] - their_metrics[main_name]) / abs(their_metrics[main_name]))
    return {
        "source": baseline.get("source"),
        "deltas": deltas,
        "main_baseline": {t: baseline["tasks"][t]["metrics"][report["main_metrics"][t]["name"]] for t in deltas},
        "mean_relative_change": sum(relative) / len(relative) if relative else None,
    }


REPORT_FILES = ("report.json", "report.md", "report.html", "predictions/*.jsonl", ".*.partial", "*/.*.partial")
"""What a report folder holds (paths relative to it, `fnmatch` patterns): a folder holding anything else is
not written into, and nothing in it is removed."""


def check_report_folder(out_dir: Path) -> None:
    """Refuse an `--out` that is a file, or a folder holding files no evaluation writes (checked before any work:
    a report replaces its own files there, and would otherwise overwrite the user's `report.md`)."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ConfigError(f"--out '{out_dir}' is a file, not a folder")
    foreign = sorted(
        path.relative_to(out_dir).as_posix()
        for path in out_dir.rglob("*")
        if not path.is_dir()
        and not any(fnmatch.fnmatchcase(path.relative_to(out_dir).as_posix(), p) for p in REPORT_FILES)
    )
    if foreign:
        raise ConfigError(
            f"--out '{out_dir}' holds files an evaluation did not write ({', '.join(foreign[:5])}); choose a new "
            "folder, or an earlier report's"
        )


def write_report(report: Mapping[str, Any], results: Mapping[str, TaskResult], out_dir: Path) -> None:
    """Write report.json, report.md, report.html and predictions/<task>.jsonl under `out_dir`; an earlier
    report's predictions of tasks this one does not have are removed, so the folder holds one report."""
    for task, result in results.items():
        lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in result.predictions)
        write_text_atomic(out_dir / "predictions" / f"{task}.jsonl", lines)
    for stale in (out_dir / "predictions").glob("*.jsonl"):
        if stale.stem not in results:
            stale.unlink()
    write_text_atomic(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    write_text_atomic(out_dir / "report.md", render_markdown(report))
    write_text_atomic(out_dir / "report.html", render_html(report, results))


def render_markdown(report: Mapping[str, Any]) -> str:
    """Tables: main metrics (with baseline deltas), every metric per task, per-class/per-type scores."""
    comparison = report.get("baseline")
    model = report["model"]
    lines = [f"# Evaluation of `{model['path']}`", "", f"Split: {report['split']} · {report['created']}", ""]
    lines += [f"Encoder `{model['encoder']}` · weights sha256 `{model['sha256']}`", ""]
    header = "| task | metric | value |" + (" baseline | Δ |" if comparison else "")
    lines += [header, "|---|---|---:|" + ("---:|---:|" if comparison else "")]
    for task, main in report["main_metrics"].items():
        row = f"| {task} | {main['name']} | {main['value']:.4f} |"
        if comparison and task in comparison["deltas"]:
            row += f" {comparison['main_baseline'][task]:.4f} | {comparison['deltas'][task][main['name']]:+.4f} |"
        elif comparison:
            row += " – | – |"
        lines.append(row)
    lines += ["", f"Aggregate (mean of main metrics): **{report['aggregate']:.4f}**"]
    if comparison and comparison["mean_relative_change"] is not None:
        lines.append(f"Mean relative change vs baseline: **{100 * comparison['mean_relative_change']:+.2f}%**")
    for task, entry in report["tasks"].items():
        metrics = entry["metrics"]
        lines += ["", f"## {task} ({entry['kind']})", "", "| metric | value |", "|---|---:|"]
        lines += [f"| {name} | {value:.4f} |" for name, value in metrics.items() if _is_number(value)]
        breakdown = metrics.get(task_kind(entry["kind"]).breakdown or "")
        if breakdown:
            lines += ["", "| label | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
            lines += [
                f"| {name} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | {s['support']} |"
                for name, s in breakdown.items()
            ]
    lines += ["", "## Data", "", "| task | source | examples | sha256 |", "|---|---|---:|---|"]
    lines += [f"| {t} | `{d['source']}` | {d['examples']} | `{d['sha256']}` |" for t, d in report["data"].items()]
    return "\n".join(lines) + "\n"


def render_html(report: Mapping[str, Any], results: Mapping[str, TaskResult]) -> str:
    """One self-contained page: the Markdown's tables plus figures (inline SVG, no scripts, no links)."""
    sections = [f"<h1>Evaluation of <code>{_e(report['model']['path'])}</code></h1>"]
    sections.append(f"<p>Split <b>{_e(report['split'])}</b> · {_e(report['created'])}</p>")
    sections.append(_html_table(_summary_rows(report)))
    if "training" in report and report["training"]["loss"]:
        sections += ["<h2>Training</h2>", _figure(training_curves_svg(report["training"]))]
    for task, entry in report["tasks"].items():
        metrics = entry["metrics"]
        sections.append(f"<h2>{_e(task)} <small>({_e(entry['kind'])})</small></h2>")
        sections.append(
            _html_table([["metric", "value"]] + [[n, f"{v:.4f}"] for n, v in metrics.items() if _is_number(v)])
        )
        sections.append(_figure(task_kind(entry["kind"]).figure(task, metrics, results[task].predictions)))
        breakdown = metrics.get(task_kind(entry["kind"]).breakdown or "")
        if breakdown:
            rows = [["label", "precision", "recall", "F1", "support"]]
            rows += [
                [n, f"{s['precision']:.4f}", f"{s['recall']:.4f}", f"{s['f1']:.4f}", str(s["support"])]
                for n, s in breakdown.items()
            ]
            sections.append(_html_table(rows))
    data_rows = [["task", "source", "examples", "sha256"]]
    data_rows += [[t, d["source"], str(d["examples"]), d["sha256"]] for t, d in report["data"].items()]
    env_rows = [["package", "version"]] + [[k, str(v)] for k, v in report["environment"].items()]
    sections += ["<h2>Data</h2>", _html_table(data_rows), "<h2>Environment</h2>", _html_table(env_rows)]
    return _PAGE.format(title=_e(f"hfmtl report: {report['model']['path']}"), body="\n".join(sections))


def _summary_rows(report: Mapping[str, Any]) -> list[list[str]]:
    comparison = report.get("baseline")
    rows = [["task", "main metric", "value"] + (["baseline", "Δ"] if comparison else [])]
    for task, main in report["main_metrics"].items():
        row = [task, main["name"], f"{main['value']:.4f}"]
        if comparison:
            has = task in comparison["deltas"]
            row += (
                [f"{comparison['main_baseline'][task]:.4f}", f"{comparison['deltas'][task][main['name']]:+.4f}"]
                if has
                else ["–", "–"]
            )
        rows.append(row)
    rows.append(["aggregate", "mean", f"{report['aggregate']:.4f}"] + ([""] * 2 if comparison else []))
    if comparison and comparison["mean_relative_change"] is not None:
        rows.append(
            ["vs baseline", "mean relative change", f"{100 * comparison['mean_relative_change']:+.2f}%", "", ""]
        )
    return rows


def _html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(cell)}</th>" for cell in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(svg: str) -> str:
    return f'<div class="figure">{svg}</div>'


def _e(text: Any) -> str:
    return html.escape(str(text))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1000px; color: #1a202c; }}
table {{ border-collapse: collapse; margin: 0.8rem 0; }}
th, td {{ border: 1px solid #cbd5e0; padding: 0.25rem 0.6rem; text-align: right; overflow-wrap: anywhere; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #edf2f7; }}
code {{ background: #edf2f7; padding: 0 0.2rem; }}
.figure svg {{ max-width: 100%; height: auto; }}
</style></head>
<body>
{body}
</body></html>
"""
