"""Hierarchical and soft sharing, learned and dynamic loss weights, joint batches (issue 6)."""

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hfmtl.config.run_config import load_config
from hfmtl.errors import ConfigError, DataError
from hfmtl.model.encoder import build_model
from hfmtl.model.modeling import MultiTaskModel
from hfmtl.train.loss_weighting import DynamicWeightAverage, UncertaintyWeighting
from hfmtl.train.optimization import build_optimizer
from hfmtl.train.trainer import train

REPO = Path(__file__).resolve().parent.parent
LABELS = {"sentiment": ("negative", "positive"), "ner": ("O", "B-PER", "I-PER"), "intensity": None}
IDS = torch.tensor([[2, 40, 41, 42, 3], [2, 43, 3, 0, 0]])
MASK = (IDS != 0).long()


def tiny(*overrides: str):
    """The tiny config's first three tasks (the hand computations below count three copies)."""
    config = load_config(REPO / "configs" / "tiny.yaml", list(overrides))
    first_three = tuple(task for task in config.tasks if task.name in ("sentiment", "ner", "intensity"))
    return dataclasses.replace(config, tasks=first_three)


def model_for(*overrides: str) -> MultiTaskModel:
    torch.manual_seed(0)
    return build_model(tiny(*overrides), LABELS).eval()


def test_a_hierarchical_head_reads_its_layer_of_the_same_pass():
    model = model_for("tasks.ner.layer=1")
    with torch.no_grad():
        states = model.encoder(input_ids=IDS, attention_mask=MASK, output_hidden_states=True).hidden_states
        expected = model.heads["ner"](states[1], MASK)
        assert torch.allclose(model("ner", IDS, MASK).logits, expected, atol=1e-6)
        top = model.heads["sentiment"](states[-1], MASK)  # the others still read the top layer
        assert torch.allclose(model("sentiment", IDS, MASK).logits, top, atol=1e-6)


def test_hard_sharing_keeps_no_lower_layer_states():
    assert not model_for().needs_hidden_states
    assert model_for("tasks.ner.layer=1").needs_hidden_states


def test_soft_sharing_copies_the_pretrained_top_layers_and_starts_with_zero_penalty():
    model = model_for("sharing.soft_layers=1", "sharing.soft_penalty=0.1")
    assert len(model.encoder.encoder.layer) == 1 and set(model.private_layers) == {"sentiment", "ner", "intensity"}
    pretrained = load_file(REPO / "tests/assets/tiny/encoder/model.safetensors")
    for name, tensor in model.private_layers["ner"][0].state_dict().items():
        assert torch.equal(tensor, pretrained[f"encoder.layer.1.{name}"]), name
    for task in model.specs:
        assert model.soft_sharing_penalty(task).item() == 0.0


def test_layer_lr_decay_keeps_the_depth_of_soft_sharing_private_copies():
    from hfmtl.train.optimization import layer_lr_factors

    model = model_for("sharing.soft_layers=1")
    factors = layer_lr_factors(model, 0.5)
    assert {factors[id(p)] for p in model.encoder.embeddings.parameters()} == {0.25}
    assert {factors[id(p)] for p in model.encoder.encoder.layer[0].parameters()} == {0.5}
    assert {factors[id(p)] for p in model.private_layers.parameters()} == {1.0}  # copies of the top layer
    assert not {id(p) for p in model.heads.parameters()} & factors.keys()


def test_with_soft_sharing_a_step_on_one_task_changes_only_its_copy_and_head():
    model = model_for("sharing.soft_layers=1", "sharing.soft_penalty=0.1").train()
    optimizer = build_optimizer(model, tiny().training)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    model("sentiment", IDS, MASK, labels=torch.tensor([1, 0])).loss.backward()
    optimizer.step()
    changed = {name for name, tensor in model.state_dict().items() if not torch.equal(before[name], tensor)}
    assert any(name.startswith("encoder.") for name in changed)
    assert any(name.startswith("private_layers.sentiment.") for name in changed)
    assert any(name.startswith("heads.sentiment.") for name in changed)
    assert not any(
        name.startswith(("private_layers.ner.", "private_layers.intensity.", "heads.ner.")) for name in changed
    )
    assert model.soft_sharing_penalty("sentiment").item() > 0  # the copies now differ


