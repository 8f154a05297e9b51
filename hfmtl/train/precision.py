"""Which autocast precision a run uses: `auto` resolves to bf16 where the device runs it natively, else fp32.

On the CPU, bf16 is only worth it where oneDNN has bf16 kernels (AVX-512 BF16 or AMX); elsewhere it is
emulated and hundreds of times slower than fp32. fp16 is refused on the CPU for the same reason.
"""

from __future__ import annotations

import dataclasses

import torch

from hfmtl.config.run_config import RunConfig
from hfmtl.errors import ConfigError

PRECISIONS = ("auto", "no", "fp16", "bf16")


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
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    precision = resolve_mixed_precision(config.training.mixed_precision, device_type)
    return dataclasses.replace(config, training=dataclasses.replace(config.training, mixed_precision=precision))
