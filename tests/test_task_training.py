"""Per-task training settings: label smoothing and class weights in the softmax losses, a head learning-rate
multiplier, and per-task early stopping (the task stops being drawn; the others train on)."""

import dataclasses
import json
import math

import pytest
import torch
from datasets import Dataset
from safetensors.torch import load_file
from test_sampling import make_loader
from test_trainer import task_sequence, tiny

from hfmtl.config.run_config import SamplingConfig
from hfmtl.data.prefetch import PrefetchingLoader
from hfmtl.errors import ConfigError
from hfmtl.model.heads import HEAD_TYPES, IGNORE_INDEX
from hfmtl.model.modeling import MultiTaskModel
from hfmtl.tasks.labels import class_weights
from hfmtl.train.checkpoint import TrainerState
from hfmtl.train.optimization import build_optimizer, build_scheduler
from hfmtl.train.selection import tasks_out_of_patience
from hfmtl.train.trainer import train

SHORT = ["training.max_steps=40", "training.eval_every=5", "training.save_every=20", "training.log_every=5"]


def hand_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, smoothing: float, weights=None) -> float:
    """(1 - e) * -log p_y + e * mean over labels of -log p_c, each row weighted by w_y, over the sum of w_y."""
    total, norm = 0.0, 0.0
    for row, label in zip(logits.tolist(), labels.tolist(), strict=True):
        if label == IGNORE_INDEX:
            continue
        log_z = math.log(sum(math.exp(v) for v in row))
        nll = [log_z - v for v in row]
        w = 1.0 if weights is None else weights[label]
        # PyTorch weighs the smoothing term of each class by that class's weight
        smooth = sum(nll[c] * (1.0 if weights is None else weights[c]) for c in range(len(row))) / len(row)
        total += (1 - smoothing) * w * nll[label] + smoothing * smooth
        norm += w
    return total / norm


@pytest.mark.parametrize("kind", ["classification", "token_classification"])
@pytest.mark.parametrize(("smoothing", "weights"), [(0.1, None), (0.0, (1.0, 3.0, 0.5)), (0.2, (2.0, 1.0, 1.0))])
def test_softmax_losses_match_a_hand_computation(kind, smoothing, weights):
    torch.manual_seed(0)
    head = HEAD_TYPES[kind](8, 3, "mean", 0.0)
    head.set_loss_options(smoothing, weights)
    logits, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, IGNORE_INDEX, 1])
    if kind == "classification":
        logits, labels = logits[:4], labels[:4]  # a sequence label is never ignored
        got = head.loss(logits, labels)
    else:  # (batch 2, sequence 3): the ignored position must count for nothing
        got = head.loss(logits.view(2, 3, 3), labels.view(2, 3))
    assert float(got) == pytest.approx(hand_cross_entropy(logits, labels, smoothing, weights), rel=1e-5)


def test_without_options_the_loss_is_plain_cross_entropy():
    head = HEAD_TYPES["classification"](8, 2, "mean", 0.0)
    logits, labels = torch.randn(5, 2), torch.tensor([0, 1, 1, 0, 1])
    assert torch.equal(head.loss(logits, labels), torch.nn.functional.cross_entropy(logits, labels))


def test_balanced_weights_count_what_the_loss_reads(tiny_config):
    sentiment = next(t for t in tiny_config.tasks if t.name == "sentiment")
    balanced = dataclasses.replace(sentiment, class_weights="balanced")
    train_split = Dataset.from_dict({"labels": [0, 0, 0, 1]})
    assert class_weights(balanced, ("negative", "positive"), train_split) == pytest.approx((4 / 6, 2.0))
    # NER: ids per token, -100 for special tokens and continuation pieces; label 2 never occurs (weight 1)
    tags = Dataset.from_dict({"labels": [[-100, 0, 0, 1, -100], [-100, 0, 1, 1, 0, -100]]})
    assert class_weights(balanced, ("O", "B", "I"), tags) == pytest.approx((7 / 12, 7 / 9, 1.0))
    given = dataclasses.replace(sentiment, class_weights={"positive": 3.0})
    assert class_weights(given, ("negative", "positive"), train_split) == (1.0, 3.0)
    assert class_weights(sentiment, ("negative", "positive"), train_split) is None


