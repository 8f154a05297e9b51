"""Compare sharing modes and loss weightings on the real config: same data, steps and seeds for every run.

    python scripts/compare_sharing.py --config configs/quickstart.yaml --steps 300 --out benchmarks/sharing-cpu
    python scripts/compare_sharing.py --mode all_tasks --steps 100 --seeds 42 43 44 --out benchmarks/gradients-cpu

one_task (the default) runs hard sharing with static weights (the baseline), hierarchical sharing (NER from
layer 4), soft sharing (top 2 layers per task), uncertainty weighting and DWA. all_tasks runs every step on a
batch of every task (`sampling.mode: all_tasks`) with equal static weights (the baseline), uncertainty, DWA,
PCGrad, CAGrad and GradNorm. Each run starts from scratch; `<out>.json` holds everything and `<out>.md` a
table: each task's validation main metric (mean and standard deviation over the seeds), the mean, whether its
difference to the baseline is beyond seed noise, and training seconds per step. On the CPU a shortened run
is the point; on a GPU, pass the full step count.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch
from machine import cpu_description  # scripts/ is on sys.path

from hfmtl.atomic import write_json_atomic, write_text_atomic
from hfmtl.config.run_config import load_config
from hfmtl.tasks import main_metric
from hfmtl.train.trainer import train


def variants(mode: str, ner_layer: int, steps: int) -> dict[str, list[str]]:
    """Variant name → the config overrides that make it (the first one is the baseline)."""
    if mode == "all_tasks":
        window = max(2, steps // 10)  # DWA must see several windows in a short run
        every_task = ["sampling.mode=all_tasks", "sampling.strategy=uniform", "sampling.weights=null"]
        methods = {
            "equal static weights": [],
            "uncertainty weighting": ["loss_weighting.strategy=uncertainty"],
            "dynamic weight average": ["loss_weighting.strategy=dwa", f"loss_weighting.dwa_window={window}"],
            "pcgrad": ["loss_weighting.strategy=pcgrad"],
            "cagrad (c=0.4)": ["loss_weighting.strategy=cagrad", "loss_weighting.cagrad_c=0.4"],
            "gradnorm (alpha=1.5)": ["loss_weighting.strategy=gradnorm", "loss_weighting.gradnorm_alpha=1.5"],
        }
        return {name: [*every_task, *overrides] for name, overrides in methods.items()}
    return {
        "hard sharing, equal static weights": [],
        f"hierarchical: NER reads layer {ner_layer}": [f"tasks.ner.layer={ner_layer}"],
        "soft: top 2 layers per task": ["sharing.soft_layers=2", "sharing.soft_penalty=1e-3"],
        "uncertainty weighting": ["loss_weighting.strategy=uncertainty"],
        "dynamic weight average": ["loss_weighting.strategy=dwa", "loss_weighting.dwa_window=50"],
    }


def run_variant(config_path: str, name: str, overrides: list[str], steps: int, seed: int, output_root: Path) -> dict:
    """Train one variant from scratch with one seed; its final validation metrics, times and loss weights."""
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    common = [
        f"output_dir={output_root / f'{slug}-seed{seed}'}",
        f"seed={seed}",
        f"training.max_steps={steps}",
        f"training.eval_every={steps}",
        f"training.save_every={steps}",
        f"training.warmup_steps={max(1, steps // 16)}",
        "training.eval_at_start=false",
    ]
    config = load_config(config_path, [*common, *overrides])
    for task in config.tasks:  # equal weighting: every static weight 1
        assert task.loss_weight == 1.0, f"{task.name} has loss_weight {task.loss_weight}"
    start = time.perf_counter()
    result = train(config, overwrite=True)
    seconds = time.perf_counter() - start
    log = [json.loads(line) for line in (result.output_dir / "metrics.jsonl").read_text().splitlines()]
    final = [line for line in log if "eval" in line][-1]
    kinds = {task.name: task.kind for task in config.tasks}
    return {
        "name": name,
        "seed": seed,
        "overrides": overrides,
        "main": {task: metrics[main_metric(kinds[task])] for task, metrics in final["eval"].items()},
        "aggregate": final["aggregate"],
        "wall_seconds": seconds,
        "seconds_per_step": final["train_seconds"] / steps,
        "loss_weights": [line["loss_weights"] for line in log if "loss_weights" in line][-1],
    }


def summary(runs: list[dict]) -> dict:
    """Mean and sample standard deviation over the seeds of each task's main metric, the mean, and the time."""

    def spread(values: list[float]) -> dict[str, float]:
        std = statistics.stdev(values) if len(values) > 1 else math.nan
        return {"mean": statistics.fmean(values), "std": std}

    tasks = list(runs[0]["main"])
    return {
        "main": {task: spread([run["main"][task] for run in runs]) for task in tasks},
        "aggregate": spread([run["aggregate"] for run in runs]),
        "seconds_per_step": statistics.fmean(run["seconds_per_step"] for run in runs),
        "loss_weights": {t: statistics.fmean(run["loss_weights"][t] for run in runs) for t in runs[0]["loss_weights"]},
    }