def test_the_soft_sharing_penalty_is_a_regularizer_kept_out_of_the_task_losses():
    penalty, delta = 0.1, 0.01
    model = model_for("sharing.soft_layers=1", f"sharing.soft_penalty={penalty}")
    with torch.no_grad():
        for parameter in model.private_layers["sentiment"].parameters():
            parameter.add_(delta)
    # By hand: of the 3 copies one is w + delta and two are w, so the mean is w + delta/3. Summed over every
    # weight, the squared distance is (2 delta/3)^2 per weight for the moved copy and (delta/3)^2 for the others.
    weights = sum(parameter.numel() for parameter in model.private_layers["sentiment"].parameters())
    moved, unmoved = weights * (2 * delta / 3) ** 2, weights * (delta / 3) ** 2

    labels = torch.tensor([1, 0])
    output = model("sentiment", IDS, MASK, labels=labels)
    assert (output.regularizer / penalty).item() == pytest.approx(moved, rel=1e-4)
    assert torch.equal(output.loss, model.heads["sentiment"].loss(output.logits, labels))  # the head's loss alone
    assert output.loss.item() == pytest.approx(torch.nn.functional.cross_entropy(output.logits, labels).item())
    output.regularizer.backward()  # pulls only the moved copy, toward the mean: d/dw penalty * (w - mean)^2
    for parameter in model.private_layers["sentiment"].parameters():
        assert torch.allclose(parameter.grad, torch.full_like(parameter, 2 * penalty * 2 * delta / 3), rtol=1e-3)
    assert all(parameter.grad is None for parameter in model.private_layers["ner"].parameters())

    tags = torch.tensor([[-100, 1, 2, 0, -100], [-100, 0, -100, -100, -100]])
    joint = model(["sentiment", "ner"], IDS, MASK, labels={"sentiment": labels, "ner": tags})
    assert (joint.regularizer / penalty).item() == pytest.approx(moved + unmoved, rel=1e-4)  # summed over tasks
    head_losses = {
        task: model.heads[task].loss(joint.logits[task], truth)
        for task, truth in (("sentiment", labels), ("ner", tags))
    }
    assert all(torch.equal(joint.losses[task], head_losses[task]) for task in head_losses)
    assert torch.equal(joint.loss, joint.losses["sentiment"] + joint.losses["ner"])


@pytest.mark.parametrize(
    ("overrides", "labels"),
    [
        (["sharing.soft_layers=1", "sharing.soft_penalty=0.1"], None),
        (["sharing.soft_layers=1", "sharing.soft_penalty=0"], torch.tensor([1, 0])),
        (["sharing.soft_penalty=0.1"], torch.tensor([1, 0])),
    ],
    ids=["no-labels", "no-penalty", "hard-sharing"],
)
def test_no_regularizer_without_labels_or_a_penalty(overrides, labels):
    assert model_for(*overrides)("sentiment", IDS, MASK, labels=labels).regularizer is None


def test_every_mode_survives_save_and_load(tmp_path):
    model = model_for("sharing.soft_layers=1", "tasks.ner.layer=1")
    model.save_pretrained(tmp_path)
    loaded = MultiTaskModel.from_pretrained(tmp_path).eval()
    assert set(loaded.state_dict()) == set(model.state_dict())
    assert loaded.config.soft_layers == 1 and loaded.specs["ner"].layer == 1
    with torch.no_grad():
        before, after = model.forward_all(IDS, MASK), loaded.forward_all(IDS, MASK)
    assert all(torch.equal(before[task], after[task]) for task in before)


