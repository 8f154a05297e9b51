"""hfmtl against the single-task way, side by side: three `transformers` Trainer fine-tunes served as three
models. Writes `<out>.json` (every figure, machine, versions, commands) and `<out>.md` (the table), after
every part, so a part that fails leaves the others' figures.

    python scripts/benchmark.py --quick --out /tmp/bench          # a smoke run in minutes, not real figures
    python scripts/benchmark.py --out benchmarks/cpu              # the full CPU run (hours on 2 cores)
    python scripts/benchmark.py --out benchmarks/h200             # on a GPU (--precision auto picks bf16)
    python scripts/benchmark.py --parts ner_raw_text --model-dir runs/quickstart/model --out benchmarks/cpu
    python scripts/benchmark.py --dry-run                         # print what would run, run nothing

Parts (all but `mfu` by default; `--parts` re-runs some and keeps the others' figures in `<out>.json`):
- `mfu` (GPU check, scripts/gpu_check.sh): training model FLOP/s of a BERT-base-size encoder built from a
  config (random weights, no download) on the task mix, over the device's measured matmul peak.
- `train`: real tokens/s, examples/s, padding efficiency, training FLOP/s of hfmtl on the task mix vs the
  Trainer on the same tasks one after another (same steps per task), once with length-grouped batches (its
  strongest setting) and once with its default random batches. `--train-rounds N` runs hfmtl and the
  length-grouped peer in turn N times and reports each round's ratio beside the pooled one.
- `inference`: texts/s of MultiTaskPipeline vs the single-task models as transformers pipelines and as
  plain length-sorted forwards, over the same texts.
- `batch_shape` (GPU check, not by default): hfmtl's real tokens/s on the task mix with and without padding
  to a multiple of 8, and with and without a token budget per batch (`--token-budget`), four runs side by side.
- `quality`: validation metric per task of hfmtl after `--quality-steps` vs each peer trained on as many
  examples of its task as hfmtl drew.
- `time_to_quality`: each peer trained to its standard recipe (benchmark_peers.STANDARD_RECIPES); hfmtl
  trained on `--config` per seed; hfmtl's training time (evaluations excluded) at its first evaluation
  where every task is at or above its peer, over the peers' summed `train_runtime`.
- `peer_spread` (not by default): each peer of `--spread-tasks` trained to its standard recipe once per
  `--peer-seeds`: the seed-to-seed spread of the figure time_to_quality compares against.
- `ner_raw_text`: NER F1 of MultiTaskPipeline on detokenized CoNLL validation sentences vs the word-level
  F1 of `hfmtl evaluate`, on the model of `time_to_quality` (else `quality`, else `--model-dir`).
Every part runs in one precision, `--precision` resolved by hfmtl.train.precision for this device, for hfmtl and
its peers alike. Throughput figures are medians over `--repeats`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import transformers
from benchmark_batch_shape import DEFAULT_TOKEN_BUDGET, batch_shape
from benchmark_quality import (
    ner_raw_text_part,
    peer_spread,
    quality,
    time_to_quality,
    ttq_config,
    ttq_peer_settings,
)
from benchmark_runs import QUICK_PEER_STEPS, QUICK_TRAIN_ROWS, QUICK_VALIDATION_ROWS, load_config_with, validation_cap
from benchmark_speed import inference, model_flops_utilization, throughput
from benchmark_table import table
from machine import cpu_description

from hfmtl.atomic import write_json_atomic, write_text_atomic
from hfmtl.config.run_config import RunConfig, load_config
from hfmtl.errors import ConfigError
from hfmtl.train.precision import PRECISIONS, current_device_type, resolve_mixed_precision

PARTS = ("mfu", "train", "inference", "batch_shape", "quality", "time_to_quality", "peer_spread", "ner_raw_text")
DEFAULT_PARTS = [part for part in PARTS if part not in ("mfu", "batch_shape", "peer_spread")]  # the GPU check's; hours
FORMAT = 2
"""Version of the JSON layout; a partial re-run refuses to merge into a file of another version."""
SIZES: dict[str, tuple[Any, Any]] = {
    "steps": (90, 30),
    "train_rounds": (1, 1),
    "mfu_steps": (200, 8),
    "repeats": (3, 1),
    "texts": (1000, 200),
    "quality_steps": (800, 120),
    "seeds": ([42, 43, 44], [42]),
    "peer_seeds": ([42, 43, 44], [42, 43]),
    "ttq_eval_every": (50, 20),
    "ttq_max_steps": (None, 60),
}
"""Each size option's default: (full run, `--quick`). An option given on the command line wins."""


