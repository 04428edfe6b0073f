"""Layers against PyTorch in float64 (values and gradients), GELU and erf against mpmath,
and Dropout's training and evaluation behaviour."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import pytest
import torch

from chainrule import Tensor, nn
from chainrule.nn import functional as F


def _compare(
    ours: nn.Module,
    theirs: Callable[[torch.Tensor], torch.Tensor],
    x: np.ndarray,
    rtol: float = 1e-13,
    atol: float = 1e-300,
) -> None:
    """Forward values and the input gradient for a random upstream gradient."""
    xt = Tensor(x, requires_grad=True)
    out = ours(xt)
    g = np.random.default_rng(7).standard_normal(out.shape)
    out.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    tout = theirs(tx)
    tout.backward(torch.tensor(g))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=rtol, atol=atol)
    assert xt.grad is not None and tx.grad is not None
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=atol)


ACTIVATIONS: list[tuple[nn.Module, torch.nn.Module]] = [
    (nn.ReLU(), torch.nn.ReLU()),
    (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    (nn.Tanh(), torch.nn.Tanh()),
    (nn.Sigmoid(), torch.nn.Sigmoid()),
    (nn.GELU(), torch.nn.GELU()),
    (nn.GELU("tanh"), torch.nn.GELU("tanh")),
]


@pytest.mark.parametrize(("ours", "theirs"), ACTIVATIONS, ids=lambda m: repr(m))
def test_activation_values_and_gradients_match_pytorch(ours: nn.Module, theirs: Any) -> None:
    # Moderate inputs, and 0 (the ReLU kink, where both use the subgradient 0).
    x = np.concatenate([np.random.default_rng(0).uniform(-4, 4, 200), [0.0, -1.0, 1.0]])
    # The tanh form of GELU computes 1 + tanh(u) ≈ 0 for x < 0 (in both libraries): there
    # only an absolute error of a few ulps of 1 is meaningful.
    atol = 1e-15 if repr(ours) == "GELU(approximate='tanh')" else 1e-300
    _compare(ours, theirs, x.reshape(7, 29), rtol=1e-12, atol=atol)
    assert repr(ours) == repr(theirs) or isinstance(ours, nn.LeakyReLU)


def test_linear_matches_pytorch_for_batched_inputs() -> None:
    rng = np.random.default_rng(0)
    ours = nn.Linear(5, 3, dtype=np.float64, rng=1)
    theirs = torch.nn.Linear(5, 3).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.numpy()))
        theirs.bias.copy_(torch.tensor(ours.bias.numpy()))  # type: ignore[union-attr]
    x = rng.standard_normal((2, 4, 5))  # leading axes are batch axes
    _compare(ours, theirs, x)
    assert ours.weight.grad is not None and ours.bias is not None and ours.bias.grad is not None
    assert theirs.weight.grad is not None and theirs.bias.grad is not None
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-13)
    assert repr(ours) == repr(theirs)


def _gelu_exact(x: float) -> float:
    mpmath.mp.dps = 40
    v = mpmath.mpf(x)
    return float(v * mpmath.ncdf(v))


def _gelu_grad_exact(x: float) -> float:
    mpmath.mp.dps = 40
    v = mpmath.mpf(x)
    return float(mpmath.ncdf(v) + v * mpmath.npdf(v))


def test_gelu_is_accurate_far_into_the_negative_tail() -> None:
    # x Φ(x) for x << 0 is tiny: a (1 + erf) formula loses every digit there (PyTorch
    # returns -4.9e-15 for -8 instead of -5.0e-15); the erfc form keeps them all.
    x = np.array([-30.0, -20.0, -12.0, -8.0, -5.0, -1e-3, 0.0, 1e-8, 0.5, 3.0, 9.0, 40.0])
    xt = Tensor(x, requires_grad=True)
    y = F.gelu(xt)
    y.sum().backward()
    assert xt.grad is not None
    # Rounding x/√2 costs a relative error of ~u·x² in erfc (its condition number): 1e-13
    # at x = -30 is the floating-point floor, hence rtol 1e-12.
    np.testing.assert_allclose(y.numpy(), [_gelu_exact(v) for v in x], rtol=1e-12, atol=0)
    np.testing.assert_allclose(
        xt.grad.numpy(), [_gelu_grad_exact(v) for v in x], rtol=1e-12, atol=1e-300
    )


def test_gelu_second_derivative_matches_pytorch_double_backward() -> None:
    x = np.linspace(-3, 3, 13)
    xt = Tensor(x, requires_grad=True)
    F.gelu(xt).sum().backward(create_graph=True)
    first = xt.grad
    assert first is not None
    xt.grad = None
    first.sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad(torch.nn.functional.gelu(tx).sum(), tx, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), tx)
    assert xt.grad is not None
    np.testing.assert_allclose(xt.grad.numpy(), gg.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_erf_primitives_match_pytorch_with_their_gradients(name: str) -> None:
    x = np.linspace(-6, 6, 61)
    xt = Tensor(x, requires_grad=True)
    y = getattr(F, name)(xt)
    y.sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch, name)(tx)
    ty.sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-14, atol=1e-300)
    assert xt.grad is not None and tx.grad is not None
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-13)


def test_math_fallback_for_erf_agrees_with_the_vectorised_one() -> None:
    x = np.linspace(-7, 7, 141)
    exact_erf = [math.erf(v) for v in x]
    np.testing.assert_allclose(F._math_erf(x), exact_erf, rtol=1e-15)
    np.testing.assert_allclose(F._math_erfc(x), [math.erfc(v) for v in x], rtol=1e-15)
    np.testing.assert_allclose(F._erf_np(x), exact_erf, rtol=1e-14)
    assert F._math_erf(x.astype(np.float32)).dtype == np.float32


# -- dropout ----------------------------------------------------------------------------------


def test_dropout_zeroes_a_fraction_p_and_scales_the_rest() -> None:
    p, n = 0.3, 200_000
    layer = nn.Dropout(p, rng=0)
    x = Tensor(np.ones(n), requires_grad=True)
    y = layer(x)
    out = y.numpy()
    kept = out != 0
    # The zeroed fraction is Binomial(n, p)/n with sd √(p(1-p)/n) = 0.001: 5 sd allowed.
    assert abs((1 - kept.mean()) - p) < 5e-3
    np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-15)  # inverted: E[y] = x
    y.sum().backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), out)  # ∂y/∂x = mask / (1 - p)


def test_dropout_is_the_identity_in_eval_mode_and_reproducible_with_a_seed() -> None:
    x = Tensor(np.arange(1.0, 101.0))
    layer = nn.Dropout(0.5, rng=3)
    assert layer.eval()(x) is x
    a = nn.Dropout(0.5, rng=3)(x).numpy()
    b = nn.Dropout(0.5, rng=3)(x).numpy()
    np.testing.assert_array_equal(a, b)
    layer.train()
    c, d = layer(x).numpy(), layer(x).numpy()
    assert not np.array_equal(c, d)  # a fresh mask on every call
    nn.manual_seed(5)
    e = nn.Dropout(0.5)(x).numpy()
    nn.manual_seed(5)
    np.testing.assert_array_equal(nn.Dropout(0.5)(x).numpy(), e)


def test_dropout_edge_probabilities_and_errors() -> None:
    x = Tensor(np.ones((3, 4), dtype=np.float32))
    assert nn.Dropout(0.0)(x) is x
    zero = nn.Dropout(1.0)(x)
    assert zero.dtype == np.float32 and not zero.numpy().any()
    assert nn.Dropout(0.25)(x).dtype == np.float32
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)
