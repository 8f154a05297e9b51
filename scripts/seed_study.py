"""hfmtl's shipped recipe against the single-task Trainer peers over more seeds than one benchmark run holds: each
task's validation figure at hfmtl's last evaluation and at the end of each peer's standard recipe, per seed; each
side's mean and sample standard deviation; the difference of the means and its standard error. Quality only: the
runs it gathers come from different sessions, whose CPU speeds differ, so it gives no time ratio (time_to_quality in
benchmark.py measures those side by side).

    python scripts/seed_study.py --config configs/quickstart.yaml \\
        --peers benchmarks/cpu.json benchmarks/seeds-cpu.json \\
        --hfmtl benchmarks/ttq-curves-cpu.json runs/seed45 runs/seed46 --out benchmarks/seed-study-cpu

`--peers`: benchmark.py result files; their `time_to_quality` peers and `peer_spread` runs are read, and every
peer of one task must have the same settings but for the seed. `--hfmtl`: hfmtl run folders (their
metrics.jsonl and run_config.yaml, which must match `--config` but for seed, output and evaluation settings),
or a file of evaluation curves by seed (benchmarks/ttq-curves-cpu.json's format) made from `--config`.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from hfmtl.atomic import write_json_atomic, write_text_atomic
from hfmtl.config.run_config import RunConfig, config_to_dict, load_config
from hfmtl.tasks import main_metric
from hfmtl.train.records import read_metrics_log

# Settings that change what is measured or how often, not what is trained.
RUN_ONLY_KEYS = {"seed", "output_dir", "data_dir"}
RUN_ONLY_TRAINING_KEYS = {"eval_every", "eval_at_start", "save_every", "log_every"}


def peer_values(paths: list[Path]) -> tuple[dict[str, dict[int, float]], dict[str, dict[str, Any]]]:
    """Each task's peer figure by seed, and the peer settings (without the seed) they all share."""
    values: dict[str, dict[int, float]] = {}
    settings: dict[str, dict[str, Any]] = {}
    for path in paths:
        result = read_result(path)
        runs = [
            *result.get("time_to_quality", {}).get("peers", []),
            *result.get("peer_spread", {}).get("runs", []),
        ]
        if not runs:
            raise SystemExit(f"{path}: no peer runs (neither a time_to_quality nor a peer_spread part)")
        for run in runs:
            task, seed = run["task"], run["settings"]["seed"]
            shared = {key: value for key, value in run["settings"].items() if key != "seed"}
            if settings.setdefault(task, shared) != shared:
                raise SystemExit(f"{path}: the {task} peer of seed {seed} was trained with other settings: {shared}")
            earlier = values.setdefault(task, {}).get(seed)
            if earlier is not None and earlier != run["value"]:
                raise SystemExit(f"{path}: a second {task} peer of seed {seed} ({run['value']}, earlier {earlier})")
            values[task][seed] = run["value"]
    return values, settings


