"""Training on a CUDA device in bf16 and fp16, and resuming there. Skipped without a GPU; run by
scripts/gpu_check.sh. On a GPU, embedding backward adds in a nondeterministic order, so a resumed run is
compared with a tolerance instead of bit for bit (the CPU test in test_trainer.py is bit-identical)."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hfmtl.config.run_config import load_config
from hfmtl.train.trainer import train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
REPO = Path(__file__).resolve().parent.parent
SHORT = ["training.max_steps=40", "training.eval_every=20", "training.save_every=20", "training.log_every=5"]


def tiny(output_dir: Path, *overrides: str):
    return load_config(REPO / "configs" / "tiny.yaml", [f"output_dir={output_dir}", *SHORT, *overrides])


def log(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_on_the_gpu_with_finite_losses(tmp_path, precision):
    result = train(tiny(tmp_path / "run", f"training.mixed_precision={precision}"))
    environment = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert environment["mixed_precision"] == precision and environment["device"].startswith("cuda")
    losses = [value for line in log(tmp_path / "run") for key, value in line.items() if key.startswith("loss/")]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    evaluations = [line["eval"] for line in log(tmp_path / "run") if "eval" in line]
    assert len(evaluations) == 2


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_resumed_gpu_run_ends_where_an_uninterrupted_one_does(tmp_path, precision):
    config = [f"training.mixed_precision={precision}"]
    train(tiny(tmp_path / "straight", *config))
    train(tiny(tmp_path / "split", *config), stop_at_step=20)
    train(tiny(tmp_path / "split", *config), resume="latest")
    final = "checkpoints/checkpoint-0000040/model.safetensors"
    a, b = load_file(tmp_path / "straight" / final), load_file(tmp_path / "split" / final)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name].float(), b[name].float(), atol=1e-3, rtol=1e-3), name
    tasks = [line["tasks"] for line in log(tmp_path / "straight") if "tasks" in line]
    assert tasks == [line["tasks"] for line in log(tmp_path / "split") if "tasks" in line]
