"""Initialisation: sample statistics against the He and Glorot formulas (fixed seeds).

Tolerances. The sample variance s² of n independent draws has relative standard deviation
√(2/n) for a normal distribution and √(0.8/n) for a uniform one (excess kurtosis -1.2).
With n = 2·10⁶ weights these are 1.0e-3 and 6.3e-4, so a 1% tolerance is 10+ standard
deviations: it never fails by chance, yet a wrong formula (fan_out for fan_in, a missing
factor 2 or √3) is off by 33% or more and is caught.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from chainrule import Tensor, nn
from chainrule.nn import init

SHAPE = (1000, 2000)  # (out, in): fan_in = 2000 and fan_out = 1000 differ on purpose
FAN_IN, FAN_OUT = 2000, 1000
N = FAN_IN * FAN_OUT


def _weight() -> nn.Parameter:
    return nn.Parameter(np.zeros(SHAPE))


@pytest.mark.parametrize(
    ("fill", "variance"),
    [
        (lambda w: init.kaiming_normal_(w, nonlinearity="relu", rng=0), 2 / FAN_IN),
        (lambda w: init.kaiming_uniform_(w, nonlinearity="relu", rng=0), 2 / FAN_IN),
        (
            lambda w: init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", rng=0),
            2 / FAN_OUT,
        ),
        (lambda w: init.kaiming_normal_(w, a=0.2, rng=0), 2 / (1 + 0.04) / FAN_IN),
        (lambda w: init.xavier_normal_(w, rng=0), 2 / (FAN_IN + FAN_OUT)),
        (lambda w: init.xavier_uniform_(w, rng=0), 2 / (FAN_IN + FAN_OUT)),
        (lambda w: init.xavier_uniform_(w, gain=5 / 3, rng=0), (5 / 3) ** 2 * 2 / 3000),
    ],
    ids=[
        "he_normal",
        "he_uniform",
        "he_fan_out",
        "he_leaky",
        "glorot_normal",
        "glorot_uniform",
        "glorot_tanh_gain",
    ],
)
def test_sample_variance_matches_the_formula(fill: object, variance: float) -> None:
    w = _weight()
    fill(w)  # type: ignore[operator]
    values = w.numpy()
    assert abs(values.var() / variance - 1) < 0.01
    # The mean is 0: its standard error is σ/√n; 6 standard errors allowed.
    assert abs(values.mean()) < 6 * math.sqrt(variance / N)


def test_uniform_forms_use_the_bound_sqrt3_sigma() -> None:
    w = init.kaiming_uniform_(_weight(), nonlinearity="relu", rng=1)
    bound = math.sqrt(3) * math.sqrt(2 / FAN_IN)
    assert np.abs(w.numpy()).max() <= bound
    assert np.abs(w.numpy()).max() > 0.999 * bound  # 2·10⁶ draws reach the edge


def test_linear_default_is_pytorchs_and_he_normal_is_a_named_option() -> None:
    layer = nn.Linear(2000, 1000, dtype=np.float64, rng=0, init="he")
    assert abs(layer.weight.numpy().var() / (2 / 2000) - 1) < 0.01
    assert layer.bias is not None and not layer.bias.numpy().any()
    assert nn.MLP(2000, [], 1000, dtype=np.float64, rng=0).state_dict()["layers.0.bias"].any() == 0
    torch_like = nn.Linear(2000, 1000, dtype=np.float64, rng=0)
    bound = 1 / math.sqrt(2000)  # U(±1/√fan_in): variance 1/(3 fan_in)
    assert abs(torch_like.weight.numpy().var() / (bound**2 / 3) - 1) < 0.01
    assert torch_like.bias is not None and np.abs(torch_like.bias.numpy()).max() <= bound


def test_he_keeps_the_activation_scale_through_deep_relu_layers() -> None:
    # The justification of the default: with σ² = 2/fan_in the mean square of the
    # pre-activations stays put through 30 ReLU layers; PyTorch's U(±1/√fan_in) (variance
    # 1/(3 fan_in)) divides it by ~6 per layer. At finite width each layer multiplies it by
    # a random factor 1 ± O(1/√width); over 30 layers that spreads the ratio over roughly
    # 0.3 to 4 (seen across seeds), hence a factor 10 either way, against (1/6)^29 ≈ 1e-23.
    # No biases: they would hold the activations up and hide the weights' effect.
    width, depth = 256, 30
    x = np.random.default_rng(0).standard_normal((512, width))

    def last_over_first(kind: str) -> float:
        h, rng, squares = Tensor(x), np.random.default_rng(1), []
        for _ in range(depth):
            layer = nn.Linear(width, width, False, np.float64, rng, kind)  # type: ignore[arg-type]
            f = layer(h)
            squares.append(float((f.numpy() ** 2).mean()))
            h = f.relu()
        return squares[-1] / squares[0]

    assert 0.1 < last_over_first("he") < 10
    assert last_over_first("pytorch") < 1e-15


def test_seeds_reproduce_and_init_keeps_the_parameter() -> None:
    a = nn.MLP(3, [5], 2, rng=7)
    b = nn.MLP(3, [5], 2, rng=7)
    c = nn.MLP(3, [5], 2, rng=8)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())
    assert not np.array_equal(a.layers[0].weight.numpy(), c.layers[0].weight.numpy())
    nn.manual_seed(3)
    d = nn.Linear(4, 4).weight.numpy().copy()
    nn.manual_seed(3)
    np.testing.assert_array_equal(nn.Linear(4, 4).weight.numpy(), d)

    w = nn.Parameter(np.zeros((3, 4)))
    array, version = w.numpy(), w._version[0]
    assert init.xavier_normal_(w, rng=0) is w
    assert w.numpy() is array and w._version[0] == version + 1


def test_gains_and_errors() -> None:
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match=r"at least 2 axes .* got shape \(5,\)"):
        init.kaiming_normal_(nn.Parameter(np.zeros(5)))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_normal_(_weight(), mode="fan")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"rng: expected a numpy\.random\.Generator"):
        init.normal_(_weight(), rng="seed")  # type: ignore[arg-type]
