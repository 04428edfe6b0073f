"""The lecture's Jacobians (its layout: rows index the variable) against PyTorch in float64.

The oracle is ``torch.autograd.functional.jacobian`` (numerator layout: rows index the
outputs), transposed here, on functions written here with torch operations.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from chainrule.lecture import matrix
from chainrule.lecture.jacobians import (
    chain_rule,
    lecture_layout,
    linear_jacobian,
    relu_jacobian,
    vjp_versus_jacobian,
    wide_layer,
)

TOL = 1e-12


def torch_jacobian_lecture(fn: object, x: np.ndarray) -> np.ndarray:
    """PyTorch's Jacobian of fn at x, transposed to the lecture's layout."""
    jac = torch.autograd.functional.jacobian(fn, torch.from_numpy(x))  # type: ignore[arg-type]
    return np.asarray(jac.numpy()).T


def random_net(sizes: list[int], seed: int) -> matrix.Network:
    rng = np.random.default_rng(seed)
    net = matrix.init_network(sizes, rng)
    for b in net.biases:
        b[:] = rng.normal(0.0, 0.5, b.shape)
    return net


@given(d_in=st.integers(1, 6), d_out=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_linear_jacobian_is_omega_transposed_in_the_lecture_layout(
    d_in: int, d_out: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    omega, beta, h = (
        rng.standard_normal((d_out, d_in)),
        rng.standard_normal(d_out),
        rng.standard_normal(d_in),
    )
    got = linear_jacobian(omega, beta, h)
    assert got.shape == (d_in, d_out)  # one row per variable h_j, one column per f_i
    np.testing.assert_allclose(got, omega.T, rtol=0, atol=TOL)
    theirs = torch_jacobian_lecture(
        lambda t: torch.from_numpy(beta) + torch.from_numpy(omega) @ t, h
    )
    np.testing.assert_allclose(got, theirs, rtol=0, atol=TOL)


def test_lecture_layout_is_the_transpose_of_func_jacobian_for_a_non_square_map() -> None:
    omega = np.arange(6.0).reshape(2, 3)  # f: R³ -> R²
    got = linear_jacobian(omega, np.zeros(2), np.ones(3))
    assert got.shape == (3, 2)
    assert got[2, 1] == omega[1, 2]  # ∂f_1/∂h_2 sits in row h_2, column f_1
    with pytest.raises(ValueError, match="lecture_layout"):
        lecture_layout(np.zeros((2, 3, 4)))


@given(seed=st.integers(0, 2**16), d=st.integers(1, 8))
def test_relu_jacobian_is_diagonal_with_the_indicator(seed: int, d: int) -> None:
    b = np.random.default_rng(seed).standard_normal(d)
    got = relu_jacobian(b)
    expected = np.diag((b > 0).astype(np.float64))
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, torch_jacobian_lecture(torch.relu, b))


def test_relu_jacobian_at_zero_is_the_subgradient_zero_like_pytorch() -> None:
    b = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(relu_jacobian(b), torch_jacobian_lecture(torch.relu, b))
    assert relu_jacobian(b)[1, 1] == 0.0


def torch_network(net: matrix.Network) -> object:
    ws = [torch.from_numpy(w) for w in net.weights]
    bs = [torch.from_numpy(b.ravel()) for b in net.biases]

    def f(h: torch.Tensor) -> torch.Tensor:
        for k, (w, b) in enumerate(zip(ws, bs, strict=True)):
            h = b + w @ (torch.relu(h) if k > 0 else h)
        return h

    return f


@pytest.mark.parametrize(
    ("sizes", "seed"), [([3, 4, 2], 0), ([2, 5, 5, 3], 1), ([6, 3, 4, 4, 1], 2), ([1, 1], 3)]
)
def test_chain_rule_product_of_jacobians_equals_the_composite_jacobian(
    sizes: list[int], seed: int
) -> None:
    net = random_net(sizes, seed)
    h = np.random.default_rng(seed + 100).standard_normal(sizes[0])
    result = chain_rule(net, h)
    theirs = torch_jacobian_lecture(torch_network(net), h)
    assert result.composite.shape == (sizes[0], sizes[-1])
    np.testing.assert_allclose(result.composite, theirs, rtol=0, atol=TOL)
    np.testing.assert_allclose(result.product, theirs, rtol=0, atol=TOL)
    # the factors alternate Ω_kᵀ and diag(𝕀[f_{k-1} > 0]), in the lecture's order
    assert len(result.factors) == 2 * len(net.weights) - 1 == len(result.names)
    f = net.biases[0].ravel() + net.weights[0] @ h
    for k, w in enumerate(net.weights):
        np.testing.assert_allclose(result.factors[2 * k], w.T, rtol=0, atol=TOL)
        if k > 0:
            np.testing.assert_array_equal(result.factors[2 * k - 1], np.diag(f > 0) * 1.0)
            f = net.biases[k].ravel() + w @ np.maximum(f, 0)


@pytest.mark.parametrize(("d_in", "d_out"), [(1, 1), (7, 3), (3, 7), (64, 128)])
def test_vjp_equals_jacobian_times_u_without_forming_it(d_in: int, d_out: int) -> None:
    layer = wide_layer(d_in, d_out, seed=d_in * d_out)
    r = vjp_versus_jacobian(layer)
    omega, beta, u = (torch.from_numpy(a) for a in (layer.omega, layer.beta, layer.u))

    def f(t: torch.Tensor) -> torch.Tensor:
        return torch.relu(beta + omega @ t)

    th = torch.from_numpy(layer.h).requires_grad_(True)
    f(th).backward(u)
    assert th.grad is not None
    for route in (r.via_vjp, r.via_backward, r.via_jacobian):
        assert route.shape == (d_in,)
        np.testing.assert_allclose(route, th.grad.numpy(), rtol=0, atol=1e-12)
    # u·J with PyTorch's own Jacobian, formed
    np.testing.assert_allclose(
        r.via_vjp, torch_jacobian_lecture(f, layer.h) @ layer.u, rtol=0, atol=1e-12
    )
    assert r.max_abs_difference <= 1e-12


def test_forming_the_jacobian_costs_about_d_out_times_more_than_the_vjp() -> None:
    d_in, d_out = 300, 200
    r = vjp_versus_jacobian(wide_layer(d_in, d_out))
    assert r.jacobian_bytes == d_in * d_out * 8  # float64 D_in × D_out
    assert r.vjp_bytes == max(d_in, d_out) * 8  # vectors only
    assert (r.jacobian_backward_passes, r.vjp_backward_passes) == (d_out, 1)
    matvec = 2 * d_in * d_out
    assert r.vjp_flops == matvec + d_out
    assert r.jacobian_flops == d_out * (matvec + d_out) + matvec
    assert r.jacobian_flops / r.vjp_flops > d_out


def test_wide_layer_rejects_empty_widths() -> None:
    with pytest.raises(ValueError, match="wide_layer: widths must be positive"):
        wide_layer(0, 3)
