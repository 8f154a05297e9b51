"""An exported ONNX folder run by onnxruntime, behind the same small interface the pipeline uses from a
`MultiTaskModel`, so `MultiTaskPipeline.from_pretrained(DIR, backend="onnxruntime")` answers the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from hfmtl.deploy.onnx_export import ONNX_FILE, TASKS_FILE, read_tasks_file, require_onnx
from hfmtl.errors import ModelLoadError
from hfmtl.model.folder import RUN_CONFIG_FILE
from hfmtl.model.modeling import MultiTaskConfig, register_auto_classes


class OnnxMultiTaskModel:
    """`logits(tasks, input_ids, attention_mask, token_type_ids=None)` → task → logits (CPU torch tensors), read
    from one run of the exported graph; `config` is the model's MultiTaskConfig (task specs, labels)."""

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        require_onnx()
        import onnxruntime

        path = Path(path)
        if not (path / ONNX_FILE).is_file() or not (path / TASKS_FILE).is_file():
            raise ModelLoadError(
                f"'{path}' is not an ONNX export (no {ONNX_FILE} and {TASKS_FILE}); make one with "
                f"hfmtl export MODEL_DIR --format onnx --out {path}"
            )
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"the ONNX export '{path}' has no config.json (its task specs); export it again")
        register_auto_classes()
        self.path = path
        self.config = MultiTaskConfig.from_pretrained(path)
        try:
            self.input_names = list(read_tasks_file(path)["inputs"])
        except (ValueError, KeyError, TypeError) as error:  # JSONDecodeError is a ValueError
            raise ModelLoadError(f"{path / TASKS_FILE} is damaged ({type(error).__name__}); export again") from None
        self.max_positions = int(self.config.encoder.get("max_position_embeddings", 512))
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(
                str(path / ONNX_FILE), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # noqa: BLE001 (onnxruntime raises its own exception types for a bad graph)
            first_line = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            raise ModelLoadError(
                f"{path / ONNX_FILE} cannot be loaded by onnxruntime ({type(error).__name__}: {first_line}); the "
                "file is damaged or cut short: export again"
            ) from None

    def logits(self, tasks: list[str], **batch: torch.Tensor) -> dict[str, torch.Tensor]:
        feeds = {name: batch[name].cpu().numpy().astype(np.int64) for name in self.input_names if name in batch}
        if "token_type_ids" in self.input_names and "token_type_ids" not in feeds:
            feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])  # a single text: every token is type 0
        outputs = self.session.run(tasks, feeds)
        return {task: torch.from_numpy(values) for task, values in zip(tasks, outputs, strict=True)}


def load_onnx_dir(path: str | Path) -> tuple[OnnxMultiTaskModel, PreTrainedTokenizerBase, Any]:
    """The exported model, its tokenizer and its run config (None if the export has none)."""
    from hfmtl.config.run_config import load_config

    model = OnnxMultiTaskModel(path)
    tokenizer = AutoTokenizer.from_pretrained(model.path)
    run_config = load_config(model.path / RUN_CONFIG_FILE) if (model.path / RUN_CONFIG_FILE).is_file() else None
    return model, tokenizer, run_config
