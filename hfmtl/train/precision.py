"""Which autocast precision a run uses: `auto` resolves to bf16 where the device runs it natively, else fp32.

On the CPU, bf16 is only worth it where oneDNN has bf16 kernels (AVX-512 BF16 or AMX); elsewhere it is
emulated and hundreds of times slower than fp32. fp16 is refused on the CPU for the same reason.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from hfmtl.config.run_config import RunConfig
from hfmtl.errors import ConfigError

PRECISIONS = ("auto", "no", "fp16", "bf16")


def current_device_type() -> str:
    """The device type hfmtl runs on: "cuda" where a GPU is visible, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def has_native_bf16(device_type: str) -> bool:
    """True where bf16 matmuls run at full speed: CUDA with bf16 support, or a CPU with bf16 kernels."""
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_mixed_precision(requested: str, device_type: str) -> str:
    """The precision to train in ("no", "fp16" or "bf16") for `training.mixed_precision` on this device.

    Raises ConfigError for a precision the device cannot run at a useful speed.
    """
    if requested == "auto":
        return "bf16" if has_native_bf16(device_type) else "no"
    if requested == "fp16" and device_type != "cuda":
        raise ConfigError("'training.mixed_precision' is fp16, which is ~19x slower on the CPU; use auto or no")
    if requested == "bf16" and device_type != "cuda" and not has_native_bf16(device_type):
        raise ConfigError("'training.mixed_precision' is bf16, but this CPU has no bf16 support; use no or auto")
    return requested


def pad_multiple(device_type: str, mixed_precision: str) -> int | None:
    """Round padded lengths up to a multiple of 8 only where it pays: tensor cores under CUDA mixed precision.
    On the CPU it only adds padding (a bf16 run of the quickstart mix fell from 0.977 to 0.81 real tokens)."""
    return 8 if device_type == "cuda" and mixed_precision != "no" else None


def with_resolved_precision(config: RunConfig) -> RunConfig:
    """`mixed_precision: auto` made concrete for this machine, so the run config and environment record it."""
    precision = resolve_mixed_precision(config.training.mixed_precision, current_device_type())
    return dataclasses.replace(config, training=dataclasses.replace(config.training, mixed_precision=precision))


def evaluation_precision(trained_in: str | None, device_type: str) -> str:
    """The precision to score a saved model in: the one its run trained (and evaluated during training) in,
    so that `hfmtl evaluate` repeats the scores in its eval_results.json; fp32 where this device cannot run
    that precision at a useful speed, or where the run is unknown."""
    if trained_in is None:
        return "no"
    try:
        return resolve_mixed_precision(trained_in, device_type)
    except ConfigError:
        return "no"


def launcher_precision(device_type: str) -> str | None:
    """The precision `accelerate launch --mixed_precision` (the ACCELERATE_MIXED_PRECISION variable) asks for,
    checked as a config value is; None where it is not set."""
    asked = os.environ.get("ACCELERATE_MIXED_PRECISION", "").strip().lower()
    if not asked:
        return None
    if asked not in ("no", "fp16", "bf16"):
        raise ConfigError(f"ACCELERATE_MIXED_PRECISION is {asked!r}; expected one of: no, fp16, bf16")
    try:
        return resolve_mixed_precision(asked, device_type)
    except ConfigError:
        raise ConfigError(
            f"ACCELERATE_MIXED_PRECISION is {asked}, which this {device_type.upper()} cannot run at a useful speed;"
            " use no"
        ) from None


def accelerator_with_precision(mixed_precision: str, **options: Any) -> Accelerator:
    """`Accelerator(mixed_precision=..., **options)`, also when an earlier Accelerator in this process chose
    another precision.

    accelerate keeps one precision per process: a later Accelerator asking for another one fails with
    "AcceleratorState has already been initialized", and one asking for none silently gets the earlier one.
    So in one notebook or script, a second `train` in fp32 after a bf16 one would crash, and `evaluate` after
    a bf16 `train` would score in bf16. Only that precision state is reset, where it differs; the process
    group (PartialState) is kept, so this is safe under torchrun.
    """
    earlier = AcceleratorState._shared_state.get("_mixed_precision")
    if earlier is not None and earlier != mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(mixed_precision=mixed_precision, **options)
