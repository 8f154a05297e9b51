"""Compression for deployment, measured side by side on this CPU: fp32 and int8, PyTorch and onnxruntime.

    python scripts/benchmark_compression.py --model runs/quickstart-model --out benchmarks/compression

For each variant (PyTorch fp32; PyTorch int8, dynamic quantization at load, and where hfmtl's int8 uses 8-bit
activations also PyTorch's own 7-bit ones; onnxruntime fp32 and int8, from
`hfmtl export --format onnx [--quantize int8]`): the weights' size, CPU texts/s through `MultiTaskPipeline`
(every task answered for every text, batch 32), and each task's validation metric read from the pipeline's own
answers (accuracy from its labels, entity F1 from its character spans on detokenized CoNLL sentences, exact
start, end and type, Pearson from its values), so every variant is scored as a user would run it. Writes
`<out>.json` and `<out>.md`.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch
from benchmark_ner_raw import bio_spans, detokenize, span_f1
from machine import cpu_description
from scipy.stats import pearsonr

from hfmtl.atomic import write_json_atomic, write_text_atomic
from hfmtl.config.run_config import RunConfig, load_config
from hfmtl.data.loading import load_split
from hfmtl.deploy import quantize
from hfmtl.deploy.onnx_export import ONNX_FILE, export_onnx
from hfmtl.model.folder import RUN_CONFIG_FILE
from hfmtl.serve.pipeline import MultiTaskPipeline


def validation_inputs(config: RunConfig, labels: dict[str, tuple[str, ...] | None]) -> dict[str, dict[str, Any]]:
    """Per task: its validation texts (CoNLL words detokenized) and its gold answers, as the pipeline gives them."""
    sets = {}
    for task in config.tasks:
        examples, _ = load_split(task, task.data.validation, config.data_dir, labels[task.name])
        if task.kind == "token_classification":
            texts, gold = [], []
            for words, tags in zip(examples["tokens"], examples["tags"], strict=True):
                text, spans = detokenize(words)
                texts.append(text)
                gold.append(bio_spans([labels[task.name][tag] for tag in tags], spans))
        elif task.kind in ("classification", "regression"):
            texts, gold = list(examples["text"]), list(examples["label"])
        else:
            raise SystemExit(f"task '{task.name}': kind {task.kind} is not measured here")
        sets[task.name] = {"kind": task.kind, "texts": texts, "gold": gold}
    return sets


def score(kind: str, answers: list[Any], gold: list[Any], labels: tuple[str, ...] | None) -> float:
    if kind == "classification":
        return float(np.mean([labels.index(a["label"]) == g for a, g in zip(answers, gold, strict=True)]))
    if kind == "regression":
        return float(pearsonr(answers, gold).statistic)
    predicted = [{(e["start"], e["end"], e["entity_group"]) for e in answer} for answer in answers]
    return span_f1(predicted, gold)


class ForwardClock:
    """Seconds spent in the model itself (encoder and heads, either backend) during pipeline calls. The rest of
    a pipeline's time (word splitting, tokenization, collation, building the answers) is the same for every
    variant, and int8 cannot speed it up: the share tells how far quantization can speed up the whole."""

    def __init__(self, pipeline: MultiTaskPipeline) -> None:
        self.seconds = 0.0
        model = pipeline.model
        if isinstance(model, torch.nn.Module):
            started: list[float] = []
            model.register_forward_pre_hook(lambda *_: started.append(time.perf_counter()))
            model.register_forward_hook(lambda *_: self._add(started.pop()))
        else:  # the onnxruntime model: one `logits` call per batch
            logits = model.logits

            def timed(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return logits(*args, **kwargs)
                finally:
                    self._add(start)

            model.logits = timed

    def _add(self, start: float) -> None:
        self.seconds += time.perf_counter() - start


def measure(pipeline: MultiTaskPipeline, sets: dict[str, dict[str, Any]], labels: dict) -> dict[str, Any]:
    """Each task's metric on its own validation texts, and texts/s over all of them (every task answered),
    with the seconds of it spent in the model's forward passes."""
    clock = ForwardClock(pipeline)
    pipeline(next(iter(sets.values()))["texts"][:64])  # warm-up: first-call allocations are not throughput
    clock.seconds = 0.0
    metrics, texts, seconds = {}, 0, 0.0
    for task, data in sets.items():
        start = time.perf_counter()
        answers = pipeline(data["texts"])
        seconds += time.perf_counter() - start
        texts += len(data["texts"])
        metrics[task] = score(data["kind"], [a[task] for a in answers], data["gold"], labels[task])
    return {
        "metrics": metrics,
        "texts": texts,
        "seconds": seconds,
        "texts_per_second": texts / seconds,
        "forward_seconds": clock.seconds,
        "forward_share": clock.seconds / seconds,
    }


