"""The model folder a run produces (weights, config, tokenizer, its validation metrics and the resolved run
config), and opening one. It is written beside the old one and swapped in, so a crash never leaves a
half-written model."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from hfmtl.atomic import write_json_atomic, write_text_atomic
from hfmtl.config.run_config import RunConfig, load_config, save_config
from hfmtl.errors import ModelLoadError
from hfmtl.hub.model_card import render_model_card
from hfmtl.model.check import check_weights, read_model_config
from hfmtl.model.encoder_code import EncoderCode
from hfmtl.model.modeling import MultiTaskConfig, MultiTaskModel, register_auto_classes

MODEL_DIR = "model"
"""The folder, inside a run's output_dir, that holds its best model."""
METRICS_FILE = "eval_results.json"
RUN_CONFIG_FILE = "run_config.yaml"

MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "README.md",
    METRICS_FILE,
    RUN_CONFIG_FILE,
)
"""What a model folder holds (name patterns): hfmtl's own files and those a tokenizer may save; an encoder's
own modelling code (`*.py`) comes on top. What `hfmtl publish` uploads, and what `--overwrite` may remove."""


def save_model_dir(
    model: MultiTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    path: Path,
    config: RunConfig,
    metrics: Mapping[str, object] | None,
) -> None:
    """Write a loadable model folder (`MultiTaskModel.from_pretrained(path)`) and swap it in atomically."""
    fresh, old = path.with_name(path.name + ".new"), path.with_name(path.name + ".old")
    shutil.rmtree(fresh, ignore_errors=True)
    model.save_pretrained(fresh)
    tokenizer.save_pretrained(fresh)
    save_config(config, fresh / RUN_CONFIG_FILE)
    if metrics is not None:
        write_json_atomic(fresh / METRICS_FILE, metrics)
    write_text_atomic(fresh / "README.md", render_model_card(*read_card_inputs(fresh), path.name))
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    fresh.rename(path)
    shutil.rmtree(old, ignore_errors=True)


@dataclass
class LoadedModel:
    """A model folder's contents: the model, its tokenizer, and the run config it was trained with (if kept)."""

    path: Path
    model: MultiTaskModel
    tokenizer: PreTrainedTokenizerBase
    run_config: RunConfig | None


def load_model_dir(path: str | Path, *, allow_pickle: bool = False, trust_remote_code: bool = False) -> LoadedModel:
    """Open an hfmtl model folder, with clear errors for folders that are not one.

    Weights load from safetensors only; `allow_pickle` (an explicit opt-in, for folders you trust) also
    accepts a pytorch_model.bin, read with torch's weights-only unpickler. An encoder that ships its own
    modelling code has that code saved in the folder; it runs only with `trust_remote_code` (also an opt-in).
    """
    path = Path(path)
    check_model_dir(path, allow_pickle=allow_pickle)
    config = read_model_config(path)
    code = config.encoder_auto_map
    if code and not trust_remote_code:
        raise ModelLoadError(
            f"the encoder of '{path}' comes with its own modelling code ({', '.join(code.values())}), which hfmtl "
            "does not run unless asked: --trust-remote-code (trust_remote_code=True in Python; only for code you have "
            "read and trust)"
        )
    register_auto_classes()  # so that AutoTokenizer, which reads config.json, knows the "hfmtl" model type
    is_pickle = not (path / "model.safetensors").is_file()
    if not is_pickle:  # a missing head would otherwise load freshly initialised, and answer at random
        check_weights(path, config, EncoderCode(str(path)) if trust_remote_code else None)
    model = MultiTaskModel.from_pretrained(
        path, use_safetensors=not is_pickle, trust_remote_code=trust_remote_code
    ).eval()
    # Bytes damaged inside the weights file keep its shapes: such a model would answer NaN, or argmax over NaN.
    damaged = [name for name, tensor in model.state_dict().items() if not torch.isfinite(tensor).all()]
    if damaged:
        raise ModelLoadError(
            f"the weights in '{path}' hold NaN or infinite values ({', '.join(damaged[:3])}"
            f"{f' and {len(damaged) - 3} more' if len(damaged) > 3 else ''}); the file is damaged, it is not loaded"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as error:  # noqa: BLE001 (tokenizers raises plain Exceptions for a damaged tokenizer.json)
        raise ModelLoadError(
            f"the tokenizer files in '{path}' cannot be read ({type(error).__name__}: {error})"
        ) from None
    if tokenizer.pad_token_id is None:  # batches could not be padded: its tokenizer_config.json is missing
        raise ModelLoadError(
            f"the tokenizer in '{path}' has no padding token; its tokenizer_config.json is missing or damaged"
        )
    run_config = load_config(path / RUN_CONFIG_FILE) if (path / RUN_CONFIG_FILE).is_file() else None
    return LoadedModel(path=path, model=model, tokenizer=tokenizer, run_config=run_config)


def check_model_dir(path: Path, *, allow_pickle: bool = False) -> None:
    """Raise a clear error unless `path` is an hfmtl model folder with safetensors weights."""
    if not path.is_dir():
        raise ModelLoadError(f"model folder '{path}' does not exist")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(f"'{path}' is not a model folder: it has no config.json")
    try:
        settings = json.loads(config_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ModelLoadError(f"{config_file} is not valid JSON: {error}") from None
    except UnicodeDecodeError as error:
        raise ModelLoadError(f"{config_file} is not UTF-8 text (byte {error.start}); it is damaged") from None
    if not isinstance(settings, dict):
        raise ModelLoadError(f"{config_file} holds a JSON {type(settings).__name__}, not an object of settings")
    model_type = settings.get("model_type")
    if model_type != MultiTaskConfig.model_type:
        raise ModelLoadError(f"'{path}' holds a '{model_type}' model, not an hfmtl multi-task model")
    if not (path / "model.safetensors").is_file():
        if allow_pickle and (path / "pytorch_model.bin").is_file():
            return
        if (path / "model.onnx").is_file():  # an `hfmtl export` folder, given to the torch backend
            raise ModelLoadError(f"'{path}' is an ONNX export: run it with --backend onnxruntime")
        raise ModelLoadError(f"'{path}' has no model.safetensors (hfmtl loads weights only from safetensors)")


def read_card_inputs(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """What the model card is made from: config.json, the run config and the best metrics, as plain data."""
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    run_config = (
        yaml.safe_load((path / RUN_CONFIG_FILE).read_text(encoding="utf-8"))
        if (path / RUN_CONFIG_FILE).is_file()
        else None
    )
    best = json.loads((path / METRICS_FILE).read_text(encoding="utf-8")) if (path / METRICS_FILE).is_file() else None
    return config, run_config, best