def test_loss_options_are_trained_with_and_saved_in_the_model(tmp_path):
    config = tiny(
        tmp_path,
        "training.max_steps=12",
        "training.eval_every=12",
        "tasks.sentiment.label_smoothing=0.1",
        "tasks.ner.class_weights=balanced",
    )
    result = train(config)
    specs = {spec.name: spec for spec in result.model.config.task_specs}
    assert specs["sentiment"].label_smoothing == 0.1 and specs["sentiment"].class_weights is None
    assert len(specs["ner"].class_weights) == len(specs["ner"].labels) and specs["ner"].class_weights != (1.0,) * 8
    loaded = MultiTaskModel.from_pretrained(result.model_dir)
    assert loaded.heads["sentiment"].label_smoothing == 0.1
    assert loaded.heads["ner"].class_weights == specs["ner"].class_weights
    assert loaded.heads["intensity"].class_weights is None
    # the options are plain settings, not weights: the state dict holds what it held without them
    plain = train(tiny(tmp_path / "plain", "training.max_steps=12", "training.eval_every=6"))
    assert set(load_file(result.model_dir / "model.safetensors")) == set(
        load_file(plain.model_dir / "model.safetensors")
    )


def test_a_head_learning_rate_multiplier_scales_that_head_only(tiny_config):
    from hfmtl.model.encoder import build_model

    labels = {"sentiment": ("negative", "positive"), "ner": ("O", "B-PER", "I-PER"), "intensity": None}
    labels |= {"emotions": ("joy", "anger", "fear"), "similarity": None}
    model = build_model(tiny_config, labels)
    plain = build_optimizer(model, tiny_config.training)
    assert len(plain.param_groups) == 2
    optimizer = build_optimizer(model, tiny_config.training, head_lr_multipliers={"ner": 10.0})
    scheduler = build_scheduler(optimizer, tiny_config.training)
    ner = {id(p) for p in model.heads["ner"].parameters()}
    for _ in range(15):  # past the warmup, into the decay: the ratio stays 10
        optimizer.step()
        scheduler.step()
    base = tiny_config.training.learning_rate
    for group in optimizer.param_groups:
        is_ner = {id(p) for p in group["params"]} <= ner
        assert all((id(p) in ner) == is_ner for p in group["params"])
        assert group["initial_lr"] == pytest.approx(base * (10.0 if is_ner else 1.0))
        assert group["lr"] / group["initial_lr"] == pytest.approx(scheduler.get_last_lr()[0] / base)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    assert sum(len(g["params"]) for g in optimizer.param_groups if {id(p) for p in g["params"]} <= ner) == len(ner)


def test_layer_lr_decay_gives_each_encoder_depth_its_rate_and_the_heads_theirs(tiny_config):
    from hfmtl.model.encoder import build_model

    labels = {"sentiment": ("negative", "positive"), "ner": ("O", "B-PER", "I-PER"), "intensity": None}
    labels |= {"emotions": ("joy", "anger", "fear"), "similarity": None}
    model = build_model(tiny_config, labels)
    training = dataclasses.replace(tiny_config.training, layer_lr_decay=0.5)
    optimizer = build_optimizer(model, training, head_lr_multipliers={"ner": 10.0})
    rate = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(rate) == len(list(model.parameters()))
    base = training.learning_rate
    bottom, top = model.encoder.encoder.layer  # the tiny encoder has 2 layers
    expected = [(model.encoder.embeddings, 0.25), (bottom, 0.5), (top, 1.0), (model.heads["ner"], 10.0)]
    expected += [(model.heads["sentiment"], 1.0), (model.heads["intensity"], 1.0)]
    for module, factor in expected:
        assert [rate[id(p)] for p in module.parameters()] == pytest.approx(
            [base * factor] * len(list(module.parameters()))
        )
    decays = {id(p) for group in optimizer.param_groups if group["weight_decay"] > 0 for p in group["params"]}
    assert decays == {id(p) for p in model.parameters() if p.dim() >= 2}  # biases and norms still do not decay


def test_layer_lr_decay_needs_an_encoder_whose_layers_it_can_find():
    from types import SimpleNamespace

    from hfmtl.train.optimization import layer_lr_factors

    model = SimpleNamespace(encoder=torch.nn.Sequential(torch.nn.Linear(2, 2)), num_layers=1)
    with pytest.raises(
        ConfigError, match=r"'training.layer_lr_decay' is 0.9, but .* need the encoder's layers .* Sequential has none"
    ):
        layer_lr_factors(model, 0.9)


def test_patience_counts_each_task_on_its_own(tiny_config):
    tasks = tuple(
        dataclasses.replace(t, early_stopping_patience={"sentiment": 1, "ner": 2}.get(t.name))
        for t in tiny_config.tasks
    )
    config = dataclasses.replace(tiny_config, tasks=tasks)
    progress = TrainerState()

    def evaluation(sentiment: float, ner: float) -> list[str]:
        metrics = {t.name: {"accuracy": 0.5, "f1": 0.5, "pearson": 0.5, "micro_f1": 0.5} for t in config.tasks}
        metrics["sentiment"]["accuracy"], metrics["ner"]["f1"] = sentiment, ner
        return tasks_out_of_patience(progress, metrics, config)

    assert evaluation(0.5, 0.5) == []  # the first evaluation sets each best
    assert evaluation(0.6, 0.5) == []  # sentiment improved; ner's first evaluation without improvement
    assert evaluation(0.6, 0.7) == ["sentiment"]  # equal is not better; ner improved, its count starts again
    assert evaluation(0.9, 0.6) == []  # a stopped task is no longer counted
    assert evaluation(0.9, 0.6) == ["ner"]
    assert progress.stopped_tasks == ["sentiment", "ner"] and progress.task_best == {"sentiment": 0.6, "ner": 0.7}


