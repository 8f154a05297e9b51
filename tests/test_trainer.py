import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_two_processes
from safetensors.torch import load_file

from hfmtl.cli import main
from hfmtl.config.run_config import load_config
from hfmtl.errors import ConfigError
from hfmtl.model.encoder import build_model
from hfmtl.model.modeling import MultiTaskModel
from hfmtl.train.optimization import build_optimizer
from hfmtl.train.step import NonFiniteLossError
from hfmtl.train.trainer import train

REPO = Path(__file__).resolve().parent.parent
SHORT = ["training.max_steps=40", "training.eval_every=20", "training.save_every=20", "training.log_every=5"]


def tiny(tmp_path: Path, *overrides: str):
    return load_config(REPO / "configs" / "tiny.yaml", [f"output_dir={tmp_path / 'run'}", *overrides])


def task_sequence(output_dir: Path) -> list[str]:
    lines = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    return [task for line in lines if "tasks" in line for task in line["tasks"]]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One full `hfmtl train` of the tiny config through the CLI."""
    output_dir = tmp_path_factory.mktemp("smoke") / "run"
    assert main(["train", "configs/tiny.yaml", "--set", f"output_dir={output_dir}"]) == 0
    return output_dir


def test_smoke_run_writes_the_expected_files(smoke_run):
    for name in ("run_config.yaml", "environment.json", "metrics.jsonl"):
        assert (smoke_run / name).is_file(), name
    model_files = {p.name for p in (smoke_run / "model").iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "eval_results.json",
        "run_config.yaml",
    } <= model_files
    checkpoints = sorted(p.name for p in (smoke_run / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint-0000060", "checkpoint-0000120"]
    assert {"model.safetensors", "optimizer.bin", "scheduler.bin", "trainer_state.json"} <= {
        p.name for p in (smoke_run / "checkpoints" / "checkpoint-0000120").iterdir()
    }
    environment = json.loads((smoke_run / "environment.json").read_text())
    assert environment["seed"] == 0 and environment["torch"] == torch.__version__


def test_smoke_run_loss_falls_and_metrics_rise(smoke_run):
    lines = [json.loads(line) for line in (smoke_run / "metrics.jsonl").read_text().splitlines()]
    assert len([line for line in lines if "loss" in line]) == 12  # every 10 steps
    for task in ("ner", "intensity"):  # the tasks a toy encoder learns within 120 steps
        losses = [line[f"loss/{task}"] for line in lines if line.get(f"loss/{task}") is not None]
        assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, task
    evaluations = [line for line in lines if "eval" in line]
    assert [line["step"] for line in evaluations] == [60, 120]
    best = json.loads((smoke_run / "model" / "eval_results.json").read_text())
    assert best["aggregate"] == max(line["aggregate"] for line in evaluations)
    assert best["metrics"]["ner"]["f1"] > 0.5 and best["metrics"]["intensity"]["pearson"] > 0.5


def test_the_saved_model_loads_and_answers_every_task(smoke_run):
    model = MultiTaskModel.from_pretrained(smoke_run / "model").eval()
    assert model.task_names == ["sentiment", "ner", "intensity", "emotions", "similarity"]
    ids = torch.tensor([[2, 40, 41, 3]])
    outputs = model.forward_all(ids, torch.ones_like(ids))
    ner_labels = model.config.task_specs[1].labels
    assert ner_labels[0] == "O" and len(ner_labels) == 8  # inferred from the tiny data (no I-MISC there)
    assert outputs["ner"].shape == (1, 4, 8)
    assert outputs["sentiment"].shape == (1, 2) and outputs["intensity"].shape == (1,)
    assert outputs["emotions"].shape == (1, 4)
    thresholds = model.config.task_specs[3].thresholds  # tuned on validation (`threshold: tuned`) and kept
    assert len(thresholds) == 4 and all(0 < t < 1 for t in thresholds)


def test_a_step_on_one_task_leaves_the_other_heads_bit_identical(tiny_config):
    torch.manual_seed(0)
    model = build_model(
        tiny_config,
        {
            "sentiment": ("n", "p"),
            "ner": ("O", "B-PER", "I-PER"),
            "intensity": None,
            "emotions": ("anger", "joy"),
            "similarity": None,
        },
    )
    optimizer = build_optimizer(model, tiny_config.training)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    ids = torch.tensor([[2, 40, 41, 3], [2, 42, 3, 0]])
    loss = model("sentiment", ids, (ids != 0).long(), labels=torch.tensor([1, 0])).loss
    loss.backward()
    optimizer.step()
    after = model.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert any(name.startswith("heads.sentiment.") for name in changed)
    assert any(name.startswith("encoder.") for name in changed)
    assert not any(name.startswith(("heads.ner.", "heads.intensity.")) for name in changed)


def test_resume_in_a_fresh_process_is_bit_identical(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    command = [sys.executable, "-m", "hfmtl", "train", "configs/tiny.yaml", *(f"--set={o}" for o in SHORT)]
    run = {"check": True, "capture_output": True, "cwd": REPO}
    subprocess.run([*command, f"--set=output_dir={straight}"], **run)
    subprocess.run([*command, f"--set=output_dir={split}", "--stop-at", "20"], **run)
    assert sorted(p.name for p in (split / "checkpoints").iterdir()) == ["checkpoint-0000020"]
    # Evaluating more often after the resume must not change what is learned.
    subprocess.run([*command, f"--set=output_dir={split}", "--set=training.eval_every=5", "--resume"], **run)
    final = "checkpoints/checkpoint-0000040/model.safetensors"
    a, b = load_file(straight / final), load_file(split / final)
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    assert task_sequence(straight) == task_sequence(split)
    assert len(task_sequence(split)) == 40


def test_resume_refuses_a_different_config(tmp_path):
    train(tiny(tmp_path, *SHORT), stop_at_step=20)
    changed = tiny(tmp_path, *SHORT, "training.learning_rate=0.01", "tasks.ner.loss_weight=2")
    with pytest.raises(ConfigError, match=r"this run differs from it: tasks\.ner\.loss_weight: 1\.0 -> 2\.0; "):
        train(changed, resume="latest")


def test_resume_refuses_training_data_changed_since_the_checkpoint(tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(REPO / "tests" / "assets" / "tiny" / "data", data)
    train(tiny(tmp_path, *SHORT, f"data_dir={data}"), stop_at_step=20)
    train_file = data / "sst_train.jsonl"
    lines = train_file.read_text().splitlines()
    train_file.write_text("\n".join(lines[1:] + lines[:1]) + "\n")  # the same rows, in another order
    with pytest.raises(ConfigError, match=r"the training data of task 'sentiment' changed since the checkpoint"):
        train(tiny(tmp_path, *SHORT, f"data_dir={data}"), resume="latest")


def test_a_checkpoint_from_before_a_config_key_existed_resumes_when_the_key_is_at_its_default(tiny_config):
    import dataclasses

    from hfmtl.config.run_config import config_to_dict
    from hfmtl.train.checkpoint import config_differences

    current = config_to_dict(tiny_config)
    older = config_to_dict(tiny_config)  # as an hfmtl without these two keys wrote it
    del older["training"]["layer_lr_decay"]
    del next(task for task in older["tasks"] if task["name"] == "ner")["head_lr_multiplier"]
    assert config_differences(older, current) == []
    decayed = config_to_dict(
        dataclasses.replace(tiny_config, training=dataclasses.replace(tiny_config.training, layer_lr_decay=0.9))
    )
    assert config_differences(older, decayed) == ["training.layer_lr_decay: 1.0 -> 0.9"]
    older["training"]["no_longer_a_key"] = 3  # what today's config cannot read is compared as written
    assert "training.no_longer_a_key: 3 -> None" in config_differences(older, current)


def test_a_fresh_run_will_not_silently_reuse_an_output_dir_with_checkpoints(tmp_path):
    train(tiny(tmp_path, *SHORT), stop_at_step=20)
    with pytest.raises(ConfigError, match="already holds checkpoints of an earlier run; pass --resume"):
        train(tiny(tmp_path, *SHORT))
    with pytest.raises(ConfigError, match="--resume: checkpoint 'nowhere' does not exist"):
        train(tiny(tmp_path, *SHORT), resume="nowhere")
    train(tiny(tmp_path, *SHORT), overwrite=True, stop_at_step=5)  # --overwrite: nothing of the old run stays
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["checkpoint-0000005"]
    assert not (tmp_path / "run" / "model").exists()


def test_resume_refuses_another_process_count_or_task_order(tmp_path):
    train(tiny(tmp_path, *SHORT), stop_at_step=20)
    state_file = tmp_path / "run" / "checkpoints" / "checkpoint-0000020" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps({**state, "num_processes": 2, "task_order": ["ner", "sentiment", "intensity"]}))
    from hfmtl.train.checkpoint import MANIFEST, file_digests  # re-sign the edit, or it reads as damage

    folder = state_file.parent
    (folder / MANIFEST).write_text(json.dumps({"step": 20, "files": file_digests(folder)}))
    with pytest.raises(
        ConfigError, match=r"task_order: \['ner', 'sentiment', 'intensity'\] -> .*num_processes: 2 -> 1"
    ):
        train(tiny(tmp_path, *SHORT), resume="latest")


@pytest.mark.parametrize(
    ("overrides", "stop_at", "message"),
    [
        (
            ["encoder.max_length=512"],
            None,
            r"'encoder.max_length' is 512, but 'tests/assets/tiny/encoder' takes at most 128",
        ),
        ([], 0, r"--stop-at 0 must be after the current step \(0\) and at most training.max_steps \(40\)"),
        ([], 41, r"--stop-at 41 must be after"),
    ],
)
def test_impossible_settings_are_refused_before_training(tmp_path, overrides, stop_at, message):
    with pytest.raises(ConfigError, match=message):
        train(tiny(tmp_path, *SHORT, *overrides), stop_at_step=stop_at)


def test_tensorboard_logs_every_number(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed")
    train(
        tiny(tmp_path, *SHORT, "training.max_steps=10", "training.eval_every=10", "training.report_to=[tensorboard]")
    )
    event_files = list((tmp_path / "run" / "logs").rglob("events.out.tfevents.*"))
    assert event_files and sum(f.stat().st_size for f in event_files) > 1000


def overflowing_intensity(tmp_path: Path) -> Path:
    """Tiny data whose intensity targets are finite but overflow float32 once squared in the loss."""
    data = tmp_path / "data"
    data.mkdir()
    for name in os.listdir(REPO / "tests/assets/tiny/data"):
        (data / name).write_bytes((REPO / "tests/assets/tiny/data" / name).read_bytes())
    rows = [json.loads(line) for line in (data / "sst_train.jsonl").read_text().splitlines()]
    huge = "".join(json.dumps({**row, "intensity": 1e30}) + "\n" for row in rows)
    (data / "huge.jsonl").write_text(huge)
    return data


def test_a_non_finite_loss_stops_the_run_naming_task_and_step(tmp_path):
    data = overflowing_intensity(tmp_path)
    config = tiny(tmp_path, *SHORT, f"data_dir={data}", "tasks.intensity.data.train=huge.jsonl")
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss on task 'intensity' at step \d+; stopped before"):
        train(config)
    assert not (tmp_path / "run" / "checkpoints").exists() or not any((tmp_path / "run" / "checkpoints").iterdir())


def test_non_finite_batches_can_be_skipped(tmp_path):
    data = overflowing_intensity(tmp_path)
    config = tiny(
        tmp_path,
        *SHORT,
        f"data_dir={data}",
        "tasks.intensity.data.train=huge.jsonl",
        "training.on_nonfinite_loss=skip",
    )
    result = train(config)
    assert result.step == 40 and "intensity" in result.tasks
    # Every intensity batch overflows: its updates are dropped on the device, so the intensity head (trained by
    # nothing else) ends bit-identical to its initialisation: no AdamW step, no weight decay.
    from accelerate.utils import set_seed

    from hfmtl.data.loading import load_all_tasks

    set_seed(config.seed)
    initial = build_model(config, {name: d.labels for name, d in load_all_tasks(config).items()})
    trained = result.model.heads["intensity"].state_dict()
    for name, before in initial.heads["intensity"].state_dict().items():
        assert torch.equal(before, trained[name]), name
    assert not torch.equal(initial.heads["ner"].out.weight, result.model.heads["ner"].out.weight)
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    losses = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert not any("loss/intensity" in line for line in losses)  # skipped batches are not logged as losses
    # The schedule counts applied updates only: 40 steps with n skipped end where 40 - n updates do.
    from hfmtl.train.optimization import build_scheduler

    applied = 40 - result.tasks.count("intensity")
    parameter = torch.nn.Parameter(torch.zeros(1))
    reference = torch.optim.SGD([parameter], lr=config.training.learning_rate)
    schedule = build_scheduler(reference, config.training)
    for _ in range(applied):
        reference.step()
        schedule.step()
    assert applied < 40 and [line for line in losses if "learning_rate" in line][-1]["learning_rate"] == pytest.approx(
        schedule.get_last_lr()[0]
    )


def test_fp16_on_the_cpu_is_refused(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("fp16 is allowed on a GPU")
    with pytest.raises(ConfigError, match="fp16, which is ~19x slower on the CPU"):
        train(tiny(tmp_path, "training.mixed_precision=fp16"))


@pytest.mark.slow
def test_two_processes_train_in_lockstep(tmp_path):
    run_two_processes("tests/ddp_train.py", str(tmp_path))
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["world"] == "2"
    assert rank0["weights"] == rank1["weights"]
    assert rank0["tasks"] == rank1["tasks"] and len(rank0["tasks"]) == 60  # 30 steps x 2 micro-batches
    assert (tmp_path / "model" / "model.safetensors").is_file()


def test_gradient_accumulation_draws_several_batches_per_step(tmp_path):
    result = train(tiny(tmp_path, *SHORT, "training.max_steps=10", "training.gradient_accumulation_steps=3"))
    assert result.step == 10 and len(result.tasks) == 30
    assert len(task_sequence(tmp_path / "run")) == 30


def test_a_token_budget_reaches_the_loader_and_trains(tmp_path, monkeypatch):
    from hfmtl.data import sampling

    rows_per_batch = []
    original = sampling.MultiTaskLoader.next_batch

    def counted(self):
        task, batch = original(self)
        rows_per_batch.append(batch["input_ids"].shape[0])
        return task, batch

    monkeypatch.setattr(sampling.MultiTaskLoader, "next_batch", counted)
    result = train(tiny(tmp_path, *SHORT, "training.max_steps=12", "training.max_tokens_per_batch=100000"))
    assert result.step == 12 and max(rows_per_batch) > 16  # the tiny config's batch_size is 16


def test_early_stopping_after_evaluations_without_improvement(tmp_path):
    # A learning rate this small leaves every metric unchanged, so no evaluation improves on the baseline.
    config = tiny(
        tmp_path,
        *SHORT,
        "training.learning_rate=1e-12",
        "training.eval_every=5",
        "training.eval_at_start=true",
        "training.early_stopping_patience=2",
    )
    result = train(config)
    assert result.stopped_early and result.step == 10
    assert result.best_step == 0  # the untrained baseline stays the best, and is what model/ holds
    evaluations = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in evaluations if "eval" in line] == [0, 5, 10]
    assert json.loads((result.model_dir / "eval_results.json").read_text())["step"] == 0


def test_only_the_newest_checkpoints_are_kept_and_half_written_ones_are_ignored(tmp_path):
    train(tiny(tmp_path, *SHORT, "training.save_every=10", "training.keep_last=2"), stop_at_step=30)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-0000020", "checkpoint-0000030"]
    # A kill while writing step 40 leaves this behind; resume must take step 30, the newest complete one.
    (checkpoints / "checkpoint-0000040.incomplete").mkdir()
    (checkpoints / "checkpoint-0000040.incomplete" / "model.safetensors").write_bytes(b"cut")
    result = train(tiny(tmp_path, *SHORT, "training.save_every=10", "training.keep_last=2"), resume="latest")
    assert result.step == 40 and len(result.tasks) == 10


def test_retention_keeps_the_checkpoint_just_written_over_damaged_or_abandoned_ones(tmp_path):
    settings = [*SHORT, "training.save_every=10", "training.keep_last=2"]
    train(tiny(tmp_path, *settings), stop_at_step=20)
    checkpoints = tmp_path / "run" / "checkpoints"
    damaged = checkpoints / "checkpoint-0000020" / "optimizer.bin"
    damaged.write_bytes(damaged.read_bytes()[:100])
    train(tiny(tmp_path, *settings), resume="latest", stop_at_step=15)  # falls back to step 10
    # The damaged step 20 can never be resumed: kept, it would count as the newest and push out step 15.
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-0000010", "checkpoint-0000015"]
    train(tiny(tmp_path, *settings), stop_at_step=25, resume="latest")
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-0000020", "checkpoint-0000025"]
    train(tiny(tmp_path, *settings), resume=str(checkpoints / "checkpoint-0000020"), stop_at_step=22)
    # Resumed from an earlier checkpoint, the run goes on from there: step 25's continuation is abandoned.
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-0000020", "checkpoint-0000022"]


def test_a_tracker_that_is_not_installed_is_named(tmp_path, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "wandb" else real_find_spec(name))
    with pytest.raises(ConfigError, match=r"'training.report_to' lists wandb, which is not installed"):
        train(tiny(tmp_path, "training.report_to=[wandb]"))


def test_a_damaged_checkpoint_is_detected_and_resume_falls_back_to_an_intact_one(tmp_path, caplog):
    config = tiny(tmp_path, *SHORT, "training.save_every=10", "training.keep_last=3")
    train(config, stop_at_step=30)
    checkpoints = tmp_path / "run" / "checkpoints"
    manifest = json.loads((checkpoints / "checkpoint-0000030" / "manifest.json").read_text())
    assert manifest["step"] == 30 and {"model.safetensors", "optimizer.bin", "trainer_state.json"} <= set(
        manifest["files"]
    )
    damaged = checkpoints / "checkpoint-0000030" / "optimizer.bin"
    damaged.write_bytes(damaged.read_bytes()[:100])  # a disk that filled up, a copy cut short
    with pytest.raises(
        ConfigError, match=r"checkpoint-0000030' is damaged: optimizer.bin has 100 bytes, the manifest"
    ):
        train(config, resume=str(checkpoints / "checkpoint-0000030"))
    with caplog.at_level("WARNING"):
        result = train(config, resume="latest")
    assert "skipping damaged checkpoint" in caplog.text and "checkpoint-0000030" in caplog.text
    assert result.step == 40 and len(result.tasks) == 20  # resumed from step 20, the newest intact one


def test_a_non_finite_loss_after_a_checkpoint_leaves_that_checkpoint_intact(tmp_path):
    from hfmtl.train.checkpoint import checkpoint_problem, find_latest_checkpoint

    data = overflowing_intensity(tmp_path)
    config = tiny(
        tmp_path,
        *SHORT,
        f"data_dir={data}",
        "tasks.intensity.data.train=huge.jsonl",
        "training.save_every=1",
        "sampling.strategy=fixed",
        # the overflowing task comes a few steps in
        "sampling.weights={sentiment: 1, ner: 1, intensity: 0.1, emotions: 0, similarity: 0}",
    )
    with pytest.raises(
        NonFiniteLossError,
        match=r"at step (\d+); stopped before the optimizer used it, the last checkpoint .* is intact",
    ):
        train(config)
    latest = find_latest_checkpoint(tmp_path / "run")
    assert latest is not None and checkpoint_problem(latest) is None
    weights = load_file(latest / "model.safetensors")
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())


def test_a_non_finite_step_is_reported_with_its_own_number_at_the_next_log_step(tmp_path):
    data = overflowing_intensity(tmp_path)
    common = [*SHORT, f"data_dir={data}", "tasks.intensity.data.train=huge.jsonl", "training.eval_every=1000"]
    skipped = tiny(
        tmp_path,
        *common,
        "training.on_nonfinite_loss=skip",
        "training.log_every=1",
        "output_dir=" + str(tmp_path / "skip"),
    )
    train(skipped)
    records = [json.loads(line) for line in (tmp_path / "skip" / "metrics.jsonl").read_text().splitlines()]
    first_bad = next(r["step"] for r in records if "tasks" in r and not r["tasks"])  # a skipped step logs no task
    with pytest.raises(NonFiniteLossError, match=rf"non-finite loss on task 'intensity' at step {first_bad};"):
        train(tiny(tmp_path, *common, "training.log_every=7"))


def test_auto_precision_is_resolved_and_recorded(tmp_path, monkeypatch):
    import yaml

    from hfmtl.train import precision

    expected = precision.resolve_mixed_precision("auto", "cuda" if torch.cuda.is_available() else "cpu")
    train(tiny(tmp_path, *SHORT, "training.max_steps=2", "training.warmup_steps=0", "training.eval_every=1000"))
    run_config = yaml.safe_load((tmp_path / "run" / "run_config.yaml").read_text())
    environment = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert run_config["training"]["mixed_precision"] == environment["mixed_precision"] == expected
    monkeypatch.setattr(precision, "has_native_bf16", lambda device_type: True)
    assert precision.resolve_mixed_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(precision, "has_native_bf16", lambda device_type: False)
    assert precision.resolve_mixed_precision("auto", "cpu") == "no"
    with pytest.raises(ConfigError, match="this CPU has no bf16 support"):
        precision.resolve_mixed_precision("bf16", "cpu")
    assert precision.pad_multiple("cpu", "bf16") is None and precision.pad_multiple("cuda", "bf16") == 8


def test_runs_in_one_process_may_use_different_precisions():
    # accelerate keeps one precision per process: a notebook that trains in bf16 and then in fp32 got
    # "AcceleratorState has already been initialized" from deep inside accelerate.
    from hfmtl.train.precision import accelerator_with_precision

    assert accelerator_with_precision("bf16", cpu=True).mixed_precision == "bf16"
    assert accelerator_with_precision("no", cpu=True).mixed_precision == "no"
    assert accelerator_with_precision("no", cpu=True).mixed_precision == "no"
    assert accelerator_with_precision("bf16", cpu=True).mixed_precision == "bf16"


def test_training_time_in_the_log_leaves_evaluation_out(tmp_path, monkeypatch):
    import time

    from hfmtl.train import selection as model_selection

    def slow_evaluation(*args, **kwargs):
        time.sleep(1.0)
        return evaluate_tasks(*args, **kwargs)

    evaluate_tasks = model_selection.evaluate_tasks
    monkeypatch.setattr(model_selection, "evaluate_tasks", slow_evaluation)
    start = time.perf_counter()
    train(tiny(tmp_path, *SHORT, "training.eval_at_start=true"))  # evaluations at steps 0, 20, 40
    wall = time.perf_counter() - start
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    seconds = [r["train_seconds"] for r in records if "eval" in r]
    assert len(seconds) == 3 and seconds[0] < 0.5 and seconds == sorted(seconds)
    assert seconds[-1] < wall - 3.0
    # Logging steps carry the same clock, so a window's seconds are the difference of two of them.
    by_step = {r["step"]: r["train_seconds"] for r in records if "loss" in r}
    assert by_step[40] == pytest.approx(seconds[-1], abs=0.05) and list(by_step.values()) == sorted(by_step.values())


def test_metric_for_best_model_picks_the_best_evaluation_by_that_metric(tmp_path):
    config = tiny(tmp_path, *SHORT, "training.metric_for_best_model=ner.recall", "training.eval_every=10")
    result = train(config)
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    recalls = {line["step"]: line["eval"]["ner"]["recall"] for line in log if "eval" in line}
    best = json.loads((result.model_dir / "eval_results.json").read_text())
    assert best["selected_by"] == {"metric": "ner.recall", "value": max(recalls.values())}
    assert best["step"] == min(step for step, value in recalls.items() if value == max(recalls.values()))


def test_metric_for_best_model_must_name_a_task_and_one_of_its_metrics(tmp_path):
    with pytest.raises(ConfigError, match=r"'training\.metric_for_best_model' is 'pos\.f1'; expected 'mean', a task"):
        tiny(tmp_path, "training.metric_for_best_model=pos.f1")
    with pytest.raises(
        ConfigError, match=r"names 'fscore' of task 'ner', which is not one of its metrics \(precision"
    ):
        train(tiny(tmp_path, *SHORT, "training.metric_for_best_model=ner.fscore"))


def test_an_altered_manifest_or_a_run_folder_given_to_resume_are_named(tmp_path):
    from hfmtl.train.checkpoint import checkpoint_problem, resolve_resume

    for text in ("{}", "null", '{"files": {"model.safetensors": 12}}'):
        (tmp_path / "checkpoint-0000010").mkdir(exist_ok=True)
        (tmp_path / "checkpoint-0000010" / "manifest.json").write_text(text)
        assert "does not list the files with their sizes and sha256" in checkpoint_problem(
            tmp_path / "checkpoint-0000010"
        )
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"is a run's folder, not one of its checkpoints; give a folder under"):
        resolve_resume(tmp_path / "elsewhere", str(tmp_path / "run"), overwrite=False)
