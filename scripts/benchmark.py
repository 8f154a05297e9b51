"""hfmtl against the single-task way, side by side: three `transformers` Trainer fine-tunes served as three
models. Writes `<out>.json` (every figure, machine, versions, commands) and `<out>.md` (the table), after
every part, so a part that fails leaves the others' figures.

    python scripts/benchmark.py --quick --out /tmp/bench          # a smoke run in minutes, not real figures
    python scripts/benchmark.py --out benchmarks/cpu              # the full CPU run (hours on 2 cores)
    python scripts/benchmark.py --out benchmarks/h200             # on a GPU (--precision auto picks bf16)
    python scripts/benchmark.py --parts ner_raw_text --model-dir runs/quickstart/model --out benchmarks/cpu
    python scripts/benchmark.py --dry-run                         # print what would run, run nothing

Parts (all by default; `--parts` re-runs some and keeps the others' figures in `<out>.json`):
- `train`: real tokens/s, examples/s, padding efficiency, training FLOP/s of hfmtl on the task mix vs the
  Trainer on the same tasks one after another (same steps per task), once with length-grouped batches (its
  strongest setting) and once with its default random batches.
- `inference`: texts/s of MultiTaskPipeline vs the single-task models as transformers pipelines and as
  plain length-sorted forwards, over the same texts.
- `quality`: validation metric per task of hfmtl after `--quality-steps` vs each peer trained on as many
  examples of its task as hfmtl drew.
- `time_to_quality`: each peer trained to its standard recipe (benchmark_peers.STANDARD_RECIPES); hfmtl
  trained on `--config` per seed; hfmtl's training time (evaluations excluded) at its first evaluation
  where every task is at or above its peer, over the peers' summed `train_runtime`.
- `ner_raw_text`: NER F1 of MultiTaskPipeline on detokenized CoNLL validation sentences vs the word-level
  F1 of `hfmtl evaluate`, on the model of `time_to_quality` (else `quality`, else `--model-dir`).
Every part runs in one precision, `--precision` resolved by hfmtl.precision for this device, for hfmtl and
its peers alike. Throughput figures are medians over `--repeats`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import transformers
from benchmark_peers import (  # scripts/ is on sys.path
    PeerSettings,
    matmul_peak,
    peer_forwards,
    peer_pipelines,
    score_peer,
    standard_settings,
    torch_dtype,
    train_peer,
)
from benchmark_table import table

from hfmtl.atomic import write_json_atomic, write_text_atomic
from hfmtl.config import RunConfig, TaskConfig, config_from_dict, config_to_dict, load_config
from hfmtl.data.loading import load_all_tasks, tokenize_task
from hfmtl.dataclass_parsing import apply_override
from hfmtl.encoder import build_model, load_tokenizer, resolve_encoder
from hfmtl.errors import ConfigError
from hfmtl.evaluation import EvalSet, make_eval_set
from hfmtl.metrics import MAIN_METRICS
from hfmtl.pipeline import MultiTaskPipeline
from hfmtl.precision import PRECISIONS, resolve_mixed_precision
from hfmtl.trainer import TrainResult
from hfmtl.trainer import train as train_hfmtl

PARTS = ("train", "inference", "quality", "time_to_quality", "ner_raw_text")
FORMAT = 2
"""Version of the JSON layout; a partial re-run refuses to merge into a file of another version."""
QUICK_TRAIN_ROWS = 4000
QUICK_VALIDATION_ROWS = 500
QUICK_PEER_STEPS = 30
SIZES: dict[str, tuple[Any, Any]] = {
    "steps": (90, 30),
    "repeats": (3, 1),
    "texts": (1000, 200),
    "quality_steps": (800, 120),
    "seeds": ([42, 43, 44], [42]),
    "ttq_eval_every": (50, 20),
    "ttq_max_steps": (None, 60),
}
"""Each size option's default: (full run, `--quick`). An option given on the command line wins."""


