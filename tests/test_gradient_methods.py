"""Gradient methods (PCGrad, CAGrad, GradNorm) and `sampling.mode: all_tasks`: hand-computed cases, the
refusals, resume, and two processes against one."""

import itertools
import json

import numpy as np
import pytest
import torch
import yaml
from conftest import run_two_processes
from safetensors.torch import load_file
from test_trainer import REPO

from hfmtl.config.run_config import load_config
from hfmtl.errors import ConfigError
from hfmtl.train.gradient_methods import cagrad, cagrad_weights, gradnorm, pcgrad
from hfmtl.train.loss_weighting import GradNormWeighting
from hfmtl.train.precision import accelerator_with_precision
from hfmtl.train.trainer import train

ALL_TASKS = ["sampling.mode=all_tasks", "sampling.strategy=uniform", "sampling.weights=null"]


def tiny(tmp_path, *overrides):
    return load_config(REPO / "configs" / "tiny.yaml", [f"output_dir={tmp_path / 'run'}", *ALL_TASKS, *overrides])


def test_pcgrad_leaves_agreeing_gradients_alone():
    grads = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    assert pcgrad(grads, np.random.default_rng(0)).tolist() == [1.5, 1.5]


def test_pcgrad_projects_conflicting_gradients_by_hand():
    # g1 . g2 = -1: g1' = g1 - (-1 / |g2|^2) g2 = (0.5, 0.5), g2' = g2 - (-1 / |g1|^2) g1 = (0, 1).
    # g3 conflicts with neither.
    grads = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    assert pcgrad(grads, np.random.default_rng(0)) == pytest.approx(torch.tensor([0.5, 1.5, 2.0]))


def test_pcgrad_projects_against_the_original_gradients_in_a_random_order():
    # Every pair conflicts, so each task's result depends on the order it meets the other two in.
    grads = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [-1.0, -3.0]])

    def project(task, order):
        g = grads[task].clone()
        for other in order:
            dot = g @ grads[other]
            if dot < 0:
                g -= dot / (grads[other] @ grads[other]) * grads[other]
        return g

    orders = [[(1, 2), (2, 1)], [(0, 2), (2, 0)], [(0, 1), (1, 0)]]
    by_hand = [sum(project(t, o) for t, o in enumerate(choice)) for choice in itertools.product(*orders)]
    results = [pcgrad(grads, np.random.default_rng(seed)) for seed in range(30)]
    assert all(any(torch.allclose(r, h, atol=1e-6) for h in by_hand) for r in results)
    assert len({tuple(np.round(r.numpy(), 5)) for r in results}) > 1  # the order is drawn, not fixed


def test_cagrad_with_c_0_is_the_mean_gradient():
    grads = torch.tensor([[1.0, 2.0], [3.0, -4.0]])
    assert cagrad(grads, 0.0).tolist() == [2.0, -1.0]


def test_cagrad_of_orthogonal_equal_gradients_by_hand():
    # Symmetric: w = (1/2, 1/2), so g_w = g0 and the update is g0 (1 + c) / (1 + c^2).
    c = 0.4
    result = cagrad(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), c)
    assert result == pytest.approx(torch.tensor([0.5, 0.5]) * (1 + c) / (1 + c**2), abs=1e-5)


def test_cagrad_weights_match_a_grid_search_on_conflicting_gradients():
    grads = np.array([[1.0, 0.2], [-0.6, 1.0]])
    gram, c = grads @ grads.T, 0.5
    g0 = grads.mean(axis=0)
    ts = np.linspace(0, 1, 200001)
    gw = ts[:, None] * grads[0] + (1 - ts[:, None]) * grads[1]
    objective = gw @ g0 + c * np.linalg.norm(g0) * np.linalg.norm(gw, axis=1)
    best = ts[np.argmin(objective)]
    assert cagrad_weights(gram, c) == pytest.approx([best, 1 - best], abs=2e-3)
    update = cagrad(torch.tensor(grads, dtype=torch.float64), c).numpy()
    towards = best * grads[0] + (1 - best) * grads[1]
    expected = (g0 + c * np.linalg.norm(g0) / np.linalg.norm(towards) * towards) / (1 + c**2)
    assert update == pytest.approx(expected, abs=2e-3)
    assert min(grads @ update) > min(grads @ g0)  # the worst-off task gains more than under the mean


