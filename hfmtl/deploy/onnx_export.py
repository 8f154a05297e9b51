"""`hfmtl export MODEL_DIR --format onnx --out DIR`: the shared encoder and every head as one ONNX graph.

The graph takes `input_ids`, `attention_mask` (and `token_type_ids` where the tokenizer makes them), with the
batch and sequence axes dynamic, and has one output per task, named after it: the logits `forward_all` gives.
It is written with the tokenizer, the model's config.json (task specs, label names, thresholds), its run
config and metrics, and `hfmtl_tasks.json` (each output's task, kind and labels, for runtimes other than
hfmtl), so that `MultiTaskPipeline.from_pretrained(DIR, backend="onnxruntime")` answers as the PyTorch one.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from hfmtl.atomic import temporary_path, write_json_atomic
from hfmtl.deploy.quantize import check_quantization, quantize_onnx
from hfmtl.errors import ConfigError
from hfmtl.model.folder import METRICS_FILE, MODEL_FILES, RUN_CONFIG_FILE, LoadedModel, load_model_dir
from hfmtl.model.modeling import MultiTaskModel
from hfmtl.tasks import task_kind

ONNX_FILE = "model.onnx"
TASKS_FILE = "hfmtl_tasks.json"
EXPORT_FILES = (ONNX_FILE, TASKS_FILE, *MODEL_FILES)
"""What an export folder holds (name patterns): `--overwrite` replaces a folder that holds nothing else."""
FORMATS = ("onnx",)
OPSET = 17
"""ONNX opset: 17 has LayerNormalization, and every onnxruntime since 1.14 runs it."""


class AllHeads(nn.Module):
    """`forward_all` with positional inputs and a tuple of outputs in task order, as ONNX export wants."""

    def __init__(self, model: MultiTaskModel, with_token_types: bool) -> None:
        super().__init__()
        self.model = model
        self.tasks = model.task_names
        self.with_token_types = with_token_types

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, *token_type_ids: torch.Tensor) -> tuple:
        extra = {"token_type_ids": token_type_ids[0]} if token_type_ids else {}
        logits = self.model.forward_all(input_ids, attention_mask, **extra)
        return tuple(logits[task] for task in self.tasks)


def require_onnx() -> None:
    """A clear error naming the extra to install when onnx or onnxruntime is missing."""
    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"ONNX export and the onnxruntime backend need {' and '.join(missing)}: pip install 'hfmtl[onnx]'"
        )


def export_onnx(
    model_dir: str | Path,
    out: str | Path,
    *,
    format: str = "onnx",
    quantize: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the ONNX folder for `model_dir` into `out` (a new or empty folder, or with `overwrite` one that an
    earlier export wrote); returns the graph's path. `quantize="int8"` writes the graph with int8 weights
    (onnxruntime's dynamic quantization). Written beside `out` and swapped in, so a kill leaves no half export."""
    if format not in FORMATS:
        raise ConfigError(f"unknown export format '{format}'; expected one of: {', '.join(FORMATS)}")
    check_quantization(quantize)
    require_onnx()
    model_dir, out = Path(model_dir), Path(out)
    _check_destination(out, model_dir, overwrite)
    loaded = load_model_dir(model_dir)
    loaded.model.float().eval()
    with_token_types = "token_type_ids" in loaded.tokenizer.model_input_names
    names = ["input_ids", "attention_mask", *(["token_type_ids"] if with_token_types else [])]
    example = loaded.tokenizer(["an example", "a longer example text"], padding=True, return_tensors="pt")
    inputs = tuple(example[name] for name in names)
    # Written under a hidden name no one else uses, then swapped in whole: a kill leaves the earlier export as it
    # was (or, in the instant between the two renames, under its hidden name), never half of one.
    target = out.resolve()  # `--out .` has no name of its own to put a temporary one beside
    fresh = temporary_path(target)
    fresh.mkdir(parents=True)
    try:
        _write_export(loaded, model_dir, fresh, names, inputs, with_token_types, quantize)
        earlier = temporary_path(target)
        if target.exists():
            target.rename(earlier)
        fresh.rename(target)
        shutil.rmtree(earlier, ignore_errors=True)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return out / ONNX_FILE


def _write_export(
    loaded: LoadedModel,
    model_dir: Path,
    fresh: Path,
    names: list[str],
    inputs: tuple[torch.Tensor, ...],
    with_token_types: bool,
    quantize: str | None,
) -> None:
    """The export's files in `fresh`: the ONNX graph (quantized if asked), tokenizer, configs, task specs."""
    model = loaded.model
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    for task in model.task_names:
        per_token = not task_kind(model.specs[task].kind).per_text
        axes[task] = {0: "batch", 1: "sequence"} if per_token else {0: "batch"}
    # The tracer warns wherever the model reads a tensor as a Python value (mask shapes, `is_causal`); for an
    # encoder these are fixed by the inputs' rank, and the tests check outputs on other shapes against PyTorch.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            AllHeads(model, with_token_types),
            inputs,
            str(fresh / ONNX_FILE),
            input_names=names,
            output_names=model.task_names,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    if quantize == "int8":
        quantize_onnx(fresh / ONNX_FILE, fresh / "model.int8.onnx")
        (fresh / "model.int8.onnx").replace(fresh / ONNX_FILE)
    loaded.tokenizer.save_pretrained(fresh)
    for name in ("config.json", RUN_CONFIG_FILE, METRICS_FILE):
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, fresh / name)
    specs = [
        {"task": spec.name, "kind": spec.kind, "labels": list(spec.labels or []), "pairs": spec.pairs}
        for spec in model.config.task_specs
    ]
    write_json_atomic(fresh / TASKS_FILE, {"inputs": names, "outputs": specs, "quantized": quantize})


def _check_destination(out: Path, model_dir: Path, overwrite: bool) -> None:
    """Never write into the model folder, or over files an export did not write."""
    if out.resolve() == model_dir.resolve():
        raise ConfigError(f"--out '{out}' is the model folder itself; export into a folder of its own")
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file, not a folder")
    if any(out.iterdir()):
        is_export = (out / TASKS_FILE).is_file() and (out / ONNX_FILE).is_file()
        if not is_export:
            raise ConfigError(f"--out '{out}' is not empty and is not an earlier export; choose a new folder")
        if not overwrite:
            raise ConfigError(f"--out '{out}' holds an earlier export; pass --overwrite to replace it")
        foreign = sorted(
            path.name
            for path in out.iterdir()
            if path.is_dir() or not any(fnmatch.fnmatchcase(path.name, pattern) for pattern in EXPORT_FILES)
        )
        if foreign:
            raise ConfigError(
                f"--out '{out}' holds an earlier export and files it did not write ({', '.join(foreign[:5])}); "
                "hfmtl never removes files it did not write: move them out, or choose a new folder"
            )


def read_tasks_file(path: Path) -> dict:
    """The export's `hfmtl_tasks.json`: its input names and each output's task, kind and labels."""
    return json.loads((path / TASKS_FILE).read_text(encoding="utf-8"))