def main() -> None:
    args = parse_args()
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        precision = resolve_mixed_precision(args.precision, device_type)
    except ConfigError as error:
        raise SystemExit(f"--precision {args.precision}: {error}") from None
    overrides = [f"training.mixed_precision={precision}"]
    if args.batch_size is not None:
        overrides.append(f"training.batch_size={args.batch_size}")
    base = load_config(args.config, overrides)
    if args.quick:
        base = load_config_with(base, [f"tasks.{t.name}.data.max_train_rows={QUICK_TRAIN_ROWS}" for t in base.tasks])
    meta = run_meta(args, precision, base.training.batch_size)
    if args.dry_run:
        sys.stdout.write(json.dumps(plan(args, base, meta), indent=2) + "\n")
        return
    work = Path(tempfile.mkdtemp(prefix="hfmtl-benchmark-"))
    results = start_results(args.out, meta, is_partial=set(args.parts) != set(PARTS))
    results["meta"]["work_dir"] = str(work)
    model_dir = args.model_dir
    for part in (p for p in PARTS if p in args.parts):
        start = time.perf_counter()
        if part == "train":
            results["train"], results["padding"] = throughput(base, args.steps, args.repeats, work)
        elif part == "inference":
            results["inference"] = inference(base, args.texts, args.repeats)
        elif part == "quality":
            results["quality"] = quality(base, args.quality_steps, work, quick=args.quick)
            model_dir = Path(results["quality"]["model_dir"])
        elif part == "time_to_quality":
            results["time_to_quality"] = time_to_quality(base, args, work)
            model_dir = Path(results["time_to_quality"]["model_dir"])
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
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="resolved by hfmtl.precision")
    parser.add_argument(
        "--batch-size", type=int, help="hfmtl's batch size and the matched peers' (default: the config's)"
    )
    sizes = {
        "steps": "train part: steps per run, split by the task mix",
        "repeats": "train and inference parts: timed repeats",
        "texts": "inference part: texts answered",
        "quality_steps": "quality part: hfmtl's steps",
        "seeds": "time_to_quality: hfmtl's seeds",
        "ttq_eval_every": "time_to_quality: hfmtl evaluates every N steps",
        "ttq_max_steps": "time_to_quality: hfmtl's max_steps (None keeps the config's)",
    }
    for dest, text in sizes.items():
        full, quick = SIZES[dest]
        parser.add_argument(
            "--" + dest.replace("_", "-"),
            type=int,
            nargs="+" if dest == "seeds" else None,
            help=f"{text} (default {full}; {quick} with --quick)",
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
        "train": {"steps": args.steps, "repeats": args.repeats, "peers": ["group_by_length", "random"]},
        "inference": {"texts": args.texts, "repeats": args.repeats},
        "quality": {"hfmtl_steps": args.quality_steps, "validation_rows": validation_cap(args.quick)},
        "time_to_quality": {"peers": peers, "hfmtl": hfmtl, "validation_rows": validation_cap(args.quick)},
        "ner_raw_text": {"model_dir": str(args.model_dir) if args.model_dir else "from time_to_quality or quality"},
    }
    return {"meta": meta, "out": str(args.out), "parts": {part: parts[part] for part in PARTS if part in args.parts}}