def main() -> None:
    args = parse_args()
    device_type = current_device_type()
    try:
        precision = resolve_mixed_precision(args.precision, device_type)
    except ConfigError as error:
        raise SystemExit(f"--precision {args.precision}: {error}") from None
    overrides = [f"training.mixed_precision={precision}"]
    if args.batch_size is not None:
        overrides.append(f"training.batch_size={args.batch_size}")
    if args.data_dir is not None:
        overrides.append(f"data_dir={args.data_dir}")
    base = load_config(args.config, overrides)
    if args.quick:
        base = load_config_with(base, [f"tasks.{t.name}.data.max_train_rows={QUICK_TRAIN_ROWS}" for t in base.tasks])
    meta = run_meta(args, precision, base.training.batch_size)
    if args.dry_run:
        sys.stdout.write(json.dumps(plan(args, base, meta), indent=2) + "\n")
        return
    work = Path(tempfile.mkdtemp(prefix="hfmtl-benchmark-"))
    results = start_results(args.out, meta, is_partial=set(args.parts) != set(DEFAULT_PARTS))
    results["meta"]["work_dir"] = str(work)
    model_dir = args.model_dir
    for part in (p for p in PARTS if p in args.parts):
        start = time.perf_counter()
        if part == "mfu":
            results["mfu"] = model_flops_utilization(base, args.mfu_steps, work)
        elif part == "train":
            results["train"], results["padding"] = throughput(base, args.steps, args.repeats, work, args.train_rounds)
        elif part == "inference":
            results["inference"] = inference(base, args.texts, args.repeats)
        elif part == "batch_shape":
            results["batch_shape"] = batch_shape(base, args.steps, args.repeats, work, args.token_budget)
        elif part == "quality":
            results["quality"] = quality(base, args.quality_steps, work, quick=args.quick)
            model_dir = Path(results["quality"]["model_dir"])
        elif part == "time_to_quality":
            results["time_to_quality"] = time_to_quality(base, args, work)
            model_dir = Path(results["time_to_quality"]["model_dir"])
        elif part == "peer_spread":
            tasks = args.spread_tasks or [task.name for task in base.tasks]
            results["peer_spread"] = peer_spread(base, tasks, args.peer_seeds, work, quick=args.quick)
        else:
            results["ner_raw_text"] = ner_raw_text_part(model_dir, base, quick=args.quick)
        stamp = {"device": meta["device"], "command": meta["command"], "date": meta["date"]}
        if part != "ner_raw_text":  # that one is scored the way benchmark_ner_raw runs the model
            stamp["precision"] = precision
        results[part].update(stamp, wall_seconds=time.perf_counter() - start)
        if part == "train":
            results["padding"].update(stamp)
        write_json_atomic(args.out.with_suffix(".json"), results)
        write_text_atomic(args.out.with_suffix(".md"), table(results))
    sys.stdout.write(table(results))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/quickstart.yaml", help="the hfmtl run config (and its data)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run in minutes: few steps, {QUICK_TRAIN_ROWS} training and {QUICK_VALIDATION_ROWS} "
        f"validation rows per task, one seed, {QUICK_PEER_STEPS}-step peers; labelled as such in the output",
    )
    parser.add_argument("--data-dir", help="where the config's data files are (default: the config's data_dir)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=DEFAULT_PARTS)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="resolved by hfmtl.train.precision")
    parser.add_argument(
        "--batch-size", type=int, help="hfmtl's batch size and the matched peers' (default: the config's)"
    )
    sizes = {
        "steps": "train part: steps per run, split by the task mix",
        "train_rounds": "train part: hfmtl and the length-grouped peer in turn, this many times (pooled)",
        "mfu_steps": "mfu part: steps of the BERT-base-size run",
        "repeats": "train and inference parts: timed repeats",
        "texts": "inference part: texts answered",
        "quality_steps": "quality part: hfmtl's steps",
        "seeds": "time_to_quality: hfmtl's seeds",
        "peer_seeds": "peer_spread: the seeds each peer is trained with",
        "ttq_eval_every": "time_to_quality: hfmtl evaluates every N steps",
        "ttq_max_steps": "time_to_quality: hfmtl's max_steps (None keeps the config's)",
    }
    for dest, text in sizes.items():
        full, quick = SIZES[dest]
        parser.add_argument(
            "--" + dest.replace("_", "-"),
            type=int,
            nargs="+" if dest in ("seeds", "peer_seeds") else None,
            help=f"{text} (default {full}; {quick} with --quick)",
        )
    parser.add_argument(
        "--token-budget",
        type=int,
        default=DEFAULT_TOKEN_BUDGET,
        help=f"batch_shape: the training.max_tokens_per_batch compared with none (default {DEFAULT_TOKEN_BUDGET})",
    )
    parser.add_argument(
        "--spread-tasks", nargs="+", help="peer_spread: the tasks whose peer is trained per seed (default: all)"
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        help="ner_raw_text: the hfmtl model folder, when neither time_to_quality nor quality runs",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/cpu"), help="writes <out>.json and <out>.md")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved plan as JSON and run nothing")
    args = parser.parse_args()
    for dest, defaults in SIZES.items():
        if getattr(args, dest) is None:
            setattr(args, dest, defaults[args.quick])
    if args.train_rounds < 1:
        parser.error(f"--train-rounds must be at least 1, got {args.train_rounds}")
    if args.token_budget < 1:
        parser.error(f"--token-budget must be at least 1 (padded tokens per batch), got {args.token_budget}")
    has_model = args.model_dir or {"time_to_quality", "quality"} & set(args.parts)
    if "ner_raw_text" in args.parts and not has_model:
        parser.error("the ner_raw_text part needs a model: add --model-dir, or the time_to_quality or quality part")
    return args


def run_meta(args: argparse.Namespace, precision: str, batch_size: int) -> dict[str, Any]:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    command = "python " + " ".join(sys.argv)
    return {
        "format": FORMAT,
        "smoke_run": args.quick,
        "command": command,
        "commands": [command],
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "device": device,
        "cpu": cpu_description(),
        "precision": {"requested": args.precision, "resolved": precision},
        "batch_size": batch_size,
        "config": args.config,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
        },
    }