def test_one_pass_serves_several_heads_with_their_losses():
    model = model_for("sharing.soft_layers=1")
    calls = []
    handle = model.encoder.register_forward_hook(lambda *args: calls.append(1))
    labels = {"sentiment": torch.tensor([1, 0]), "intensity": torch.tensor([0.9, 0.1])}
    output = model(["sentiment", "intensity"], IDS, MASK, labels=labels)
    handle.remove()
    assert len(calls) == 1 and set(output.losses) == {"sentiment", "intensity"}
    single = model("intensity", IDS, MASK, labels=labels["intensity"])
    assert output.losses["intensity"].item() == pytest.approx(single.loss.item(), abs=1e-6)


def test_dynamic_weight_average_by_hand():
    dwa = DynamicWeightAverage({"a": 1.0, "b": 2.0}, temperature=2.0, window=2)
    for losses in ({"a": [4.0], "b": [1.0]}, {"a": [4.0], "b": [1.0]}):  # window 1: means a=4, b=1
        dwa.update(losses)
    assert dwa.weights() == {"a": 1.0, "b": 2.0}  # one window is not a trend yet
    for losses in ({"a": [2.0], "b": [1.0]}, {"a": [2.0]}):  # window 2: a halves, b flat
        dwa.update(losses)
    ra, rb = 0.5, 1.0
    expected_a = 2 * math.exp(ra / 2) / (math.exp(ra / 2) + math.exp(rb / 2))
    assert dwa.weights() == pytest.approx({"a": expected_a, "b": 2.0 * (2 - expected_a)})
    restored = DynamicWeightAverage({"a": 1.0, "b": 2.0}, temperature=2.0, window=2)
    restored.load_state_dict(json.loads(json.dumps(dwa.state_dict())))
    assert restored.weights() == dwa.weights()


def test_uncertainty_weighting_is_kendalls_form():
    weighting = UncertaintyWeighting({"a": 1.0, "b": 0.5})
    with torch.no_grad():
        weighting.log_variances.copy_(torch.tensor([0.0, math.log(2.0)]))
    assert weighting("b", torch.tensor(3.0)).item() == pytest.approx(
        0.5 * (math.exp(-math.log(2.0)) * 3.0 + math.log(2.0))  # w_t * (exp(-s_t) * L_t + s_t)
    )
    assert weighting.weights() == pytest.approx({"a": 1.0, "b": 0.25})


def noisy_data(tmp_path: Path) -> Path:
    """The tiny sentences with a clean target (intensity) and a noisy one (pure noise, std 1.5)."""
    generator = torch.Generator().manual_seed(0)
    source = [json.loads(line) for line in (REPO / "tests/assets/tiny/data/sst_train.jsonl").read_text().splitlines()]
    rows = [{**row, "noisy": float(torch.randn(1, generator=generator)) * 1.5} for row in source]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return tmp_path


def test_uncertainty_weights_turn_down_the_noisy_task(tmp_path):
    data = noisy_data(tmp_path)
    config = load_config(REPO / "configs" / "tiny.yaml", [f"output_dir={tmp_path / 'run'}", f"data_dir={data}"])
    intensity = next(task for task in config.tasks if task.name == "intensity")
    data_files = dataclasses.replace(intensity.data, train="train.jsonl", validation=None)
    tasks = [
        dataclasses.replace(intensity, name="clean", data=data_files),
        dataclasses.replace(intensity, name="noisy", label_column="noisy", data=data_files),
    ]
    config = dataclasses.replace(
        config,
        tasks=tuple(tasks),
        sampling=dataclasses.replace(config.sampling, strategy="uniform", weights=None),
        loss_weighting=dataclasses.replace(config.loss_weighting, strategy="uncertainty"),
        training=dataclasses.replace(config.training, max_steps=80, log_every=80),
    )
    train(config)
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    weights = log[-1]["loss_weights"]
    assert weights["noisy"] < 1.0 < weights["clean"]


