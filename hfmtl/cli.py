"""The `hfmtl` command: parses arguments and calls library functions; no logic of its own.

Errors the user can fix (HfmtlError) print one clear line and exit with status 2; `--debug` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from hfmtl import __version__, commands
from hfmtl.errors import HfmtlError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extras = parser.parse_known_args(argv)
    # argparse gives a `nargs="*"` positional only the words before the first option: `predict MODEL --dtype
    # bfloat16 "a text"` leaves the text over. Words left over (not options) are more texts, in their order.
    if extras and (not hasattr(args, "texts") or any(word.startswith("-") for word in extras)):
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    if extras:
        args.texts = [*args.texts, *extras]
    from transformers.utils import logging as transformers_logging

    # Our progress bars are the ones to read; transformers' per-file loading/saving bars only add noise.
    transformers_logging.disable_progress_bar()
    try:
        with _terminate_as_exit():
            args.command(args)
    except HfmtlError as error:
        if args.debug:
            raise
        print(f"hfmtl: error: {error}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:  # Ctrl-C: what was being written is left as it was (atomic writes, the lock)
        if args.debug:
            raise
        print("hfmtl: interrupted", file=sys.stderr)  # noqa: T201
        return 130  # 128 + SIGINT
    except BrokenPipeError:  # `hfmtl predict ... | head`: the reader has what it wanted; no traceback
        # Python's recipe: point stdout at devnull so the flush at exit does not raise again.
        with contextlib.suppress(OSError, ValueError):  # stdout may be no file at all (captured, redirected)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell tool killed by the closed pipe exits with
    except OSError as error:  # a file the user named that the system refuses (read-only, a folder, a full disk)
        if args.debug or error.filename is None:
            raise
        print(f"hfmtl: error: {error.filename}: {error.strerror} (--debug shows where)", file=sys.stderr)  # noqa: T201
        return 2
    return 0


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM (a scheduler's kill, `timeout`) ends the command like Ctrl-C does, through every `finally`: the
    temporary files of atomic writes are removed and the output folder's lock released. Without it Python dies
    on the spot and leaves them behind."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfmtl", description="Multi-task fine-tuning of Hugging Face encoders.")
    parser.add_argument("--version", action="version", version=f"hfmtl {__version__}")
    subcommands = parser.add_subparsers(required=True, metavar="COMMAND")

    train = subcommands.add_parser(
        "train",
        help="train one model on every task of a config",
        description="Train one model on every task of a config. `hfmtl config CONFIG` prints every config key "
        "with its type, default and meaning (and the values this config resolves to).",
    )
    _add_config_arguments(train)
    _add_run_arguments(train)
    train.set_defaults(command=commands.train)

    distill = subcommands.add_parser(
        "distill",
        help="train a (smaller) student on a config's tasks from a trained multi-task teacher and the labels",
        description="Train the config's model from the teacher's soft targets mixed with the gold labels "
        "(distillation.alpha, distillation.temperature), through the same trainer. A smaller student: "
        "--set encoder.num_layers=3 keeps the first 3 layers of the config's encoder.",
    )
    distill.add_argument("teacher", help="a trained hfmtl model folder (or Hub id) with every task of the config")
    _add_config_arguments(distill)
    _add_run_arguments(distill)
    distill.set_defaults(command=commands.distill)

    evaluate = subcommands.add_parser("evaluate", help="score a trained model and write report.json/.md/.html")
    evaluate.add_argument("model_dir", help="a model folder written by hfmtl train (e.g. runs/x/model)")
    evaluate.add_argument("--config", help="run config naming the data (default: the model's run_config.yaml)")
    evaluate.add_argument("--split", default="validation", help="which split of each task: validation or train")
    evaluate.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="TASK=PATH",
        help="evaluate TASK on this file instead (any supported format), e.g. --data ner=other.conll",
    )
    evaluate.add_argument("--out", help="report folder (default: report-SPLIT beside the model folder)")
    evaluate.add_argument("--baseline", help="an earlier report.json to compare against (on the same data)")
    evaluate.add_argument(
        "--allow-different-data",
        action="store_true",
        help="compare with a --baseline even where it was scored on other data (other sha256)",
    )
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    evaluate.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the modelling code an encoder ships in the model folder (only for code you have read and trust)",
    )
    evaluate.add_argument("--debug", action="store_true", help="show full tracebacks")
    evaluate.set_defaults(command=commands.evaluate)

    predict = subcommands.add_parser("predict", help="answer every task for each text (JSON lines on stdout)")
    predict.add_argument("model_dir", help="a model folder, or a Hub repo id (user/name)")
    predict.add_argument("texts", nargs="*", help="texts to predict on")
    predict.add_argument(
        "--input",
        help="a .txt (one text per line), .jsonl, .json, .csv or .tsv file (see --text-field); "
        "- reads text lines from standard input",
    )
    predict.add_argument("--output", help="write JSON lines here instead of stdout")
    predict.add_argument(
        "--text-field",
        default="text",
        help="the field or column holding the text in a .jsonl, .json, .csv or .tsv --input",
    )
    predict.add_argument(
        "--text-pair-field",
        help="sentence-pair tasks: the field or column holding each row's second text (files with fields only)",
    )
    predict.add_argument("--batch-size", type=int, default=32)
    predict.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    predict.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="weights dtype for inference")
    predict.add_argument(
        "--allow-pickle",
        action="store_true",
        help="also read weights from a pytorch_model.bin (pickle) if there is no safetensors; trusted folders only",
    )
    predict.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the modelling code an encoder ships in the model folder (only for code you have read and trust)",
    )
    predict.add_argument(
        "--backend",
        choices=["torch", "onnxruntime"],
        default="torch",
        help="onnxruntime: run a folder written by `hfmtl export --format onnx` (needs pip install 'hfmtl[onnx]')",
    )
    predict.add_argument("--quantize", help="int8: make the model's Linear layers int8 on load (torch backend, CPU)")
    predict.add_argument("--debug", action="store_true", help="show full tracebacks")
    predict.set_defaults(command=commands.predict)

    export = subcommands.add_parser(
        "export", help="write a model folder as one ONNX graph with every head (for onnxruntime)"
    )
    export.add_argument("model_dir", help="a model folder written by hfmtl train (e.g. runs/x/model)")
    export.add_argument("--format", default="onnx", help="the format to write (onnx)")
    export.add_argument("--out", required=True, help="a new (or empty) folder to write the export into")
    export.add_argument("--quantize", help="int8: store the graph's weights as int8 (dynamic quantization, CPU)")
    export.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
    export.add_argument("--debug", action="store_true", help="show full tracebacks")
    export.set_defaults(command=commands.export)

    publish = subcommands.add_parser("publish", help="upload a model folder to the Hugging Face Hub")
    publish.add_argument("model_dir", help="a model folder written by hfmtl train (e.g. runs/x/model)")
    publish.add_argument("--repo-id", required=True, help="user/name or organization/name")
    publish.add_argument("--private", action="store_true", help="create the repo as private")
    publish.add_argument("--revision", help="upload to this branch (created from main if missing)")
    publish.add_argument("--commit-message", help="the commit message")
    publish.add_argument("--with-code", action="store_true", help="also upload modeling code for trust_remote_code")
    publish.add_argument("--dry-run", action="store_true", help="list what would be uploaded; upload nothing")
    publish.add_argument("--debug", action="store_true", help="show full tracebacks")
    publish.set_defaults(command=commands.publish)

    config = subcommands.add_parser(
        "config", help="print the resolved config: every field with its type, default and meaning"
    )
    _add_config_arguments(config)
    config.set_defaults(command=commands.config)

    data = subcommands.add_parser("data", help="check and tokenize every task's data; print counts and padding")
    _add_config_arguments(data)
    data.add_argument(
        "--fetch",
        action="store_true",
        help="first download the config's missing data files from the Hugging Face Hub into data_dir "
        "(the shipped configs' SST-2, CoNLL-2003 and SST files); files already there are left as they are",
    )
    data.set_defaults(command=commands.data)
    return parser


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="CHECKPOINT",
        help="continue from a checkpoint: the newest in the run's output dir, or the folder given",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run in output_dir (only the files a run writes are removed)",
    )
    parser.add_argument(
        "--stop-at", type=int, metavar="STEP", help="checkpoint and stop at this step (continue later with --resume)"
    )


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run config (YAML)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.max_steps=100 --set tasks.ner.loss_weight=2",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