def start_results(out: Path, meta: dict[str, Any], *, is_partial: bool) -> dict[str, Any]:
    """A fresh result, or for a partial re-run the earlier one, whose command list grows by this command."""
    earlier = out.with_suffix(".json")
    if not is_partial or not earlier.is_file():
        if is_partial:  # a re-run from a checkout without the earlier file would silently drop its other parts
            sys.stderr.write(f"note: {earlier} does not exist yet; it will hold only this run's parts\n")
        return {"meta": meta}
    previous = json.loads(earlier.read_text(encoding="utf-8"))
    if previous["meta"].get("format") != FORMAT:
        raise SystemExit(
            f"{earlier} was written by an older scripts/benchmark.py: run every part, or use another --out"
        )
    if previous["meta"]["smoke_run"] != meta["smoke_run"]:
        held = "smoke-run" if previous["meta"]["smoke_run"] else "real"
        raise SystemExit(f"{earlier} holds {held} figures, not to be mixed with this run's: use another --out")
    return {**previous, "meta": {**meta, "commands": [*previous["meta"]["commands"], meta["command"]]}}


def plan(args: argparse.Namespace, base: RunConfig, meta: dict[str, Any]) -> dict[str, Any]:
    """What a run with these options would do, without loading any data or model."""
    precision = meta["precision"]["resolved"]
    peers = {task.name: dataclasses.asdict(ttq_peer_settings(task, precision, args.quick)) for task in base.tasks}
    hfmtl = []
    for seed in args.seeds:
        training = ttq_config(base, seed, args, Path("<work>")).training
        hfmtl.append({"seed": seed, **{k: getattr(training, k) for k in ("max_steps", "warmup_steps", "eval_every")}})
    parts: dict[str, Any] = {
        "mfu": {"steps": args.mfu_steps, "encoder": "BERT-base size, random weights"},
        "train": {
            "steps": args.steps,
            "repeats": args.repeats,
            "rounds": args.train_rounds,
            "peers": ["group_by_length", "random"],
        },
        "inference": {"texts": args.texts, "repeats": args.repeats},
        "batch_shape": {"steps": args.steps, "repeats": args.repeats, "token_budget": args.token_budget},
        "quality": {"hfmtl_steps": args.quality_steps, "validation_rows": validation_cap(args.quick)},
        "time_to_quality": {"peers": peers, "hfmtl": hfmtl, "validation_rows": validation_cap(args.quick)},
        "peer_spread": {"tasks": args.spread_tasks or [t.name for t in base.tasks], "seeds": args.peer_seeds},
        "ner_raw_text": {"model_dir": str(args.model_dir) if args.model_dir else "from time_to_quality or quality"},
    }
    return {"meta": meta, "out": str(args.out), "parts": {part: parts[part] for part in PARTS if part in args.parts}}


if __name__ == "__main__":
    main()
