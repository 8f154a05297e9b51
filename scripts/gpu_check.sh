#!/usr/bin/env bash
# The GPU check, in one call of under 10 minutes on one CUDA GPU: bf16 training MFU of a BERT-base-size
# encoder built from a config, real tokens/s of the quickstart mix against the Trainer, the inference
# ratio, and tokens/s with and without padding to a multiple of 8 and a token budget per batch (all
# written to benchmarks/gpu.json and .md), then the tests marked `gpu`.
#
#   scripts/gpu_check.sh             # on the GPU machine, from the repository root
#   scripts/gpu_check.sh --dry-run   # anywhere (a CPU too): the same steps at smoke sizes, written to /tmp
#
# It needs the quickstart's data in data_dir (HFMTL_DATA_DIR, default ../shared/data) and hfmtl's
# dependencies installed; nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir=${HFMTL_DATA_DIR:-../shared/data}
if [[ "${1:-}" == "--dry-run" ]]; then
  out=${TMPDIR:-/tmp}/hfmtl-gpu-check
  sizes=(--quick)
  precision=auto
else
  python -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device: use --dry-run")'
  out=benchmarks/gpu
  sizes=()
  precision=bf16
fi
export PYTHONUNBUFFERED=1
python scripts/benchmark.py --data-dir "$data_dir" --precision "$precision" "${sizes[@]}" \
  --parts mfu train inference batch_shape --out "$out"
python -m pytest -q -m gpu tests