def throughput(base: RunConfig, steps: int, repeats: int, work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """hfmtl on the task mix vs the Trainer on each task in turn (steps split by the same mix), with
    length-grouped and with random batches. Returns the train figures and the padding efficiencies."""
    no_eval = [f"tasks.{t.name}.data.validation=null" for t in base.tasks]
    window = max(1, steps // (repeats + 1))  # the first window is warm-up and is dropped
    total = window * (repeats + 1)
    config = load_config_with(
        base,
        [
            *no_eval,
            f"training.max_steps={total}",
            f"training.warmup_steps={max(1, total // 16)}",
            f"training.log_every={window}",
            f"training.save_every={10**9}",
            f"output_dir={work / 'throughput'}",
            "training.eval_at_start=false",
        ],
    )
    result = train(config)
    log = [line for line in read_log(result.output_dir) if "tokens_per_second" in line]
    ours: dict[str, Any] = {
        key: statistics.median(line[key] for line in log[1:])
        for key in ("tokens_per_second", "examples_per_second", "padding_efficiency")
    }
    ours["settings"] = hfmtl_settings(config, steps=total)
    mix = Counter(result.tasks)
    task_steps = {task.name: max(1, round(steps * mix[task.name] / len(result.tasks))) for task in base.tasks}
    peers = {}
    for key, sampling in (("grouped_peer", "group_by_length"), ("default_peer", "random")):
        runs = [
            train_peer(base, task, matched_settings(base, sampling, task_steps[task.name]), work, measure=True).record
            for task in base.tasks
        ]
        peers[key] = peer_throughput(runs)
    layer_parameters = encoder_layer_parameters(base)
    peak = matmul_peak(base.training.mixed_precision)
    figures = {
        "hfmtl": ours,
        **peers,
        "ratio_vs_grouped_peer": ours["tokens_per_second"] / peers["grouped_peer"]["tokens_per_second"],
        "ratio_vs_default_peer": ours["tokens_per_second"] / peers["default_peer"]["tokens_per_second"],
        "matmul_peak_gflops": peak,
        "encoder_layer_parameters": layer_parameters,
        **{
            f"{who}_training_gflops": 6 * layer_parameters * figures["tokens_per_second"] / 1e9
            for who, figures in (("hfmtl", ours), *peers.items())
        },
    }
    padding = {who: figures["padding_efficiency"] for who, figures in (("hfmtl", ours), *peers.items())}
    return figures, padding


def peer_throughput(runs: list[dict[str, Any]]) -> dict[str, Any]:
    tokens, seconds = sum(run["tokens"] for run in runs), sum(run["seconds"] for run in runs)
    return {
        "tokens_per_second": tokens / seconds,
        "examples_per_second": sum(run["examples"] for run in runs) / seconds,
        "padding_efficiency": tokens / sum(run["padded_tokens"] for run in runs),
        "settings": peer_settings(runs),
        "per_task": runs,
    }


def inference(base: RunConfig, count: int, repeats: int) -> dict[str, Any]:
    """texts/s answering every task: one MultiTaskPipeline vs one transformers pipeline or plain forward
    per task, in the run's precision."""
    precision = base.training.mixed_precision
    shown = "fp32" if precision == "no" else precision
    data = load_all_tasks(base)
    labels = {name: task_data.labels for name, task_data in data.items()}
    texts = validation_texts(data, count)
    model = build_model(base, labels)
    dtype = None if precision == "no" else torch_dtype(precision)
    ours = MultiTaskPipeline(
        model, load_tokenizer(base.encoder), batch_size=64, max_length=base.encoder.max_length, dtype=dtype
    )
    ours(texts[:64])  # warm-up (thread pools, allocator), untimed, for every contender alike
    ours_rate = statistics.median(len(texts) / timed(lambda: ours(texts)) for _ in range(repeats))
    rates = {}
    for name, make in (("pipelines", peer_pipelines), ("plain_forwards", peer_forwards)):
        peers = make(base, labels, precision)
        for peer in peers:
            peer(texts[:64])
        rates[name] = statistics.median(
            len(texts) / sum(timed(lambda p=p: p(texts)) for p in peers) for _ in range(repeats)
        )
    return {
        "texts": len(texts),
        "hfmtl_texts_per_second": ours_rate,
        "pipelines_texts_per_second": rates["pipelines"],
        "ratio_vs_pipelines": ours_rate / rates["pipelines"],
        "plain_forwards_texts_per_second": rates["plain_forwards"],
        "ratio_vs_plain_forwards": ours_rate / rates["plain_forwards"],
        "settings": {
            "hfmtl": f"MultiTaskPipeline, batch 64, {shown}",
            "pipelines": f"{len(base.tasks)} transformers pipelines, batch 64, {shown}",
            "plain_forwards": f"{len(base.tasks)} models, length-sorted batches of 64, argmax, {shown}",
        },
    }


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
            config, task, matched_settings(config, "group_by_length", draws[task.name]), work, measure=False
        )
        runs.append(run.record)
        name = MAIN_METRICS[task.kind]
        theirs, ours = score_peer(run, task, sets[task.name], pad_token_id), result.best_metrics[task.name][name]
        rows.append(
            {
                "task": task.name,
                "metric": name,
                "examples": draws[task.name] * config.training.batch_size,
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
    peers = []
    for task in validation.tasks:
        run = train_peer(validation, task, ttq_peer_settings(task, precision, args.quick), work, measure=False)
        value = score_peer(run, task, sets[task.name], pad_token_id)
        peers.append({**run.record, "metric": MAIN_METRICS[task.kind], "value": value})
        del run  # free the model before the next peer trains
    peer_seconds = sum(peer["train_runtime"] for peer in peers)
    targets = {peer["task"]: (peer["metric"], peer["value"]) for peer in peers}
    seeds, model_dir = [], None
    for seed in args.seeds:
        config = ttq_config(base, seed, args, work)
        if model_dir is not None:  # only the last seed's model is kept (for the ner_raw_text part)
            shutil.rmtree(model_dir.parent)
        model_dir = train(config).model_dir
        crossing = first_crossing(read_log(Path(config.output_dir)), targets)
        seconds = crossing["train_seconds"]
        ratio = seconds / peer_seconds if crossing["reached"] and seconds is not None else None
        seeds.append({"seed": seed, **crossing, "ratio": ratio})
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
    }


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
    for record in evaluations:
        scores = {task: record["eval"][task][metric] for task, (metric, _) in targets.items()}
        if all(scores[task] >= value for task, (_, value) in targets.items()):
            seconds = record.get("train_seconds")
            return {"reached": True, "step": record["step"], "train_seconds": seconds, "metrics": scores, "note": note}
    return {
        "reached": False,
        "step": None,
        "train_seconds": None,
        "best": best,
        "last_step": evaluations[-1]["step"],
        "train_seconds_total": seconds_total,
        "note": note,
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


def matched_settings(config: RunConfig, sampling: str, steps: int) -> PeerSettings:
    """A peer with the hfmtl run's batch size, learning rate, warmup share, precision, length and seed."""
    training = config.training
    return PeerSettings(
        batch_size=training.batch_size,
        learning_rate=training.learning_rate,
        warmup=1 / 16,
        weight_decay=training.weight_decay,
        max_length=config.encoder.max_length,
        precision=training.mixed_precision,
        sampling=sampling,
        seed=config.seed,
        steps=max(1, steps),
    )


def peer_settings(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The settings the peers share, and each one's steps."""
    shared = {key: value for key, value in runs[0]["settings"].items() if key not in ("steps", "epochs")}
    return {**shared, "steps": {run["task"]: run["steps"] for run in runs}}


def hfmtl_settings(config: RunConfig, *, steps: int) -> dict[str, Any]:
    training = config.training
    return {
        "batch_size": training.batch_size,
        "learning_rate": training.learning_rate,
        "precision": training.mixed_precision,
        "sampling": "group_by_length" if training.group_by_length else "random",
        "task_sampling": config.sampling.strategy,
        "steps": steps,
        "seed": config.seed,
    }


def validation_cap(quick: bool) -> int | None:
    return QUICK_VALIDATION_ROWS if quick else None


def validation_overrides(base: RunConfig, quick: bool) -> list[str]:
    """Full validation splits (a smoke run caps them)."""
    cap = validation_cap(quick)
    return [f"tasks.{t.name}.data.max_validation_rows={'null' if cap is None else cap}" for t in base.tasks]


def eval_sets(config: RunConfig) -> tuple[dict[str, EvalSet], int]:
    """Every task's validation rows as hfmtl's evaluation reads them, and the pad token id."""
    tokenizer = load_tokenizer(config.encoder)
    sets = {
        name: make_eval_set(name, tokenize_task(data, tokenizer, config.encoder.max_length)["validation"])
        for name, data in load_all_tasks(config).items()
    }
    return sets, tokenizer.pad_token_id


def train(config: RunConfig) -> TrainResult:
    return train_hfmtl(config, overwrite=True)


def read_log(output_dir: Path) -> list[dict[str, Any]]:
    """A run's metrics log (hfmtl.records.MetricsLog would truncate it on opening)."""
    lines = (output_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def load_config_with(base: RunConfig, overrides: list[str]) -> RunConfig:
    raw = config_to_dict(base)
    for override in overrides:
        apply_override(raw, override)
    return config_from_dict(raw)


def validation_texts(data: dict[str, Any], count: int) -> list[str]:
    """An even mix of the tasks' validation texts (NER sentences joined with spaces)."""
    per_task = []
    for task_data in data.values():
        split = task_data.splits["validation"]
        per_task.append([" ".join(t) for t in split["tokens"]] if "tokens" in split.column_names else split["text"])
    return [texts[i] for i in range(count) for texts in per_task if i < len(texts)][:count]


def encoder_layer_parameters(config: RunConfig) -> int:
    encoder = transformers.AutoModel.from_pretrained(resolve_encoder(config.encoder.name_or_path))
    return sum(p.numel() for p in encoder.encoder.layer.parameters())


def timed(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
