"""Is a model folder whole? Its config must name tasks, kinds and label sets consistently, and its safetensors
must hold every tensor the model expects, each with the right shape, and nothing else.

transformers would load a file that lacks a head's tensors with a freshly initialised head (a warning, then
silently wrong answers); a folder that fails these checks is refused before any weight is read.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from hfmtl.errors import ModelLoadError
from hfmtl.model.encoder_code import EncoderCode
from hfmtl.model.modeling import MultiTaskConfig, MultiTaskModel
from hfmtl.tasks import TASK_KINDS

SHOWN = 5
"""How many missing, unexpected or mis-shaped tensors an error names."""


def read_model_config(path: Path) -> MultiTaskConfig:
    """The folder's config.json as a MultiTaskConfig, its encoder settings and task specs checked."""
    file = path / "config.json"
    try:
        config = MultiTaskConfig.from_json_file(file)
        specs = config.task_specs
    except (TypeError, KeyError, ValueError, AttributeError) as error:
        raise ModelLoadError(f"{file}: the task list is malformed ({type(error).__name__}: {error})") from None
    if not isinstance(config.encoder, dict) or not isinstance(config.encoder.get("model_type"), str):
        raise ModelLoadError(f"{file}: 'encoder' must hold the encoder's config, with its 'model_type'")
    _check_task_specs(file, specs)
    return config


def _check_task_specs(file: Path, specs: list) -> None:
    """Unique names, known kinds, label sets that fit the kind."""
    if not specs:
        raise ModelLoadError(f"{file}: 'tasks' must list the model's tasks")
    names = [spec.name for spec in specs]
    for spec in specs:
        where = f"{file}: task '{spec.name}'"
        if names.count(spec.name) > 1:
            raise ModelLoadError(f"{where} is listed twice")
        if spec.kind not in TASK_KINDS:
            raise ModelLoadError(f"{where} has kind '{spec.kind}'; expected one of: {', '.join(TASK_KINDS)}")
        problem = TASK_KINDS[spec.kind].check_spec(spec)
        if problem:
            raise ModelLoadError(f"{where} {problem}")


def check_weights(path: Path, config: MultiTaskConfig, code: EncoderCode | None) -> None:
    """Every tensor the config's model has is in the folder's safetensors with its shape, and no other."""
    try:
        with torch.device("meta"):  # the model's shapes without allocating or initialising any weight
            skeleton = MultiTaskModel(config, encoder_code=code)
    except (ValueError, KeyError) as error:  # transformers' answer to an unknown or malformed encoder config
        encoder_type = config.encoder.get("model_type") if isinstance(config.encoder, dict) else None
        raise ModelLoadError(
            f"{path / 'config.json'}: the encoder (model_type '{encoder_type}') cannot be built by this "
            f"transformers ({type(error).__name__}: {str(error)[:200]})"
        ) from None
    expected = {name: tuple(tensor.shape) for name, tensor in skeleton.state_dict().items()}
    found = saved_shapes(path)
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(name for name in set(expected) & set(found) if expected[name] != found[name])
    problems = []
    if missing:
        problems.append(f"{len(missing)} tensors missing ({_names(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} tensors it does not expect ({_names(unexpected)})")
    if wrong:
        shapes = ", ".join(f"{name} {list(found[name])} instead of {list(expected[name])}" for name in wrong[:SHOWN])
        problems.append(f"{len(wrong)} tensors of the wrong shape ({shapes})")
    if problems:
        raise ModelLoadError(
            f"the weights in '{path}' do not match its config.json: {'; '.join(problems)}. The folder is damaged "
            "or mixed from two models; it is not loaded"
        )


def saved_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape, from the safetensors headers (one file, or the shards an index names)."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, AttributeError) as error:
            raise ModelLoadError(f"{index} is not a safetensors index: {error}") from None
    else:
        shards = ["model.safetensors"]
    shapes: dict[str, tuple[int, ...]] = {}
    for shard in shards:
        file = path / shard
        try:
            with safe_open(file, framework="pt") as handle:
                for name in handle.keys():  # noqa: SIM118 (a safe_open handle is not a dict)
                    shapes[name] = tuple(handle.get_slice(name).get_shape())
        except (SafetensorError, OSError) as error:
            raise ModelLoadError(f"{file} is not a readable safetensors file ({error}); it is not loaded") from None
    return shapes


def _names(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