def beyond_noise(variant: dict, baseline: dict, seeds: int) -> str:
    """Whether a difference of means is more than twice its standard error, sqrt(s1^2/n + s2^2/n)."""
    if seeds < 2:
        return "one seed: unknown"
    error = math.sqrt((variant["std"] ** 2 + baseline["std"] ** 2) / seeds)
    return "beyond noise" if abs(variant["mean"] - baseline["mean"]) > 2 * error else "within noise"


def markdown(variants_runs: dict[str, list[dict]], meta: dict) -> str:
    summaries = {name: summary(runs) for name, runs in variants_runs.items()}
    baseline_name = next(iter(summaries))
    baseline = summaries[baseline_name]
    tasks = list(baseline["main"])
    seeds = len(meta["seeds"])
    lines = [
        "# Sharing modes and loss weighting, side by side",
        "",
        f"`{meta['command']}` on {meta['machine']} ({meta['device']}), {meta['date']}.",
        f"Config `{meta['config']}`, mode {meta['mode']}, {meta['steps']} steps each, seeds "
        f"{', '.join(map(str, meta['seeds']))}; each task's validation main metric at the last step, as mean "
        "± sample standard deviation over the seeds. A difference to the baseline is "
        "*beyond noise* when it is more than twice its standard error, sqrt((s1² + s2²) / n), else *within noise*.",
        "",
        "| variant | " + " | ".join(tasks) + " | mean | Δ mean vs baseline | noise | Δ per seed (paired) | s / step "
        "| final loss weights |",
        "|---|" + "---:|" * (len(tasks) + 2) + "---|---|---:|---|",
    ]
    for name, result in summaries.items():
        cells = " | ".join(_mean_std(result["main"][task]) for task in tasks)
        delta = result["aggregate"]["mean"] - baseline["aggregate"]["mean"]
        noise = beyond_noise(result["aggregate"], baseline["aggregate"], seeds) if name != baseline_name else "-"
        weights = ", ".join(f"{t} {w:.2f}" for t, w in result["loss_weights"].items())
        # Runs with the same seed share the initialisation and the data order: their difference is paired.
        by_seed = {run["seed"]: run["aggregate"] for run in variants_runs[baseline_name]}
        paired = ", ".join(f"{run['aggregate'] - by_seed[run['seed']]:+.4f}" for run in variants_runs[name])
        lines.append(
            f"| {name} | {cells} | {_mean_std(result['aggregate'])} | {delta:+.4f} | {noise} | {paired} | "
            f"{result['seconds_per_step']:.2f} | {weights} |"
        )
    return "\n".join(lines) + "\n"


def _mean_std(value: dict[str, float]) -> str:
    return f"{value['mean']:.4f}" if math.isnan(value["std"]) else f"{value['mean']:.4f} ± {value['std']:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--mode", choices=["one_task", "all_tasks"], default="one_task")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", help="one run per seed (default: the config's seed)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/sharing-cpu"))
    parser.add_argument("--runs", type=Path, default=Path("runs/compare-sharing"), help="where the runs go")
    parser.add_argument("--ner-layer", type=int, default=4, help="the layer NER reads in the hierarchical run")
    parser.add_argument("--only", nargs="*", help="re-run these variants (by name), keeping the others' results")
    parser.add_argument("--render", action="store_true", help="rewrite <out>.md from <out>.json; train nothing")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(args.out.with_suffix(".json").read_text())
        write_text_atomic(args.out.with_suffix(".md"), markdown(saved["runs"], saved["meta"]))
        return
    seeds = args.seeds or [load_config(args.config).seed]
    earlier: dict[str, list[dict]] = {}
    if args.only and args.out.with_suffix(".json").is_file():
        earlier = json.loads(args.out.with_suffix(".json").read_text())["runs"]
    runs = {}
    for name, overrides in variants(args.mode, args.ner_layer, args.steps).items():
        if args.only and name not in args.only:
            if name in earlier:  # kept from the earlier results
                runs[name] = earlier[name]
            continue
        runs[name] = [run_variant(args.config, name, overrides, args.steps, seed, args.runs) for seed in seeds]
    command = f"python scripts/compare_sharing.py --config {args.config} --mode {args.mode} --steps {args.steps}"
    meta = {
        "command": f"{command} --seeds {' '.join(map(str, seeds))} --out {args.out}",
        "machine": f"{cpu_description()}, {torch.get_num_threads()} threads",
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU",
        "date": time.strftime("%Y-%m-%d"),
        "config": args.config,
        "mode": args.mode,
        "steps": args.steps,
        "seeds": seeds,
        "torch": torch.__version__,
    }
    summaries = {name: summary(variant_runs) for name, variant_runs in runs.items()}
    write_json_atomic(args.out.with_suffix(".json"), {"meta": meta, "summaries": summaries, "runs": runs})
    write_text_atomic(args.out.with_suffix(".md"), markdown(runs, meta))


if __name__ == "__main__":
    main()