def median_speed(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One variant's speed over the rounds: the median round by texts/s, and every round's texts/s. The
    metrics are the same in every round (the answers do not depend on timing)."""
    middle = sorted(runs, key=lambda run: run["texts_per_second"])[len(runs) // 2]
    keys = ("seconds", "texts_per_second", "forward_seconds", "forward_share")
    return {**{key: middle[key] for key in keys}, "texts_per_second_rounds": [run["texts_per_second"] for run in runs]}


def seven_bit_int8(args: argparse.Namespace) -> MultiTaskPipeline:
    """PyTorch int8 as PyTorch quantizes it, activations in 7 bits, on a CPU where hfmtl would use 8: the
    difference the saturation probe makes, side by side."""
    with mock.patch.object(quantize, "full_range_is_exact", lambda: False):
        return MultiTaskPipeline.from_pretrained(args.model, batch_size=args.batch_size, quantize="int8")


def torch_int8_bytes(pipeline: MultiTaskPipeline) -> int:
    """The quantized model's state dict serialized in memory (its size on disk, were it saved)."""
    buffer = io.BytesIO()
    torch.save(pipeline.model.state_dict(), buffer)
    return buffer.tell()


def markdown(result: dict[str, Any]) -> str:
    meta, rows = result["meta"], result["variants"]
    tasks = list(rows[0]["metrics"])
    base = rows[0]
    lines = [
        "# Compression: fp32 vs int8, PyTorch vs onnxruntime",
        "",
        f"`{meta['command']}` on {meta['machine']}, {meta['date']}; model `{meta['model']}`, torch "
        f"{meta['torch']}, onnxruntime {meta['onnxruntime']}. Every task is answered for every text "
        f"(`MultiTaskPipeline`, batch {meta['batch_size']}); metrics are read from the pipeline's answers on "
        f"the validation splits ({', '.join(f'{t}: {n} texts' for t, n in meta['texts'].items())}): "
        "accuracy, entity-span F1 on detokenized CoNLL sentences, Pearson. *Forward* is the time spent in the "
        "model itself (encoder and heads); the rest is word splitting, tokenization, collation and answers, "
        "the same work for every variant. "
        f"texts/s is the median of {meta.get('repeats', 1)} round(s) over every variant in turn (each round's "
        "figure is in the JSON).",
        "",
        "| variant | size (MB) | texts/s | speed-up | forward share | forward speed-up | "
        + " | ".join(tasks)
        + " | worst Δ (points) |",
        "|---|---:|---:|---:|---:|---:|" + "---:|" * len(tasks) + "---:|",
    ]
    for row in rows:
        deltas = [100 * (row["metrics"][t] - base["metrics"][t]) for t in tasks]
        cells = " | ".join(f"{row['metrics'][t]:.4f}" for t in tasks)
        lines.append(
            f"| {row['name']} | {row['bytes'] / 1e6:.1f} | {row['texts_per_second']:.1f} | "
            f"{row['texts_per_second'] / base['texts_per_second']:.2f}× | {row['forward_share']:.0%} | "
            f"{base['forward_seconds'] / row['forward_seconds']:.2f}× | {cells} | {min(deltas):+.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("runs/quickstart-model"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/compression"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, help="at most this many validation texts per task (a quick look)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over every variant; texts/s is the median")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    import onnxruntime

    config = load_config(args.model / RUN_CONFIG_FILE)
    fp32 = MultiTaskPipeline.from_pretrained(args.model, batch_size=args.batch_size, device="cpu")
    labels = {spec.name: spec.labels for spec in fp32.model.config.task_specs}
    sets = validation_inputs(config, labels)
    if args.limit:
        sets = {t: {**d, "texts": d["texts"][: args.limit], "gold": d["gold"][: args.limit]} for t, d in sets.items()}
    variants = []
    with tempfile.TemporaryDirectory(prefix="hfmtl-compression-") as scratch:
        onnx32 = export_onnx(args.model, Path(scratch) / "fp32").parent
        onnx8 = export_onnx(args.model, Path(scratch) / "int8", quantize="int8").parent
        candidates = [
            ("PyTorch fp32", lambda: fp32, (args.model / "model.safetensors").stat().st_size),
            (
                "PyTorch int8 (dynamic)",
                lambda: MultiTaskPipeline.from_pretrained(args.model, batch_size=args.batch_size, quantize="int8"),
                None,
            ),
            *(
                [("PyTorch int8, 7-bit activations (PyTorch's own)", lambda: seven_bit_int8(args), None)]
                if quantize.full_range_is_exact()  # else the row above already has 7-bit activations
                else []
            ),
            (
                "onnxruntime fp32",
                lambda: MultiTaskPipeline.from_pretrained(onnx32, backend="onnxruntime", batch_size=args.batch_size),
                (onnx32 / ONNX_FILE).stat().st_size,
            ),
            (
                "onnxruntime int8 (dynamic)",
                lambda: MultiTaskPipeline.from_pretrained(onnx8, backend="onnxruntime", batch_size=args.batch_size),
                (onnx8 / ONNX_FILE).stat().st_size,
            ),
        ]
        pipelines = [(name, make(), size) for name, make, size in candidates]
        # Rounds over every variant in turn, the median per variant: a shared CPU's speed drifts by a quarter
        # within minutes, and measuring each variant once, one after the other, would put that drift into
        # the ratios.
        rounds = [[measure(pipeline, sets, labels) for _, pipeline, _ in pipelines] for _ in range(args.repeats)]
        for index, (name, pipeline, size) in enumerate(pipelines):
            runs = [round_[index] for round_ in rounds]
            result = {**runs[0], **median_speed(runs)}
            variants.append({"name": name, "bytes": size or torch_int8_bytes(pipeline), **result})
            print(name, {k: round(v, 4) for k, v in result["metrics"].items()}, f"{result['texts_per_second']:.1f}/s")  # noqa: T201
    meta = {
        "command": f"python scripts/benchmark_compression.py --model {args.model} --out {args.out}"
        + (f" --limit {args.limit}" if args.limit else "")
        + (f" --repeats {args.repeats}" if args.repeats != 3 else ""),
        "repeats": args.repeats,
        "machine": f"{cpu_description()}, {torch.get_num_threads()} threads",
        "date": time.strftime("%Y-%m-%d"),
        "model": str(args.model),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "batch_size": args.batch_size,
        "texts": {task: len(data["texts"]) for task, data in sets.items()},
    }
    result = {"meta": meta, "variants": variants}
    write_json_atomic(args.out.with_suffix(".json"), result)
    write_text_atomic(args.out.with_suffix(".md"), markdown(result))


if __name__ == "__main__":
    main()
