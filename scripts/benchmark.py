"""hfmtl against the single-task way, side by side: three `transformers` Trainer fine-tunes served as three
models. Writes `<out>.json` (every figure, machine, versions, command) and `<out>.md` (the table).

    python scripts/benchmark.py --quick                          # < 10 min on 2 CPU cores
    python scripts/benchmark.py --out benchmarks/cpu             # the full CPU run
    python scripts/benchmark.py --dtype bf16 --out benchmarks/h200   # on a GPU

Parts: `train` (real tokens/s, examples/s, padding efficiency, training FLOP/s: hfmtl on the task mix vs
the Trainer peer on the same tasks one after another, same steps in total), `inference` (texts/s of
MultiTaskPipeline vs three transformers pipelines over the same texts), `quality` (validation metric per
task of hfmtl vs each peer trained on as many examples of its task as hfmtl drew). Figures are medians.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import transformers
from benchmark_peers import PeerModel, matmul_peak, peer_forwards, peer_pipelines, train_peer  # scripts/ on sys.path
from benchmark_table import table

from hfmtl.atomic import write_json_atomic, write_text_atomic
from hfmtl.config import RunConfig, load_config
from hfmtl.data.collate import Collator
from hfmtl.data.loading import load_all_tasks, tokenize_task
from hfmtl.encoder import build_model, load_tokenizer, resolve_encoder
from hfmtl.evaluation import evaluate_tasks, make_eval_set
from hfmtl.metrics import MAIN_METRICS
from hfmtl.modeling import TaskSpec
from hfmtl.pipeline import MultiTaskPipeline
from hfmtl.trainer import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--quick", action="store_true", help="few steps and texts: a smoke run in minutes")
    parser.add_argument("--parts", nargs="*", default=["train", "inference", "quality"])
    parser.add_argument("--steps", type=int, default=90, help="steps timed per run in the train part")
    parser.add_argument("--quality-steps", type=int, default=800, help="hfmtl steps in the quality part")
    parser.add_argument("--texts", type=int, default=1000, help="texts in the inference part")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/cpu"))
    args = parser.parse_args()
    if args.quick:
        args.steps, args.quality_steps, args.texts, args.repeats = 30, 120, 200, 1
    precision = {"fp32": "no", "bf16": "bf16"}[args.dtype]
    base = load_config(
        args.config, [f"training.batch_size={args.batch_size}", f"training.mixed_precision={precision}"]
    )
    work = Path(tempfile.mkdtemp(prefix="hfmtl-benchmark-"))
    results: dict[str, Any] = {"meta": meta(args)}
    earlier = args.out.with_suffix(".json")
    if set(args.parts) != {"train", "inference", "quality"} and earlier.is_file():
        # A partial re-run keeps the other parts' figures, and the table lists every command that made them.
        previous = json.loads(earlier.read_text())
        commands = [*previous["meta"]["commands"], results["meta"]["command"]]
        results = {**previous, "meta": {**results["meta"], "commands": commands}}
    if "train" in args.parts:
        results["train"] = throughput(base, args.steps, args.repeats, work)
    if "inference" in args.parts:
        results["inference"] = inference(base, args.texts, args.repeats, args.dtype)
    if "quality" in args.parts:
        results["quality"] = quality(base, args.quality_steps, work, quick=args.quick)
    write_json_atomic(args.out.with_suffix(".json"), results)
    write_text_atomic(args.out.with_suffix(".md"), table(results))


def meta(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    command = "python " + " ".join(sys.argv)
    return {
        "command": command,
        "commands": [command],
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "device": device,
        "dtype": args.dtype,
        "batch_size": args.batch_size,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
        },
        "matmul_peak_gflops": matmul_peak(args.dtype),
    }


def throughput(base: RunConfig, steps: int, repeats: int, work: Path) -> dict[str, Any]:
    """hfmtl on the task mix vs the Trainer on each task in turn (steps split by the same mix)."""
    no_eval = [f"tasks.{t.name}.data.validation=null" for t in base.tasks]
    window = max(1, steps // (repeats + 1))  # the first window is warm-up and is dropped
    config = load_config_with(
        base,
        [
            *no_eval,
            f"training.max_steps={window * (repeats + 1)}",
            f"training.warmup_steps={max(1, window * (repeats + 1) // 16)}",
            f"training.log_every={window}",
            f"training.save_every={10**6}",
            f"output_dir={work / 'throughput'}",
            "training.eval_at_start=false",
        ],
    )
    result = train(config, overwrite=True)
    log = [json.loads(line) for line in (result.output_dir / "metrics.jsonl").read_text().splitlines()][1:]
    ours = {
        key: statistics.median(line[key] for line in log)
        for key in ("tokens_per_second", "examples_per_second", "padding_efficiency")
    }
    mix = Counter(result.tasks)
    peer_runs = [
        train_peer(base, task, round(steps * mix[task.name] / len(result.tasks)), work, measure=True)
        for task in base.tasks
    ]
    tokens = sum(run["tokens"] for run in peer_runs)
    seconds = sum(run["seconds"] for run in peer_runs)
    peer = {
        "tokens_per_second": tokens / seconds,
        "examples_per_second": sum(run["examples"] for run in peer_runs) / seconds,
        "padding_efficiency": tokens / sum(run["padded_tokens"] for run in peer_runs),
        "per_task": peer_runs,
    }
    layer_parameters = encoder_layer_parameters(base)
    return {
        "matmul_peak_gflops": matmul_peak(base.training.mixed_precision.replace("no", "fp32")),  # beside its use
        "hfmtl": ours,
        "peer": peer,
        "ratio_tokens_per_second": ours["tokens_per_second"] / peer["tokens_per_second"],
        "encoder_layer_parameters": layer_parameters,
        "hfmtl_training_gflops": 6 * layer_parameters * ours["tokens_per_second"] / 1e9,
        "peer_training_gflops": 6 * layer_parameters * peer["tokens_per_second"] / 1e9,
    }


def inference(base: RunConfig, count: int, repeats: int, dtype: str) -> dict[str, Any]:
    """texts/s answering all three tasks: one MultiTaskPipeline vs three transformers pipelines."""
    data = load_all_tasks(base)
    texts = validation_texts(data, count)
    model = build_model(base, {name: task_data.labels for name, task_data in data.items()})
    torch_dtype = torch.bfloat16 if dtype == "bf16" else None
    tokenizer = load_tokenizer(base.encoder)
    ours = MultiTaskPipeline(model, tokenizer, batch_size=64, max_length=base.encoder.max_length, dtype=torch_dtype)
    ours(texts[:64])  # warm-up (thread pools, allocator), untimed, for every contender alike
    ours_rate = statistics.median(len(texts) / timed(lambda: ours(texts)) for _ in range(repeats))
    rates = {}
    for name, peers in (("pipelines", peer_pipelines(base, dtype)), ("plain_forwards", peer_forwards(base, dtype))):
        for peer in peers:
            peer(texts[:64])
        rates[name] = statistics.median(
            len(texts) / sum(timed(lambda p=p: p(texts)) for p in peers) for _ in range(repeats)
        )
    return {
        "texts": len(texts),
        "hfmtl_texts_per_second": ours_rate,
        "peer_texts_per_second": rates["pipelines"],
        "ratio": ours_rate / rates["pipelines"],
        "plain_forward_texts_per_second": rates["plain_forwards"],
        "ratio_to_plain_forwards": ours_rate / rates["plain_forwards"],
    }


def quality(base: RunConfig, steps: int, work: Path, *, quick: bool) -> dict[str, Any]:
    """Validation main metric per task: hfmtl after `steps` vs each peer trained on as many of its examples."""
    caps = [f"tasks.{t.name}.data.max_validation_rows={500 if quick else 'null'}" for t in base.tasks]
    config = load_config_with(
        base,
        [
            *caps,
            f"training.max_steps={steps}",
            f"training.eval_every={steps}",
            f"training.save_every={steps}",
            f"training.warmup_steps={max(1, steps // 16)}",
            "training.eval_at_start=false",
            f"output_dir={work / 'quality'}",
        ],
    )
    start = time.perf_counter()
    result = train(config, overwrite=True)
    hfmtl_seconds = time.perf_counter() - start
    draws = Counter(result.tasks)
    tokenizer = load_tokenizer(config.encoder)
    splits = {
        name: tokenize_task(d, tokenizer, config.encoder.max_length) for name, d in load_all_tasks(config).items()
    }
    rows = []
    for task in config.tasks:
        peer = train_peer(config, task, draws[task.name], work, measure=False)
        spec = TaskSpec(
            task.name, task.kind, next(s.labels for s in result.model.config.task_specs if s.name == task.name)
        )
        eval_set = {task.name: make_eval_set(task.name, splits[task.name]["validation"])}
        scored = evaluate_tasks(
            PeerModel(peer["model"], spec), eval_set, Collator(tokenizer.pad_token_id), peer["accelerator"], 64
        )
        name = MAIN_METRICS[task.kind]
        theirs, ours = scored[task.name].metrics[name], result.best_metrics[task.name][name]
        rows.append(
            {
                "task": task.name,
                "metric": name,
                "examples": draws[task.name] * config.training.batch_size,
                "hfmtl": ours,
                "peer": theirs,
                "delta": ours - theirs,
                "relative": (ours - theirs) / abs(theirs),
                "peer_seconds": peer["seconds"],
            }
        )
    return {
        "steps": steps,
        "hfmtl_seconds": hfmtl_seconds,
        "tasks": rows,
        "mean_relative_change": statistics.mean(r["relative"] for r in rows),
    }


def load_config_with(base: RunConfig, overrides: list[str]) -> RunConfig:
    from hfmtl.config import config_from_dict, config_to_dict
    from hfmtl.dataclass_parsing import apply_override

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
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(resolve_encoder(config.encoder.name_or_path))
    return sum(p.numel() for p in encoder.encoder.layer.parameters())


def timed(work: Any) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
