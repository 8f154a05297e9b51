"""Distillation: each head's soft loss by hand, the alpha mix, a smaller student that trains and resumes
bit-identically, and the teachers it refuses."""

import math
import shutil

import pytest
import torch
from safetensors.torch import load_file
from test_trainer import REPO

from hfmtl.cli import main
from hfmtl.config.run_config import load_config
from hfmtl.errors import ConfigError
from hfmtl.model.heads import HEAD_TYPES
from hfmtl.model.modeling import MultiTaskModel
from hfmtl.train.trainer import train


def head(kind):
    return HEAD_TYPES[kind](8, 2, "mean", 0.0)


def test_classification_soft_loss_by_hand():
    # Teacher logits (ln 3, 0) at T=2: p = (sqrt 3, 1) / (sqrt 3 + 1); the student's (0, 0) gives (1/2, 1/2).
    p = [math.sqrt(3) / (math.sqrt(3) + 1), 1 / (math.sqrt(3) + 1)]
    expected = 4 * sum(pi * math.log(pi / 0.5) for pi in p)  # T^2 * KL(teacher || student)
    student, teacher = torch.zeros(1, 2), torch.tensor([[math.log(3), 0.0]])
    loss = head("classification").soft_loss(student, teacher, torch.tensor([0]), temperature=2.0)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(head("classification").soft_loss(teacher, teacher, torch.tensor([0]), 2.0)) == pytest.approx(0)


def test_regression_soft_loss_is_the_distance_to_the_teacher_s_value():
    loss = head("regression").soft_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0]), torch.zeros(2), 2.0)
    assert float(loss) == pytest.approx(2.5)  # ((1 - 0)^2 + (2 - 4)^2) / 2, whatever the temperature


def test_token_soft_loss_reads_only_labelled_positions():
    # Position 0 is ignored (-100): however different its logits, the loss is the mean over positions 1 and 2.
    student = torch.tensor([[[9.0, -9.0], [0.0, 0.0], [0.0, 0.0]]])
    teacher = torch.tensor([[[-9.0, 9.0], [math.log(3), 0.0], [0.0, 0.0]]])
    labels = torch.tensor([[-100, 0, 1]])
    kl_first = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)  # teacher (3/4, 1/4) against (1/2, 1/2), T=1
    loss = head("token_classification").soft_loss(student, teacher, labels, temperature=1.0)
    assert float(loss) == pytest.approx(kl_first / 2, rel=1e-5)


def test_multi_label_soft_loss_by_hand():
    student, teacher, t = torch.tensor([[0.0, 2.0]]), torch.tensor([[2.0, -2.0]]), 2.0
    targets = [1 / (1 + math.exp(-v / t)) for v in (2.0, -2.0)]
    probs = [1 / (1 + math.exp(-v / t)) for v in (0.0, 2.0)]
    bce = -sum(q * math.log(p) + (1 - q) * math.log(1 - p) for q, p in zip(targets, probs, strict=True)) / 2
    loss = head("multi_label_classification").soft_loss(student, teacher, torch.zeros(1, 2), temperature=t)
    assert float(loss) == pytest.approx(bce * t**2, rel=1e-5)


def student(tmp_path, teacher, *overrides):
    settings = [
        f"output_dir={tmp_path / 'run'}",
        f"distillation.teacher={teacher}",
        "encoder.num_layers=1",
        "training.max_steps=12",
        "training.save_every=6",
        "training.eval_every=100",
        "training.warmup_steps=0",
    ]
    return load_config(REPO / "configs/tiny.yaml", [*settings, *overrides])


def test_a_one_layer_student_distils_and_resumes_bit_identically(trained, tmp_path):
    teacher = trained / "model"
    straight = train(student(tmp_path / "straight", teacher))
    assert MultiTaskModel.from_pretrained(straight.model_dir).encoder.config.num_hidden_layers == 1
    train(student(tmp_path / "split", teacher), stop_at_step=6)
    resumed = train(student(tmp_path / "split", teacher), resume="latest")
    final = "checkpoints/checkpoint-0000012/model.safetensors"
    a, b = load_file(straight.output_dir / final), load_file(resumed.output_dir / final)
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    plain = train(student(tmp_path / "plain", "null"))  # the same student from the labels alone
    c = load_file(plain.output_dir / final)
    assert not all(torch.equal(a[name], c[name]) for name in a)  # the teacher changed what was learned


def test_alpha_one_is_training_from_the_labels_alone(trained, tmp_path):
    with_teacher = train(student(tmp_path / "a", trained / "model", "distillation.alpha=1", "training.max_steps=6"))
    without = train(student(tmp_path / "b", "null", "training.max_steps=6"))
    a, b = with_teacher.model.state_dict(), without.model.state_dict()
    assert all(torch.allclose(a[name], b[name], atol=1e-6) for name in a)


def test_distill_from_the_command_line(trained, tmp_path):
    args = ["--set", f"output_dir={tmp_path / 'run'}", "--set", "encoder.num_layers=1"]
    args += ["--set", "training.max_steps=4", "--set", "training.warmup_steps=0"]
    assert main(["distill", str(trained / "model"), "configs/tiny.yaml", *args]) == 0
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()


def test_a_teacher_with_another_tokenizer_is_refused(trained, tmp_path, word_tokenizer):
    other = tmp_path / "teacher"
    shutil.copytree(trained / "model", other)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (other / name).unlink()
    word_tokenizer.save_pretrained(other)
    with pytest.raises(ConfigError, match="differs from the one of the teacher"):
        train(student(tmp_path, other))


def test_bad_distillation_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="'distillation.alpha' must be between 0 and 1, got 1.5"):
        student(tmp_path, "x", "distillation.alpha=1.5")
    with pytest.raises(ConfigError, match="'distillation.temperature' must be > 0"):
        student(tmp_path, "x", "distillation.temperature=0")
