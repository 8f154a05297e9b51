"""Distillation, measured: the teacher beside students of the same size trained with and without it.

    python scripts/benchmark_distillation.py --teacher runs/quickstart-model \
        --student "distilled=runs/student-distilled/model" --student "labels only=runs/student-plain/model" \
        --out benchmarks/distillation

Each model is scored as `benchmark_compression.py` scores a variant (PyTorch fp32 through `MultiTaskPipeline` on
this CPU: size, texts/s, each task's validation metric from the pipeline's answers). The students' run configs
(in their folders) say how they were trained; their steps, layers and distillation settings are in the table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from benchmark_compression import measure, validation_inputs
from machine import cpu_description

from hfmtl.atomic import write_json_atomic, write_text_atomic
from hfmtl.config.run_config import load_config
from hfmtl.model.folder import RUN_CONFIG_FILE
from hfmtl.serve.pipeline import MultiTaskPipeline


def describe(model_dir: Path) -> dict:
    config = load_config(model_dir / RUN_CONFIG_FILE)
    pipeline = MultiTaskPipeline.from_pretrained(model_dir, device="cpu")
    return {
        "layers": pipeline.model.encoder.config.num_hidden_layers,
        "steps": config.training.max_steps,
        "teacher": config.distillation.teacher,
        "alpha": config.distillation.alpha if config.distillation.teacher else None,
        "temperature": config.distillation.temperature if config.distillation.teacher else None,
        "bytes": (model_dir / "model.safetensors").stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, required=True)
    parser.add_argument("--student", action="append", default=[], metavar="NAME=DIR", help="a student to score")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/distillation"))
    args = parser.parse_args()
    models = {"teacher": args.teacher, **{s.split("=", 1)[0]: Path(s.split("=", 1)[1]) for s in args.student}}
    teacher = MultiTaskPipeline.from_pretrained(args.teacher, device="cpu")
    labels = {spec.name: spec.labels for spec in teacher.model.config.task_specs}
    sets = validation_inputs(load_config(args.teacher / RUN_CONFIG_FILE), labels)
    rows = []
    for name, folder in models.items():
        pipeline = MultiTaskPipeline.from_pretrained(folder, device="cpu")
        rows.append({"name": name, "model": str(folder), **describe(folder), **measure(pipeline, sets, labels)})
        print(name, rows[-1]["metrics"], f"{rows[-1]['texts_per_second']:.1f}/s")  # noqa: T201
    students = " ".join(f'--student "{s}"' for s in args.student)
    meta = {
        "command": f"python scripts/benchmark_distillation.py --teacher {args.teacher} {students} --out {args.out}",
        "machine": f"{cpu_description()}, {torch.get_num_threads()} threads",
        "date": time.strftime("%Y-%m-%d"),
        "texts": {task: len(data["texts"]) for task, data in sets.items()},
    }
    write_json_atomic(args.out.with_suffix(".json"), {"meta": meta, "models": rows})
    tasks = list(rows[0]["metrics"])
    lines = [
        "# Distillation: teacher and students side by side",
        "",
        f"`{meta['command']}` on {meta['machine']}, {meta['date']}. PyTorch fp32 through `MultiTaskPipeline`, every "
        f"task answered for every validation text ({', '.join(f'{t}: {n}' for t, n in meta['texts'].items())}); "
        "metrics from the pipeline's answers (accuracy, entity-span F1 on detokenized CoNLL sentences, Pearson).",
        "",
        "| model | layers | steps | teacher (alpha, T) | size (MB) | texts/s | " + " | ".join(tasks) + " |",
        "|---|---:|---:|---|---:|---:|" + "---:|" * len(tasks),
    ]
    for row in rows:
        taught = f"{row['teacher']} ({row['alpha']}, {row['temperature']})" if row["teacher"] else "-"
        cells = " | ".join(f"{row['metrics'][t]:.4f}" for t in tasks)
        lines.append(
            f"| {row['name']} | {row['layers']} | {row['steps']} | {taught} | {row['bytes'] / 1e6:.1f} | "
            f"{row['texts_per_second']:.1f} | {cells} |"
        )
    write_text_atomic(args.out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
