"""Compare sharing modes and loss weightings on the real config: same data, steps and seed for every run.

    python scripts/compare_sharing.py --config configs/quickstart.yaml --steps 300 --out benchmarks/sharing-cpu

Runs hard sharing with static weights (the baseline), hierarchical sharing (NER from layer 4), soft
sharing (top 2 layers per task), uncertainty weighting and DWA, each from scratch, and writes
`<out>.json` (everything) and `<out>.md` (a table: each task's validation main metric, the mean, wall time).
On the CPU a shortened run is the point; on a GPU, pass the full step count.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from hfmtl.atomic import write_json_atomic, write_text_atomic
from hfmtl.config.run_config import load_config
from hfmtl.tasks import main_metric
from hfmtl.train.trainer import train


def variants(ner_layer: int) -> dict[str, list[str]]:
    """Variant name → the config overrides that make it (the first one is the baseline)."""
    return {
        "hard sharing, equal static weights": [],
        f"hierarchical: NER reads layer {ner_layer}": [f"tasks.ner.layer={ner_layer}"],
        "soft: top 2 layers per task": ["sharing.soft_layers=2", "sharing.soft_penalty=1e-3"],
        "uncertainty weighting": ["loss_weighting.strategy=uncertainty"],
        "dynamic weight average": ["loss_weighting.strategy=dwa", "loss_weighting.dwa_window=50"],
    }


def run_variant(config_path: str, name: str, overrides: list[str], steps: int, output_root: Path) -> dict:
    """Train one variant from scratch; its final validation metrics, wall time and loss weights."""
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    common = [
        f"output_dir={output_root / slug}",
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
        "overrides": overrides,
        "main": {task: metrics[main_metric(kinds[task])] for task, metrics in final["eval"].items()},
        "aggregate": final["aggregate"],
        "wall_seconds": seconds,
        "loss_weights": [line["loss_weights"] for line in log if "loss_weights" in line][-1],
    }


def markdown(results: list[dict], meta: dict) -> str:
    tasks = list(results[0]["main"])
    lines = [
        "# Sharing modes and loss weighting, side by side",
        "",
        f"`{meta['command']}` on {meta['machine']} ({meta['device']}), {meta['date']}.",
        f"Config `{meta['config']}`, {meta['steps']} steps each, seed {meta['seed']}; validation main metrics at the"
        " last step (accuracy / entity F1 / Pearson).",
        "",
        "| variant | " + " | ".join(tasks) + " | mean | Δ mean vs baseline | wall time (s) | final loss weights |",
        "|---|" + "---:|" * (len(tasks) + 3) + "---|",
    ]
    baseline = results[0]["aggregate"]
    for r in results:
        weights = ", ".join(f"{t} {w:.2f}" for t, w in r["loss_weights"].items())
        cells = " | ".join(f"{r['main'][t]:.4f}" for t in tasks)
        lines.append(
            f"| {r['name']} | {cells} | {r['aggregate']:.4f} | {r['aggregate'] - baseline:+.4f} | "
            f"{r['wall_seconds']:.0f} | {weights} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/sharing-cpu"))
    parser.add_argument("--runs", type=Path, default=Path("runs/compare-sharing"), help="where the runs go")
    parser.add_argument("--ner-layer", type=int, default=4, help="the layer NER reads in the hierarchical run")
    parser.add_argument("--only", nargs="*", help="re-run these variants (by name), keeping the others' results")
    args = parser.parse_args()
    earlier = {}
    if args.only and args.out.with_suffix(".json").is_file():
        earlier = {r["name"]: r for r in json.loads(args.out.with_suffix(".json").read_text())["results"]}
    results = [
        earlier[name]
        if args.only and name not in args.only and name in earlier
        else run_variant(args.config, name, overrides, args.steps, args.runs)
        for name, overrides in variants(args.ner_layer).items()
    ]
    meta = {
        "command": f"python scripts/compare_sharing.py --config {args.config} --steps {args.steps} --out {args.out}",
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads",
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU",
        "date": time.strftime("%Y-%m-%d"),
        "config": args.config,
        "steps": args.steps,
        "seed": load_config(args.config).seed,
        "torch": torch.__version__,
    }
    write_json_atomic(args.out.with_suffix(".json"), {"meta": meta, "results": results})
    write_text_atomic(args.out.with_suffix(".md"), markdown(results, meta))


if __name__ == "__main__":
    main()