def read_result(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or an exit naming the file and what is wrong with it."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(f"{path}: no such file or folder") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SystemExit(f"{path}: not a JSON result file ({error})") from None
    if not isinstance(result, dict):
        raise SystemExit(f"{path}: not a JSON result file (expected an object)")
    return result


def recipe(config: RunConfig) -> dict[str, Any]:
    """What decides the trained model, from a run config: everything but seed, paths and evaluation cadence."""
    raw = config_to_dict(config)
    raw["training"] = {k: v for k, v in raw["training"].items() if k not in RUN_ONLY_TRAINING_KEYS}
    for task in raw["tasks"]:  # validation rows are what is scored, not what is trained
        task["data"] = {k: v for k, v in task["data"].items() if k != "max_validation_rows"}
    return {k: v for k, v in raw.items() if k not in RUN_ONLY_KEYS}


def hfmtl_values(sources: list[Path], config: RunConfig) -> dict[int, dict[str, Any]]:
    """Each seed's figures at its last evaluation (with its step), from run folders or a curves file."""
    metrics = {task.name: main_metric(task.kind) for task in config.tasks}
    expected = recipe(config)
    seeds: dict[int, dict[str, Any]] = {}
    for source in sources:
        if source.is_dir():
            if not (source / "run_config.yaml").is_file() or not (source / "metrics.jsonl").is_file():
                raise SystemExit(f"{source}: not an hfmtl run folder (no run_config.yaml and metrics.jsonl)")
            run = load_config(source / "run_config.yaml")
            trained = recipe(run)
            if expected["training"]["mixed_precision"] == "auto":  # a run config records what `auto` resolved to
                trained["training"]["mixed_precision"] = "auto"
            differences = sorted(k for k in expected if trained.get(k) != expected[k])
            if differences:
                raise SystemExit(f"{source}: not trained with the config's recipe (differs in {differences})")
            log = [record for record in read_metrics_log(source / "metrics.jsonl") if "eval" in record]
            curve = [{"step": r["step"]} | {t: r["eval"][t][m] for t, m in metrics.items()} for r in log]
            found = {run.seed: curve}
            precision = run.training.mixed_precision
        else:
            curves = read_result(source).get("evaluations")
            if not isinstance(curves, dict):
                raise SystemExit(f"{source}: neither a run folder nor a file of evaluation curves by seed")
            found = {int(seed): curve for seed, curve in curves.items()}
            precision = None  # not recorded in a curves file
        for seed, curve in found.items():
            point = curve[-1]
            if point["step"] != config.training.max_steps:
                raise SystemExit(f"{source}: seed {seed} ends at step {point['step']}, not the config's last step")
            if seed in seeds:
                raise SystemExit(f"{source}: seed {seed} is given twice")
            # the whole curve is kept, so that the result file stands without the run folders it came from
            seeds[seed] = {"source": str(source), "step": point["step"], **{t: point[t] for t in metrics}}
            seeds[seed] |= {"precision": precision, "evaluations": curve}
    return seeds


def compare(hfmtl: list[float], peer: list[float]) -> dict[str, Any]:
    """Means, sample standard deviations, and the difference of the means over its standard error
    sqrt(s1²/n1 + s2²/n2): *beyond noise* when more than twice the error, else *within noise*."""
    spread = {
        side: {"n": len(v), "mean": statistics.mean(v), "sd": statistics.stdev(v) if len(v) > 1 else math.nan}
        for side, v in (("hfmtl", hfmtl), ("peer", peer))
    }
    delta = spread["hfmtl"]["mean"] - spread["peer"]["mean"]
    error = math.sqrt(sum(s["sd"] ** 2 / s["n"] for s in spread.values()))
    if math.isnan(error):
        verdict = "unknown (one seed)"
    else:
        verdict = "beyond noise" if abs(delta) > 2 * error else "within noise"
    return {**spread, "delta": delta, "standard_error": error, "verdict": verdict}


def study(config: RunConfig, peer_files: list[Path], hfmtl_sources: list[Path]) -> dict[str, Any]:
    peers, peer_settings = peer_values(peer_files)
    hfmtl = hfmtl_values(hfmtl_sources, config)
    tasks = {}
    for task in config.tasks:
        if task.name not in peers:
            raise SystemExit(f"no peer figures for task '{task.name}' in {', '.join(map(str, peer_files))}")
        ours = {seed: figures[task.name] for seed, figures in sorted(hfmtl.items())}
        theirs = dict(sorted(peers[task.name].items()))
        paired = {seed: ours[seed] - theirs[seed] for seed in ours if seed in theirs}
        tasks[task.name] = {
            "metric": main_metric(task.kind),
            "by_seed": {"hfmtl": ours, "peer": theirs},
            **compare(list(ours.values()), list(theirs.values())),
            "paired_delta": paired,
        }
    return {"tasks": tasks, "hfmtl_runs": hfmtl, "peer_settings": peer_settings}


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [
        "# hfmtl against the single-task peers, over seeds (validation)",
        "",
        f"Made by `{meta['command']}` on {meta['date']}, from {', '.join(f'`{p}`' for p in meta['inputs'])}.",
        f"hfmtl: `{meta['config']}` as shipped, each seed's figure at its last evaluation (step "
        f"{meta['max_steps']}; `hfmtl train` saves the evaluation with the best mean, which may be earlier). "
        "Peers: each task's standard single-task Trainer recipe, its figure at the end of training, like "
        "hfmtl's here. Quality only, no times: the runs come from different sessions. A difference of means "
        "is *beyond noise* when it is more than twice its standard error, sqrt(s1²/n1 + s2²/n2).",
        "",
        *([meta["note"], ""] if meta.get("note") else []),
        "| task | metric | hfmtl by seed | peer by seed | hfmtl mean ± sd | peer mean ± sd | Δ mean | noise |"
        " Δ paired by seed |",
        "|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for name, task in result["tasks"].items():
        by_seed = [
            ", ".join(f"{seed}: {value:.4f}" for seed, value in task["by_seed"][side].items())
            for side in ("hfmtl", "peer")
        ]
        paired = ", ".join(f"{seed}: {delta:+.4f}" for seed, delta in task["paired_delta"].items()) or "-"
        lines.append(
            f"| {name} | {task['metric']} | {by_seed[0]} | {by_seed[1]} | {_mean_sd(task['hfmtl'])} | "
            f"{_mean_sd(task['peer'])} | {task['delta']:+.4f} | {task['verdict']} | {paired} |"
        )
    lines += ["", "Peer settings (all seeds alike):", ""]
    lines += [f"- {task}: {json.dumps(settings)}" for task, settings in result["peer_settings"].items()]
    return "\n".join(lines) + "\n"


def _mean_sd(side: dict[str, Any]) -> str:
    sd = "" if math.isnan(side["sd"]) else f" ± {side['sd']:.4f}"
    return f"{side['mean']:.4f}{sd} (n={side['n']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/quickstart.yaml", help="the recipe the hfmtl runs used")
    parser.add_argument("--peers", nargs="+", type=Path, required=True, help="benchmark.py result files")
    parser.add_argument("--hfmtl", nargs="+", type=Path, required=True, help="run folders or curves files")
    parser.add_argument("--out", type=Path, required=True, help="writes <out>.json and <out>.md")
    parser.add_argument("--note", help="a paragraph printed under the header (e.g. how the run folders were made)")
    args = parser.parse_args()
    config = load_config(args.config)
    result = study(config, args.peers, args.hfmtl)
    result["meta"] = {
        "command": "python " + " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d"),
        "config": args.config,
        "max_steps": config.training.max_steps,
        "inputs": [str(p) for p in [*args.peers, *args.hfmtl]],
        "note": args.note,
    }
    write_json_atomic(args.out.with_suffix(".json"), result)
    write_text_atomic(args.out.with_suffix(".md"), markdown(result))
    sys.stdout.write(markdown(result))


if __name__ == "__main__":
    main()
