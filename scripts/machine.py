"""Which CPU a benchmark ran on, in words: its model and the instruction sets that decide its bf16 and int8
speed. The machines this project is measured on change between sessions (AVX2 only, AVX-512 with VNNI and
bf16, AMX), so a figure is only comparable to another measured on the same features."""

from __future__ import annotations

import os
from pathlib import Path

# /proc/cpuinfo flag → its usual name; the ones that change int8 (VNNI, AMX-INT8) and bf16 (AVX-512 BF16, AMX)
FEATURES = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX-512 BF16",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
}


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """'AMD EPYC, 2 cores (AVX2, AVX-512, AVX-512 VNNI)', or what can be read where there is no cpuinfo."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return f"unknown CPU, {os.cpu_count()} cores"
    fields = {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in lines if ":" in line)}
    flags = set(fields.get("flags", "").split())
    features = ", ".join(name for flag, name in FEATURES.items() if flag in flags) or "no AVX2"
    return f"{fields.get('model name', 'unknown CPU')}, {os.cpu_count()} cores ({features})"
