"""What each `hfmtl` command does with its parsed arguments: call the library and print what the user reads.
The arguments themselves are defined in `cli.py`."""

from __future__ import annotations

import argparse
import sys


def train(args: argparse.Namespace) -> None:
    from accelerate import PartialState

    from hfmtl.config.run_config import load_config
    from hfmtl.evaluation.metrics import format_main_metrics
    from hfmtl.train.trainer import train

    config = load_config(args.config, args.overrides)
    result = train(config, resume=args.resume, overwrite=args.overwrite, stop_at_step=args.stop_at)
    if PartialState().is_main_process:  # under torchrun every process returns here; one report is enough
        print(f"Model: {result.model_dir}  (log: {result.output_dir / 'metrics.jsonl'})")  # noqa: T201
        if result.best_metrics is not None:
            kinds = {task.name: task.kind for task in config.tasks}
            best = format_main_metrics(result.best_metrics, kinds)
            print(f"Best at step {result.best_step}: {best}")  # noqa: T201


def distill(args: argparse.Namespace) -> None:
    args.overrides = [*args.overrides, f"distillation.teacher={args.teacher}"]
    train(args)


def evaluate(args: argparse.Namespace) -> None:
    from accelerate import PartialState

    from hfmtl.errors import ConfigError
    from hfmtl.evaluation.evaluate_model import evaluate_model_dir
    from hfmtl.evaluation.metrics import format_main_metrics

    data = {}
    for item in args.data:
        task, separator, path = item.partition("=")
        if not separator or not task or not path:
            raise ConfigError(f"--data '{item}' must look like TASK=PATH")
        if task in data:
            raise ConfigError(f"--data gives task '{task}' twice ({data[task]} and {path}); give each task once")
        data[task] = path
    report, out = evaluate_model_dir(
        args.model_dir,
        config_path=args.config,
        overrides=args.overrides,
        split=args.split,
        data=data,
        out_dir=args.out,
        baseline=args.baseline,
        batch_size=args.batch_size,
        trust_remote_code=args.trust_remote_code,
        allow_different_data=args.allow_different_data,
    )
    if PartialState().is_main_process:
        kinds = {task: entry["kind"] for task, entry in report["tasks"].items()}
        print(format_main_metrics({t: e["metrics"] for t, e in report["tasks"].items()}, kinds))  # noqa: T201
        print(f"Report: {out / 'report.html'} (also report.md, report.json, predictions/)")  # noqa: T201


def predict(args: argparse.Namespace) -> None:
    from hfmtl.serve.predict_files import predict_to_stream

    predict_to_stream(
        args.model_dir,
        texts=args.texts,
        input_path=args.input,
        output_path=args.output,
        text_field=args.text_field,
        text_pair_field=args.text_pair_field,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
        backend=args.backend,
        quantize=args.quantize,
    )


def export(args: argparse.Namespace) -> None:
    from hfmtl.deploy.onnx_export import export_onnx

    graph = export_onnx(args.model_dir, args.out, format=args.format, quantize=args.quantize, overwrite=args.overwrite)
    print(f"Wrote {graph} (every task's logits as an output named after it) and its tokenizer and config")  # noqa: T201


def publish(args: argparse.Namespace) -> None:
    from hfmtl.hub.publish import publish

    result = publish(
        args.model_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        dry_run=args.dry_run,
        with_code=args.with_code,
    )
    verb = "Would upload" if args.dry_run else "Uploaded"
    print(f"{verb} {len(result.files)} files to {result.repo_id}:")  # noqa: T201
    for name, size in result.files:
        print(f"  {name:<32} {size:>12,} bytes")  # noqa: T201
    if result.url:
        print(result.url)  # noqa: T201


def config(args: argparse.Namespace) -> None:
    from hfmtl.config.help import describe
    from hfmtl.config.run_config import load_config

    print(describe(load_config(args.config, args.overrides)), end="")  # noqa: T201


def data(args: argparse.Namespace) -> None:
    from hfmtl.config.run_config import load_config
    from hfmtl.data.stats import describe_run_data, format_stats

    config = load_config(args.config, args.overrides)
    if args.fetch:
        from hfmtl.data.fetch import fetch_data

        fetch_data(config, report=lambda line: print(line, file=sys.stderr))  # noqa: T201
    print(format_stats(describe_run_data(config)))  # noqa: T201