def test_a_stopped_task_is_never_drawn_again_and_the_sequence_resumes():
    sampling = SamplingConfig(strategy="fixed", weights={"a": 5.0, "b": 1.0, "c": 1.0})
    batches = PrefetchingLoader(make_loader(sampling, seed=3))
    first = [batches.next_batch()[0] for _ in range(20)]
    assert first.count("a") > 8
    batches.stop_units(["a"])
    saved = batches.state_dict()
    after = [batches.next_batch() for _ in range(40)]
    batches.close()
    assert {task for task, _ in after} == {"b", "c"}
    resumed = make_loader(sampling, seed=3)
    resumed.load_state_dict(json.loads(json.dumps(saved)))  # as a checkpoint stores it
    again = [resumed.next_batch() for _ in range(40)]
    assert [t for t, _ in again] == [t for t, _ in after]
    assert all(torch.equal(x["input_ids"], y["input_ids"]) for (_, x), (_, y) in zip(again, after, strict=True))


def test_a_task_out_of_patience_stops_while_the_others_train_on(tmp_path):
    # A learning rate this small leaves every metric where it is: sentiment stops at its second evaluation.
    config = tiny(tmp_path, *SHORT, "training.learning_rate=1e-12", "tasks.sentiment.early_stopping_patience=1")
    result = train(config)
    assert result.step == 40 and not result.stopped_early
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    stops = [r["step"] for r in records if "eval" in r and r.get("stopped_tasks") == ["sentiment"]]
    assert stops[0] == 10
    drawn = task_sequence(tmp_path / "run")
    assert "sentiment" not in drawn[10:]
    assert len(drawn) == 40


def test_the_run_ends_when_every_task_has_stopped(tmp_path):
    patience = [f"tasks.{name}.early_stopping_patience=2" for name in ("sentiment", "ner", "intensity")]
    patience += [f"tasks.{name}.early_stopping_patience=1" for name in ("emotions", "similarity")]
    result = train(tiny(tmp_path, *SHORT, "training.learning_rate=1e-12", *patience))
    assert result.stopped_early and result.step == 15


def test_a_resumed_run_stops_the_same_tasks_at_the_same_steps(tmp_path):
    common = [*SHORT, "tasks.sentiment.early_stopping_patience=1", "tasks.emotions.early_stopping_patience=1"]
    straight = train(tiny(tmp_path / "straight", *common))
    train(tiny(tmp_path / "split", *common), stop_at_step=20)
    resumed = train(tiny(tmp_path / "split", *common), resume="latest")
    records = {
        name: [json.loads(line) for line in (tmp_path / name / "run" / "metrics.jsonl").read_text().splitlines()]
        for name in ("straight", "split")
    }
    assert any("stopped_tasks" in r for r in records["straight"])  # the test exercises a stop
    stops = {name: [(r["step"], r.get("stopped_tasks")) for r in rs if "eval" in r] for name, rs in records.items()}
    assert stops["split"] == stops["straight"]
    assert task_sequence(tmp_path / "straight" / "run") == task_sequence(tmp_path / "split" / "run")
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["tasks.sentiment.label_smoothing=1"], r"'tasks\.sentiment\.label_smoothing' must be >= 0 and < 1, got 1\.0"),
        (["tasks.emotions.class_weights=balanced"], r"'tasks\.emotions\.class_weights' only applies to tasks"),
        (["tasks.sentiment.class_weights={positive: 0}"], r"'tasks\.sentiment\.class_weights\.positive' must be > 0"),
        (["tasks.ner.early_stopping_patience=0"], r"'tasks\.ner\.early_stopping_patience' must be >= 1"),
        (
            [
                "tasks.ner.early_stopping_patience=2",
                "sampling.mode=all_tasks",
                "sampling.strategy=uniform",
                "sampling.weights=",
            ],
            r"cannot stop this task alone: 'sampling\.mode' is all_tasks",
        ),
        (
            ["tasks.sentiment.early_stopping_patience=2", "joint_tasks=[[sentiment, intensity]]"],
            r"cannot stop this task alone: it is in a joint_tasks group",
        ),
    ],
)
def test_per_task_settings_that_cannot_work_are_refused(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny(tmp_path, *overrides)