def test_learned_and_dynamic_weights_resume_exactly(tmp_path):
    for strategy in ("uncertainty", "dwa"):
        overrides = [f"loss_weighting.strategy={strategy}", "loss_weighting.dwa_window=5", "training.max_steps=30"]
        overrides += ["training.eval_every=30", "training.save_every=10"]
        straight = train(tiny(*overrides, f"output_dir={tmp_path / strategy / 'a'}"))
        train(tiny(*overrides, f"output_dir={tmp_path / strategy / 'b'}"), stop_at_step=10)
        resumed = train(tiny(*overrides, f"output_dir={tmp_path / strategy / 'b'}"), resume="latest")
        a, b = straight.model.state_dict(), resumed.model.state_dict()
        assert all(torch.equal(a[name], b[name]) for name in a), strategy
        logs = [json.loads((tmp_path / strategy / run / "metrics.jsonl").read_text().splitlines()[-2]) for run in "ab"]
        assert logs[0]["loss_weights"] == logs[1]["loss_weights"], strategy


def test_joint_batches_train_both_heads_with_one_encoder_pass_per_step(tmp_path, monkeypatch):
    from transformers.models.bert import modeling_bert

    calls = []
    original = modeling_bert.BertModel.forward
    monkeypatch.setattr(
        modeling_bert.BertModel, "forward", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )
    config = tiny(
        f"output_dir={tmp_path}",
        "joint_tasks=[[sentiment, intensity]]",
        "training.max_steps=20",
        "training.eval_every=20",
        "training.log_every=20",
    )
    result = train(config)
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert set(result.tasks) == {"sentiment+intensity", "ner"}
    joint_steps = result.tasks.count("sentiment+intensity")
    assert log[0]["tasks"].count("sentiment+intensity") == joint_steps
    assert log[0]["loss/sentiment"] > 0 and log[0]["loss/intensity"] > 0  # both heads trained on joint steps
    evaluation_batches = 3  # one validation batch per task at step 20
    assert len(calls) == 20 + evaluation_batches  # one encoder pass per step, joint or not


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (["tasks.ner.layer=0"], ConfigError, r"'tasks.ner.layer' must be >= 1"),
        (["tasks.ner.layer=3"], ConfigError, r"'tasks.ner.layer' is 3, but 'tests/assets/tiny/encoder' has 2 layers"),
        (["sharing.soft_layers=3"], ConfigError, r"'sharing.soft_layers' is 3, but the encoder has 2 layers"),
        (["joint_tasks=[[sentiment, ner]]"], ConfigError, r"'ner' and 'sentiment' must read the same data"),
        (["joint_tasks=[[sentiment, pos]]"], ConfigError, r"'joint_tasks' names 'pos', but the tasks are"),
        (
            ["joint_tasks=[[sentiment, intensity]]", "tasks.sentiment.batch_size=8"],
            ConfigError,
            r"its tasks share batches, so they must have the same batch_size, got \[8, None\]",
        ),
        (
            ["joint_tasks=[[sentiment, intensity]]", "tasks.intensity.data.max_train_rows=100"],
            ConfigError,
            r"must read the same data",
        ),
    ],
)
def test_impossible_sharing_settings(tmp_path, overrides, error, message):
    with pytest.raises(error, match=message):
        train(tiny(f"output_dir={tmp_path}", *overrides))


def test_joint_rows_must_be_the_same_examples():
    from datasets import Dataset

    from hfmtl.data.joint import joint_rows

    a = Dataset.from_dict({"input_ids": [[1, 2], [1, 3]], "labels": [0, 1]})
    b = Dataset.from_dict({"input_ids": [[1, 2], [1, 4]], "labels": [0.5, 0.2]})
    with pytest.raises(DataError, match=r"joint tasks \['a', 'b'\] do not read the same rows"):
        joint_rows(["a", "b"], [a, b])
    batch = joint_rows(["a", "b"], [a, a]).batch([0, 1], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[1, 2], [1, 3]]
    assert {task: labels.tolist() for task, labels in batch["labels"].items()} == {"a": [0, 1], "b": [0, 1]}
