"""int8 for the CPU: dynamic quantization of the Linear layers (weights stored as int8, activations quantized
batch by batch on the fly), for the PyTorch model (at load, in a second) and for an exported ONNX graph."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

from hfmtl.errors import ConfigError

QUANTIZATIONS = ("int8",)


def check_quantization(quantize: str | None) -> None:
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"unknown quantization '{quantize}'; expected one of: {', '.join(QUANTIZATIONS)}")


def quantize_torch(model: nn.Module) -> nn.Module:
    """The model with every nn.Linear as a dynamically quantized int8 Linear (CPU only), in place: one scale
    per output channel (on the quickstart model, a third of a point closer to fp32 than one per matrix), and
    activations in all 8 bits where this CPU multiplies them exactly (`full_range_is_exact`), else in 7."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch.ao.quantization points to torchao; this API still works as documented
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        linear = {nn.Linear: per_channel_dynamic_qconfig}
        mapping = {nn.Linear: FullRangeDynamicLinear if full_range_is_exact() else DynamicLinear}
        return quantize_dynamic(model.float().cpu().eval(), linear, dtype=torch.qint8, mapping=mapping, inplace=True)


class FullRangeDynamicLinear(DynamicLinear):
    """PyTorch's dynamic int8 Linear with its activations in 0..255 instead of 0..127. PyTorch always asks for
    7 bits, which on the quickstart model costs about twice the SST-2 accuracy that 8 bits cost
    (benchmarks/compression-avx512.md, an AVX-512 VNNI CPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = self._packed_params._packed_params
        return torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False).to(x.dtype)


@functools.cache
def full_range_is_exact() -> bool:
    """Whether this CPU's int8 kernels multiply 8-bit activations by int8 weights without saturating.

    x86 kernels without VNNI sum pairs of u8 x s8 products in 16 bits, and 255 x 127 x 2 does not fit: that is
    why PyTorch quantizes activations to 7 bits. VNNI kernels sum in 32 bits. Rather than guess from CPU flags
    (fbgemm picks its kernels itself, and FBGEMM_ENABLE_INSTRUCTIONS overrides them), one product that
    saturates the 16-bit kernels is computed and compared with its exact value, 64."""
    from torch.ao.quantization import per_channel_dynamic_qconfig

    probe = nn.Linear(64, 8, bias=False)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # quantized tensor creation is marked deprecated
        probe.weight.fill_(1.0)  # quantized to 127 in every channel
        probe.qconfig = per_channel_dynamic_qconfig
        quantized = FullRangeDynamicLinear.from_float(probe)
        product = quantized(torch.ones(1, 64))  # activations quantized to 255: the dynamic range is [0, 1]
    return bool(torch.allclose(product, torch.full_like(product, 64.0), rtol=0.01))


def quantize_onnx(source: Path, target: Path) -> None:
    """onnxruntime's dynamic quantization of a graph's MatMul/Gemm weights to int8.

    Per output channel (one scale per row, not per matrix), and with 7-bit weights (`reduce_range`): x86 CPUs
    without VNNI multiply u8 x s8 with an instruction that saturates 16-bit sums, which full-range weights
    overflow (onnxruntime's own advice). Measured on the quickstart model on an AVX2 CPU, the largest logit
    error fell from 18 % to 1.7 % (sentiment) and from 8 % to 1.1 % (intensity) of the largest logit.
    """
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()  # onnxruntime logs a pre-processing hint on the root logger: hide it, then restore
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    finally:
        root.setLevel(level)
