"""The moving average of the weights (`training.ema_decay`): its arithmetic, the swap in and out, and a run that
evaluates and saves the average, checkpoints it and resumes it exactly."""

import pytest
import torch
from safetensors.torch import load_file
from test_trainer import tiny
from torch import nn

from hfmtl.errors import ConfigError
from hfmtl.train.averaging import WeightAverage, averaged_weights
from hfmtl.train.trainer import train

SHORT = ["training.max_steps=12", "training.eval_every=100", "training.save_every=6", "training.log_every=3"]


def test_the_average_follows_the_warmed_up_decay_by_hand():
    layer = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    average = WeightAverage(layer, decay=0.5)
    expected = 1.0
    for step, value in enumerate([3.0, -1.0, 5.0]):
        with torch.no_grad():
            layer.weight.fill_(value)
        average.update()
        decay = min(0.5, (1 + step) / (10 + step))  # 0.1, 2/11, 0.25: the warmup, below 0.5 here
        expected = decay * expected + (1 - decay) * value
        assert average.average[0].flatten().tolist() == pytest.approx([expected, expected], abs=1e-6)
    assert average.updates == 3


def test_swapping_in_shows_the_average_and_restores_the_live_weights_even_on_error():
    layer = nn.Linear(3, 2)
    average = WeightAverage(layer, decay=0.9)
    with torch.no_grad():
        layer.weight.add_(1.0)
    live = layer.weight.detach().clone()
    average.update()
    with pytest.raises(RuntimeError, match="inside"), average.swapped_in():
        assert torch.equal(layer.weight, average.average[0])
        assert not torch.equal(layer.weight, live)
        raise RuntimeError("inside")
    assert torch.equal(layer.weight, live)
    with averaged_weights(None):  # no average: the live weights stay
        assert torch.equal(layer.weight, live)


def test_a_checkpoint_of_other_parameters_is_refused():
    average = WeightAverage(nn.Linear(2, 2), decay=0.9)
    other = WeightAverage(nn.Sequential(nn.Linear(2, 2)), decay=0.9).state_dict()
    with pytest.raises(ValueError, match="other parameters"):
        average.load_state_dict(other)


def test_the_run_saves_the_average_and_a_resume_continues_it_exactly(tmp_path):
    ema = "training.ema_decay=0.8"
    straight = train(tiny(tmp_path / "a", *SHORT, ema))
    # evaluated once, at the end: the saved model is the average, which the last checkpoint holds too
    saved = load_file(straight.model_dir / "model.safetensors")
    last = straight.output_dir / "checkpoints" / "checkpoint-0000012"
    kept = torch.load(last / "custom_checkpoint_0.pkl", weights_only=True)
    assert kept["updates"] == 12
    live = dict(straight.model.named_parameters())
    assert set(kept["average"]) == set(live)
    for name, tensor in kept["average"].items():
        assert torch.equal(saved[name], tensor)
    assert any(not torch.equal(saved[name], live[name].detach()) for name in kept["average"])

    train(tiny(tmp_path / "b", *SHORT, ema), stop_at_step=6)
    resumed = train(tiny(tmp_path / "b", *SHORT, ema), resume="latest")
    again = load_file(resumed.model_dir / "model.safetensors")
    assert saved.keys() == again.keys() and all(torch.equal(saved[name], again[name]) for name in saved)


def test_without_an_average_the_saved_model_is_the_live_weights(tmp_path):
    result = train(tiny(tmp_path, *SHORT))
    saved = load_file(result.model_dir / "model.safetensors")
    assert all(torch.equal(saved[name], p.detach()) for name, p in result.model.named_parameters())
    assert not (result.output_dir / "checkpoints" / "checkpoint-0000012" / "custom_checkpoint_0.pkl").exists()


@pytest.mark.parametrize("decay", ["0", "1", "1.5", "-0.2"])
def test_a_decay_outside_the_open_interval_is_refused(tmp_path, decay):
    with pytest.raises(ConfigError, match=r"'training.ema_decay' must be between 0 and 1 \(exclusive\) or null"):
        tiny(tmp_path, f"training.ema_decay={decay}")
