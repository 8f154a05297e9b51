"""Kill anywhere, resume exactly: `hfmtl train` is SIGKILLed several times, twice while a checkpoint is
being written, resumed each time, and must end with the weights and task sequence of an uninterrupted run."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parent.parent
STEPS = 300
SETTINGS = [f"training.max_steps={STEPS}", "training.save_every=10", "training.keep_last=2", "training.log_every=10"]
SETTINGS += [f"training.eval_every={STEPS}", "training.warmup_steps=10"]


def command(output_dir: Path, resume: bool) -> list[str]:
    args = [sys.executable, "-m", "hfmtl", "train", "configs/tiny.yaml", f"--set=output_dir={output_dir}"]
    return args + [f"--set={s}" for s in SETTINGS] + (["--resume"] if resume else [])


def listing(folder: Path) -> list[str]:
    """The names in `folder`; empty while it does not exist (a fresh run removes and recreates it)."""
    try:
        return sorted(os.listdir(folder))
    except FileNotFoundError:
        return []


def complete_checkpoints(output_dir: Path) -> list[str]:
    return [name for name in listing(output_dir / "checkpoints") if not name.endswith(".incomplete")]


def kill_when(process: subprocess.Popen, output_dir: Path, moment: str, rng: random.Random) -> str | None:
    """SIGKILL the run at `moment`: while a checkpoint folder is half-written, or a random few milliseconds
    after a new checkpoint appears. Returns what was killed ("writing" only when a half-written checkpoint
    folder is left behind), or None if the run finished first."""
    seen = len(complete_checkpoints(output_dir))
    target = seen + rng.randint(1, 3)
    while process.poll() is None:
        folder = output_dir / "checkpoints"
        writing = any(name.endswith(".incomplete") for name in listing(folder))
        if moment == "writing" and writing and len(complete_checkpoints(output_dir)) >= target - 1:
            process.send_signal(signal.SIGKILL)
            process.wait()
            left_behind = any(name.endswith(".incomplete") for name in listing(folder))
            return "writing" if left_behind else "just after writing"
        if moment == "random" and len(complete_checkpoints(output_dir)) >= target:
            time.sleep(rng.uniform(0, 0.05))
            process.send_signal(signal.SIGKILL)
            process.wait()
            return "random"
        time.sleep(0.0005)
    return None


def task_sequence(output_dir: Path) -> list[str]:
    lines = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    return [task for line in lines if "tasks" in line for task in line["tasks"]]


@pytest.mark.slow
def test_killed_anywhere_and_resumed_equals_uninterrupted(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = {"cwd": REPO, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert subprocess.run(command(straight, resume=False), **run, check=False).returncode == 0

    rng = random.Random(8)
    kills = []
    for moment in ("writing", "random", "writing", "random", "writing"):
        process = subprocess.Popen(command(killed, resume=bool(complete_checkpoints(killed))), **run)
        killed_at = kill_when(process, killed, moment, rng)
        if killed_at:
            kills.append(killed_at)
    final = subprocess.run(command(killed, resume=bool(complete_checkpoints(killed))), **run, check=False)
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    assert kills.count("writing") >= 1 and len(kills) >= 3, kills  # mid-run, and mid-write at least once

    last = f"checkpoints/checkpoint-{STEPS:07d}/model.safetensors"
    a, b = load_file(straight / last), load_file(killed / last)
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    assert task_sequence(killed) == task_sequence(straight) and len(task_sequence(straight)) == STEPS
