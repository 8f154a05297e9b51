"""Output folders: nothing a run did not write is removed, one run at a time, logs cut by a kill are read."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hfmtl.config.run_config import load_config
from hfmtl.errors import ConfigError, DataError
from hfmtl.train.records import MetricsLog, read_metrics_log
from hfmtl.train.run_dir import LOCK_FILE, earlier_run_files, locked_output_dir
from hfmtl.train.trainer import train

REPO = Path(__file__).resolve().parent.parent
SHORT = ["training.max_steps=4", "training.warmup_steps=0", "training.eval_every=1000", "training.save_every=1000"]


def tiny(output_dir: Path, *overrides: str):
    return load_config(REPO / "configs" / "tiny.yaml", [f"output_dir={output_dir}", *SHORT, *overrides])


def test_a_fresh_run_never_removes_an_earlier_model_without_overwrite(tmp_path):
    run = tmp_path / "run"
    train(tiny(run))
    kept = run / "model" / "my-notes.txt"
    kept.write_text("mine")
    with pytest.raises(ConfigError, match=r"holds an earlier run \(model\); pass --resume to continue it"):
        train(tiny(run))
    assert kept.read_text() == "mine"
    # --overwrite removes the earlier run's own files only: a file of the user's among them stops it.
    with pytest.raises(ConfigError, match=r"files it did not write among that run's outputs \(model/my-notes\.txt\)"):
        train(tiny(run), overwrite=True)
    assert kept.read_text() == "mine"
    kept.rename(tmp_path / "my-notes.txt")
    train(tiny(run), overwrite=True)  # asked for: the earlier run's files go, a fresh model comes
    assert (run / "model" / "model.safetensors").is_file()


def test_overwrite_checks_the_arguments_before_it_removes_anything(tmp_path):
    run = tmp_path / "run"
    train(tiny(run))
    with pytest.raises(ConfigError, match=r"--stop-at 99 must be after the current step"):
        train(tiny(run), overwrite=True, stop_at_step=99)
    assert (run / "model" / "model.safetensors").is_file()


def test_a_tilde_in_output_dir_is_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    result = train(tiny("~/runs/x"))
    assert result.output_dir == tmp_path / "home" / "runs" / "x" and (result.model_dir / "config.json").is_file()
    assert not (Path.cwd() / "~").exists()  # not a folder named "~" in the working directory


def test_a_run_refused_at_once_leaves_no_empty_folder_behind(tmp_path):
    with pytest.raises(ConfigError, match="--stop-at 99"):
        train(tiny(tmp_path / "new" / "run"), stop_at_step=99)
    assert not (tmp_path / "new" / "run").exists()


def test_a_resume_from_another_folders_checkpoint_gets_a_fresh_runs_check(tmp_path):
    first = tmp_path / "first"
    train(tiny(first, "training.save_every=2"), stop_at_step=2)
    checkpoint = str(first / "checkpoints" / "checkpoint-0000002")
    mine = tmp_path / "mine"
    (mine / "model").mkdir(parents=True)
    (mine / "model" / "my_weights.bin").write_text("precious")
    with pytest.raises(ConfigError, match=r"is not empty and does not hold an earlier hfmtl run \(model\)"):
        train(tiny(mine, "training.save_every=2"), resume=checkpoint)
    assert (mine / "model" / "my_weights.bin").read_text() == "precious"
    other = tmp_path / "other"
    train(tiny(other))
    with pytest.raises(ConfigError, match=r"holds an earlier run \(model\)"):
        train(tiny(other, "training.save_every=2"), resume=checkpoint)
    result = train(tiny(tmp_path / "new", "training.save_every=2"), resume=checkpoint)  # a new folder: fine
    assert result.step == 4


def test_a_folder_with_files_no_run_wrote_is_refused_even_with_overwrite(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    (folder / "run_config.yaml").write_text("looks like a run, but the folder holds more")
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match=r"is not empty and does not hold an earlier hfmtl run \(thesis\.tex\)"):
            earlier_run_files(folder, overwrite=overwrite)
    assert (folder / "thesis.tex").read_text() == "years of work"


def test_an_output_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        train(tiny(tmp_path / "file"))


def test_an_early_killed_run_is_simply_replaced(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("run_config.yaml", "environment.json", "metrics.jsonl"):
        (run / name).write_text("{}")
    (run / "checkpoints" / "checkpoint-0000010.incomplete").mkdir(parents=True)
    assert {p.name for p in earlier_run_files(run, overwrite=False)} == {
        "checkpoints",
        "environment.json",
        "metrics.jsonl",
        "run_config.yaml",
    }


def test_a_live_lock_is_refused_and_a_dead_ones_is_taken_over(tmp_path, caplog):
    holder = subprocess.Popen(  # another run, holding the folder's lock
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "holding"
    with (
        pytest.raises(ConfigError, match=rf"is in use by another run \(pid {holder.pid} on "),
        locked_output_dir(tmp_path),
    ):
        pass
    holder.kill()  # killed: the kernel releases its lock; the file, naming it, stays behind
    holder.wait()
    with locked_output_dir(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert "taking over the lock" in caplog.text
    assert not (tmp_path / LOCK_FILE).exists()  # released at the end


def test_a_lock_file_naming_a_live_pid_but_not_held_is_taken_over(tmp_path):
    # In a restarted container the killed run's pid (often 1) belongs to someone else, even to this process.
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": "now"}))
    with locked_output_dir(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["since"] != "now"


HOLD_LOCK = """
import sys, time
from pathlib import Path
from hfmtl.train.run_dir import locked_output_dir
with locked_output_dir(Path(sys.argv[1])):
    print("holding", flush=True)
    time.sleep(60)
"""


def test_two_runs_into_one_folder_the_second_is_refused(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "hfmtl", "train", "configs/tiny.yaml", f"--set=output_dir={run}"]
    long = "--set=training.max_steps=100000"  # still running when the second starts; killed below
    command += [long, "--set=training.eval_every=100000", "--set=training.save_every=100000"]
    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (run / LOCK_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2
    assert f"hfmtl: error: output_dir '{run}' is in use by another run (pid {first.pid} on" in second.stderr


def test_a_log_line_cut_by_a_kill_is_dropped_and_rewritten_on_resume(tmp_path, caplog):
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 10, "loss": 1.0}\n{"step": 20, "loss": 0.9}\n{"step": 30, "lo')
    assert [r["step"] for r in read_metrics_log(log)] == [10, 20]
    assert "ignoring a partial last line" in caplog.text
    MetricsLog(log, resume_step=20)
    assert log.read_text() == '{"step": 10, "loss": 1.0}\n{"step": 20, "loss": 0.9}\n'


def test_a_damaged_line_inside_the_log_names_file_and_line(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 10}\nnot json\n{"step": 30}\n')
    with pytest.raises(DataError, match=r"metrics\.jsonl:2: not a metrics record"):
        read_metrics_log(log)
