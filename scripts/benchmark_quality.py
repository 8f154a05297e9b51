"""The quality parts of scripts/benchmark.py: equal-budget quality, time to the single-task peers' quality,
the peers' own seed-to-seed spread, and NER on raw text."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmark_peer_serving import matmul_speeds
from benchmark_peers import (  # scripts/ is on sys.path
    PeerSettings,
    score_peer,
    standard_settings,
    train_peer,
)
from benchmark_runs import (
    QUICK_PEER_STEPS,
    QUICK_VALIDATION_ROWS,
    eval_sets,
    hfmtl_settings,
    load_config_with,
    matched_settings,
    peer_settings,
    train,
    validation_cap,
    validation_overrides,
)

from hfmtl.config.run_config import RunConfig, TaskConfig, task_batch_size
from hfmtl.tasks import main_metric
from hfmtl.train.records import read_metrics_log


def quality(base: RunConfig, steps: int, work: Path, *, quick: bool) -> dict[str, Any]:
    """Validation main metric per task: hfmtl after `steps` vs each peer trained on as many of its examples."""
    config = load_config_with(
        base,
        [
            *validation_overrides(base, quick),
            f"training.max_steps={steps}",
            f"training.eval_every={steps}",
            f"training.save_every={10**9}",
            f"training.warmup_steps={max(1, steps // 16)}",
            "training.eval_at_start=false",
            f"output_dir={work / 'quality'}",
        ],
    )
    start = time.perf_counter()
    result = train(config)
    hfmtl_seconds = time.perf_counter() - start
    draws = Counter(result.tasks)
    sets, pad_token_id = eval_sets(config)
    rows, runs = [], []
    for task in config.tasks:
        run = train_peer(
            config, task, matched_settings(config, task, "group_by_length", draws[task.name]), work, measure=False
        )
        runs.append(run.record)
        name = main_metric(task.kind)
        theirs, ours = score_peer(run, task, sets[task.name], pad_token_id), result.best_metrics[task.name][name]
        rows.append(
            {
                "task": task.name,
                "metric": name,
                "examples": draws[task.name] * task_batch_size(task, config.training),
                "hfmtl": ours,
                "peer": theirs,
                "delta": ours - theirs,
                "relative": (ours - theirs) / abs(theirs) if theirs else None,
                "peer_train_runtime": run.record["train_runtime"],
            }
        )
    relative = [r["relative"] for r in rows]
    return {
        "steps": steps,
        "hfmtl_seconds": hfmtl_seconds,
        "hfmtl_settings": hfmtl_settings(config, steps=steps),
        "peer_settings": peer_settings(runs),
        "validation_rows": validation_cap(quick),
        "tasks": rows,
        "mean_relative_change": statistics.mean(relative) if None not in relative else None,
        "model_dir": str(result.model_dir),
    }


def time_to_quality(base: RunConfig, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """hfmtl's training time to reach every peer's validation metric, over the peers' summed training time."""
    precision = base.training.mixed_precision
    validation = load_config_with(base, validation_overrides(base, args.quick))
    sets, pad_token_id = eval_sets(validation)
    peers, probes = [], []
    for task in validation.tasks:
        probes.append(speed_probe(f"peer {task.name}", precision))
        run = train_peer(validation, task, ttq_peer_settings(task, precision, args.quick), work, measure=False)
        value = score_peer(run, task, sets[task.name], pad_token_id)
        peers.append({**run.record, "metric": main_metric(task.kind), "value": value})
        del run  # free the model before the next peer trains
    peer_seconds = sum(peer["train_runtime"] for peer in peers)
    targets = {peer["task"]: (peer["metric"], peer["value"]) for peer in peers}
    seeds, model_dir = [], None
    for seed in args.seeds:
        probes.append(speed_probe(f"hfmtl seed {seed}", precision))
        config = ttq_config(base, seed, args, work)
        if model_dir is not None:  # only the last seed's model is kept (for the ner_raw_text part)
            shutil.rmtree(model_dir.parent)
        model_dir = train(config).model_dir
        crossing = first_crossing(read_metrics_log(Path(config.output_dir) / "metrics.jsonl"), targets)
        seconds = crossing["train_seconds"]
        ratio = seconds / peer_seconds if crossing["reached"] and seconds is not None else None
        seeds.append({"seed": seed, **crossing, "ratio": ratio})
    probes.append(speed_probe("the end", precision))
    ratios = [s["ratio"] for s in seeds]
    is_complete = None not in ratios
    return {
        "ratio": statistics.mean(ratios) if is_complete else None,
        "ratio_min": min(ratios) if is_complete else None,
        "ratio_max": max(ratios) if is_complete else None,
        "reached": sum(s["reached"] for s in seeds),
        "seeds": seeds,
        "peers": peers,
        "peer_seed": peers[0]["settings"]["seed"],
        "peer_settings": peer_settings(peers),
        "peer_train_runtime": peer_seconds,
        "hfmtl_settings": {  # one line for every seed: each seed's own is in `seeds`
            **{k: v for k, v in hfmtl_settings(config, steps=config.training.max_steps).items() if k != "seed"},
            "config": args.config,
            "eval_every": config.training.eval_every,
            "seeds": args.seeds,
        },
        "validation_rows": validation_cap(args.quick),
        "model_dir": str(model_dir),
        "speed_probes": probes,
        "speed_spread": max(p["gflops"] for p in probes) / min(p["gflops"] for p in probes) - 1,
    }


