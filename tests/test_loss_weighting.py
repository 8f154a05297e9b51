import math

import pytest
import torch

from hfmtl.train.loss_weighting import UncertaintyWeighting


def test_uncertainty_keeps_the_ratio_of_static_weights_at_its_optimum():
    """For a constant loss L, d/ds of w * (exp(-s) * L + s) is 0 at exp(-s) = 1 / L whatever w is, so the
    effective weights w * exp(-s) end in the ratio of the static weights (with w inside, w would cancel)."""
    weighting = UncertaintyWeighting({"a": 1.0, "b": 3.0})
    optimizer = torch.optim.SGD(weighting.parameters(), lr=0.05)
    loss = torch.tensor(2.0)
    for _ in range(3000):
        optimizer.zero_grad()
        (weighting("a", loss) + weighting("b", loss)).backward()
        optimizer.step()
    assert weighting.log_variances.detach().tolist() == pytest.approx([math.log(2.0)] * 2, abs=1e-4)
    effective = weighting.weights()
    assert effective["a"] == pytest.approx(0.5, abs=1e-4) and effective["b"] == pytest.approx(1.5, abs=1e-4)
    assert effective["b"] / effective["a"] == pytest.approx(3.0, rel=1e-3)


def test_uncertainty_term_by_hand():
    weighting = UncertaintyWeighting({"a": 2.0})
    with torch.no_grad():
        weighting.log_variances.fill_(0.5)
    assert weighting("a", torch.tensor(3.0)).item() == pytest.approx(2.0 * (math.exp(-0.5) * 3.0 + 0.5))
