"""The model folder a run produces: weights, config, tokenizer, its validation metrics and the resolved run
config. It is written beside the old one and swapped in, so a crash never leaves a half-written model."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from hfmtl.atomic import write_json_atomic
from hfmtl.config import RunConfig, save_config
from hfmtl.modeling import MultiTaskModel

METRICS_FILE = "eval_results.json"
RUN_CONFIG_FILE = "run_config.yaml"


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
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    fresh.rename(path)
    shutil.rmtree(old, ignore_errors=True)