def speed_probe(before: str, precision: str) -> dict[str, Any]:
    """The machine's matmul speed (median GFLOP/s of 5 timings) before a phase: a shared VM's speed drifts by
    tens of percent within an hour, and a ratio of two phases' training times carries that drift."""
    return {"before": before, "gflops": statistics.median(matmul_speeds(precision))}


def peer_spread(base: RunConfig, tasks: list[str], seeds: list[int], work: Path, *, quick: bool) -> dict[str, Any]:
    """The standard-recipe peer of each task in `tasks`, trained once per seed: how far its own validation figure
    moves with the seed alone, the noise any one-seed comparison against it carries."""
    precision = base.training.mixed_precision
    known = [task.name for task in base.tasks]
    unknown = sorted(set(tasks) - set(known))
    if unknown:
        raise SystemExit(f"--spread-tasks: {', '.join(unknown)} not in the config's tasks ({', '.join(known)})")
    validation = load_config_with(base, validation_overrides(base, quick))
    sets, pad_token_id = eval_sets(validation)
    runs, summary = [], {}
    for task in (t for t in validation.tasks if t.name in tasks):
        values = []
        for seed in seeds:
            settings = dataclasses.replace(ttq_peer_settings(task, precision, quick), seed=seed)
            run = train_peer(validation, task, settings, work, measure=False)
            values.append(score_peer(run, task, sets[task.name], pad_token_id))
            runs.append({**run.record, "metric": main_metric(task.kind), "value": values[-1]})
            del run  # free the model before the next peer trains
        summary[task.name] = {
            "metric": main_metric(task.kind),
            "mean": statistics.mean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else None,
            "min": min(values),
            "max": max(values),
        }
    return {"seeds": seeds, "runs": runs, "tasks": summary, "validation_rows": validation_cap(quick)}


def first_crossing(log: list[dict[str, Any]], targets: dict[str, tuple[str, float]]) -> dict[str, Any]:
    """The first evaluation record where every task's main metric is at or above its target, with its
    `train_seconds` (training time up to that step, evaluations and checkpoints excluded); else the best
    each task got and the training time of the whole run."""
    evaluations = [record for record in log if "eval" in record]
    if not evaluations:
        raise SystemExit("time_to_quality: the hfmtl run logged no evaluation (does every task have validation?)")
    best = {task: max(record["eval"][task][metric] for record in evaluations) for task, (metric, _) in targets.items()}
    seconds_total = evaluations[-1].get("train_seconds")  # None in logs from before it existed
    note = None if seconds_total is not None else "metrics.jsonl has no train_seconds: this hfmtl predates it"
    # every evaluation, so that a reader can check the crossing, or score it against another target
    curve = [
        {"step": r["step"], "train_seconds": r.get("train_seconds")}
        | {task: r["eval"][task][metric] for task, (metric, _) in targets.items()}
        for r in evaluations
    ]
    for point in curve:
        if all(point[task] >= value for task, (_, value) in targets.items()):
            scores = {task: point[task] for task in targets}
            return {
                "reached": True,
                "step": point["step"],
                "train_seconds": point["train_seconds"],
                "metrics": scores,
                "note": note,
                "evaluations": curve,
            }
    return {
        "reached": False,
        "step": None,
        "train_seconds": None,
        "best": best,
        "last_step": evaluations[-1]["step"],
        "train_seconds_total": seconds_total,
        "note": note,
        "evaluations": curve,
    }


def ner_raw_text_part(model_dir: Path, base: RunConfig, *, quick: bool) -> dict[str, Any]:
    from benchmark_ner_raw import ner_raw_text  # another script's; imported only when this part runs

    config = load_config_with(base, validation_overrides(base, quick))
    return {
        **ner_raw_text(model_dir, config, limit=QUICK_VALIDATION_ROWS if quick else None),
        "model_dir": str(model_dir),
    }


def ttq_peer_settings(task: TaskConfig, precision: str, quick: bool) -> PeerSettings:
    settings = standard_settings(task, precision)
    return dataclasses.replace(settings, steps=QUICK_PEER_STEPS) if quick else settings


def ttq_config(base: RunConfig, seed: int, args: argparse.Namespace, work: Path) -> RunConfig:
    """The config as shipped, with this seed, full validation splits, evaluations every `--ttq-eval-every`
    steps and no checkpoints (their writing is not training)."""
    overrides = [
        *validation_overrides(base, args.quick),
        f"seed={seed}",
        f"training.eval_every={args.ttq_eval_every}",
        "training.eval_at_start=false",
        f"training.save_every={10**9}",
        f"output_dir={work / f'time-to-quality-seed{seed}'}",
    ]
    if args.ttq_max_steps is not None:
        warmup = min(base.training.warmup_steps, max(1, args.ttq_max_steps // 16))
        overrides += [f"training.max_steps={args.ttq_max_steps}", f"training.warmup_steps={warmup}"]
    return load_config_with(base, overrides)