def test_gradnorm_by_hand():
    # |g1| = 3, |g2| = 1, w = (1, 1), equal loss ratios: target = mean(3, 1) = 2 for both, so
    # d/dw sum |w_t |g_t| - 2| = (+3, -1); through w = 2 softmax(l) at l = 0 (dw_i/dl_j = 0.5 (2 d_ij - 1)): (2, -2).
    grads = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    losses = torch.tensor([0.8, 0.4])
    update, logits_grad = gradnorm(grads, losses, losses, torch.zeros(2), alpha=1.5)
    assert update.tolist() == [3.0, 1.0]
    assert logits_grad.tolist() == pytest.approx([2.0, -2.0])


def test_gradnorm_targets_follow_the_relative_losses():
    # Loss ratios (0.5, 1.0): relative (2/3, 4/3); alpha = 1 and mean weighted norm 1: targets (2/3, 4/3).
    # Both weighted norms are 1: task 1 is over its target (+1), task 2 under (-1): d/dl = (1, -1).
    grads = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    _, logits_grad = gradnorm(grads, torch.tensor([0.5, 1.0]), torch.tensor([1.0, 1.0]), torch.zeros(2), alpha=1.0)
    assert logits_grad.tolist() == pytest.approx([1.0, -1.0])


def test_gradnorm_weighting_keeps_its_first_losses_and_its_weights_sum_to_the_task_count():
    weighting = GradNormWeighting({"a": 1.0, "b": 2.0, "c": 1.0}, ["a+b", "c"], alpha=1.5)
    grads = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    weighting.combine(grads, torch.tensor([1.0, 2.0]), step=0)
    weighting.combine(grads, torch.tensor([0.5, 2.0]), step=1)
    assert weighting.initial_losses.tolist() == [1.0, 2.0]
    assert weighting.logits.grad is not None
    with torch.no_grad():
        weighting.logits.copy_(torch.tensor([0.3, -0.3]))
    weights = weighting.weights()
    learned = (2 * torch.softmax(torch.tensor([0.3, -0.3]), dim=0)).tolist()
    assert weights == pytest.approx({"a": learned[0], "b": 2 * learned[0], "c": learned[1]})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["loss_weighting.strategy=pcgrad"], "needs 'sampling.mode: all_tasks'"),
        (["sampling.mode=all_tasks"], "'sampling.weights' has no effect with 'sampling.mode: all_tasks'"),
        ([*ALL_TASKS, "loss_weighting.cagrad_c=-1"], "'loss_weighting.cagrad_c' and 'loss_weighting.gradnorm_alpha'"),
        (["sampling.mode=every"], "sampling.mode"),
    ],
)
def test_refusals(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(REPO / "configs" / "tiny.yaml", overrides)


def test_a_gradient_method_on_one_task_is_refused(tmp_path):
    raw = yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text())
    raw["tasks"] = raw["tasks"][:1]
    (tmp_path / "one.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="but this config trains one task"):
        load_config(tmp_path / "one.yaml", [*ALL_TASKS, "loss_weighting.strategy=cagrad", f"data_dir={REPO}"])


def test_all_tasks_mode_trains_every_unit_in_every_micro_batch(tmp_path):
    config = tiny(
        tmp_path, "training.max_steps=3", "training.gradient_accumulation_steps=2", "training.warmup_steps=0"
    )
    result = train(config)
    units = ["sentiment", "ner", "intensity", "emotions", "similarity"]
    assert result.tasks == units * 6


@pytest.mark.parametrize("strategy", ["static", "pcgrad", "cagrad", "gradnorm"])
def test_resume_is_bit_identical(tmp_path, strategy):
    overrides = [
        f"loss_weighting.strategy={strategy}",
        "training.max_steps=12",
        "training.save_every=6",
        "training.eval_every=100",
        "training.log_every=3",
    ]
    straight = train(tiny(tmp_path / "straight", *overrides))
    train(tiny(tmp_path / "split", *overrides), stop_at_step=6)
    resumed = train(tiny(tmp_path / "split", *overrides), resume="latest")
    final = "checkpoints/checkpoint-0000012/model.safetensors"
    a, b = load_file(straight.output_dir / final), load_file(resumed.output_dir / final)
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    assert straight.tasks[-len(resumed.tasks) :] == resumed.tasks
    if strategy == "gradnorm":  # the learned weights moved, and came back on resume
        after_resume, uninterrupted = (last_loss_weights(run.output_dir) for run in (resumed, straight))
        assert after_resume == uninterrupted and after_resume["ner"] != 1.0


def last_loss_weights(output_dir):
    lines = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    return [line["loss_weights"] for line in lines if "loss_weights" in line][-1]


@pytest.mark.slow
def test_two_processes_average_each_tasks_gradient_before_combining(tmp_path):
    run_two_processes("tests/ddp_gradients.py", str(tmp_path))
    results = json.loads((tmp_path / "ddp_gradients.json").read_text())
    for strategy, result in results.items():
        assert result["two_processes"] == pytest.approx(result["one_process"], abs=1e-6), strategy
        # Combining on each process and then averaging would not give the same update: the test can tell.
        assert result["combined_per_process"] != pytest.approx(result["one_process"], abs=1e-3), strategy


@pytest.mark.slow
def test_two_processes_train_in_lockstep_with_a_gradient_method(tmp_path):
    overrides = [*ALL_TASKS, "loss_weighting.strategy=gradnorm", "training.max_steps=6", "training.warmup_steps=0"]
    run_two_processes("tests/ddp_train.py", str(tmp_path), *overrides)
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["weights"] == rank1["weights"]
    assert rank0["tasks"] == ["sentiment", "ner", "intensity", "emotions", "similarity"] * 12  # 6 steps x 2 micro


class RecordingMethod:
    """A gradient method that keeps the rows it is given and applies their plain sum."""

    combines_gradients = True

    def __call__(self, task, loss):
        return loss

    def combine(self, grads, losses, step):
        self.grads, self.losses = grads.clone(), losses.clone()
        return grads.sum(dim=0)


def test_each_row_is_its_tasks_own_gradient_of_the_encoder(tiny_config):
    from hfmtl.model.encoder import build_model
    from hfmtl.train.step import forward_backward_all_tasks

    torch.manual_seed(0)
    labels = {"sentiment": ("n", "p"), "ner": ("O", "B-PER", "I-PER"), "intensity": None, "emotions": ("a", "b")}
    model = build_model(tiny_config, {**labels, "similarity": None})
    model.eval()  # no dropout: the reference passes below must see the same function
    ids = torch.tensor([[2, 40, 41, 3], [2, 42, 3, 0]])
    tags = torch.tensor([[-100, 1, 2, -100]] * 2)
    batches = {
        "sentiment": {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": torch.tensor([1, 0])},
        "ner": {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": tags},
    }

    class Loader:
        def __init__(self):
            self.order = iter(["sentiment", "ner"] * 2)

        def next_batch(self):
            task = next(self.order)
            return task, batches[task]

    config = load_config(REPO / "configs/tiny.yaml", ["training.gradient_accumulation_steps=2"])
    method, units = RecordingMethod(), {"sentiment": ["sentiment"], "ner": ["ner"]}
    fp32 = accelerator_with_precision("no", cpu=True)  # not whatever an earlier test's run left in this process
    forward_backward_all_tasks(model, method, Loader(), units, fp32, config, step_number=0)
    encoder = list(model.encoder.parameters())
    combined = torch.cat([p.grad.reshape(-1) for p in encoder])
    head_grad = model.heads["ner"].out.weight.grad.clone()  # a head keeps its own task's gradient
    for row, task in enumerate(units):
        model.zero_grad(set_to_none=True)
        model(task=task, **batches[task]).loss.backward()  # two micro-batches of loss / 2 each: the same
        expected = torch.cat([p.grad.reshape(-1) for p in encoder])
        assert torch.allclose(method.grads[row], expected, atol=1e-6), task
        if task == "ner":
            assert torch.allclose(head_grad, model.heads["ner"].out.weight.grad, atol=1e-6)
    assert torch.allclose(combined, method.grads.sum(dim=0))


@pytest.mark.parametrize("strategy", ["pcgrad", "gradnorm"])
def test_under_a_grad_scaler_the_methods_see_true_gradients_and_the_optimizer_unscales(strategy):
    from types import SimpleNamespace

    from hfmtl.config.run_config import LossWeightingConfig
    from hfmtl.train.loss_weighting import ProjectedGradients
    from hfmtl.train.step import combine_rows

    def method():
        if strategy == "gradnorm":
            return GradNormWeighting({"a": 1.0, "b": 1.0}, ["a", "b"], alpha=1.5)
        return ProjectedGradients({"a": 1.0, "b": 1.0}, LossWeightingConfig(strategy=strategy), seed=0)

    rows, losses = torch.tensor([[3.0, 1.0], [-2.0, 0.5]]), torch.tensor([0.7, 0.3])
    plain, scaled = method(), method()
    unscaled = combine_rows(None, [], rows, losses, plain, SimpleNamespace(num_processes=1, scaler=None), 0)
    scaler = SimpleNamespace(get_scale=lambda: 1024.0)
    result = combine_rows(None, [], rows * 1024, losses, scaled, SimpleNamespace(num_processes=1, scaler=scaler), 0)
    assert result == pytest.approx(unscaled * 1024)  # the optimizer's unscaling then gives the true update
    if strategy == "gradnorm":
        assert scaled.logits.grad == pytest.approx(plain.logits.grad * 1024)
