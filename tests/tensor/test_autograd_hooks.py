"""Hooks, retain_grad and higher-order gradients, each against PyTorch running the same program.

Second derivatives are also checked against central finite differences of the gradient in
float64, an oracle independent of both engines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from chainrule import Tensor
from chainrule.tensor import ops

# PyTorch warns that backward(create_graph=True) makes a parameter/gradient cycle (its issue).
pytestmark = pytest.mark.filterwarnings("ignore:Using backward.. with create_graph:UserWarning")

RNG = np.random.default_rng(3)
X = RNG.standard_normal(4)
W = RNG.standard_normal((3, 4))


def _leaf(a: np.ndarray) -> tuple[Tensor, torch.Tensor]:
    return Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def _grad(t: Tensor) -> np.ndarray:
    assert t.grad is not None, "no gradient was stored"
    return t.grad.numpy()


def _tgrad(t: torch.Tensor) -> np.ndarray:
    assert t.grad is not None
    return t.grad.detach().numpy()


# -- register_hook ---------------------------------------------------------------------------


def _recorder(log: list[np.ndarray], change: Callable[[Any], Any] | None = None) -> Any:
    """A hook (for both engines) that logs the gradient it sees and returns change(g)."""

    def hook(g: Any) -> Any:
        log.append(g.detach().numpy().copy())
        return None if change is None else change(g)

    return hook


def _close(ours: np.ndarray, theirs: np.ndarray) -> None:
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_leaf_hook_sees_the_gradient_and_its_result_replaces_it() -> None:
    x, tx = _leaf(X)
    seen: list[np.ndarray] = []
    tseen: list[np.ndarray] = []
    x.register_hook(_recorder(seen, lambda g: g * 3.0))
    tx.register_hook(_recorder(tseen, lambda g: g * 3.0))
    (x.sin() * x).sum().backward()
    (tx.sin() * tx).sum().backward()
    assert len(seen) == len(tseen) == 1
    _close(seen[0], tseen[0])
    _close(_grad(x), _tgrad(tx))
    _close(_grad(x), 3 * (np.cos(X) * X + np.sin(X)))


def test_non_leaf_hook_replaces_the_gradient_flowing_to_the_parents() -> None:
    x, tx = _leaf(X)
    w, tw = _leaf(W)
    h, th = w @ x, tw @ tx
    seen: list[np.ndarray] = []
    tseen: list[np.ndarray] = []
    h.register_hook(_recorder(seen, lambda g: g.clip(-0.1, 0.1)))
    th.register_hook(_recorder(tseen, lambda g: g.clamp(-0.1, 0.1)))
    h.tanh().sum().backward()
    th.tanh().sum().backward()
    _close(seen[0], tseen[0])
    for ours, theirs in ((x, tx), (w, tw)):
        _close(_grad(ours), _tgrad(theirs))
    # The clipped gradient really flowed on: ∂/∂x = Wᵀ clip(g).
    _close(_grad(x), W.T @ np.clip(seen[0], -0.1, 0.1))


def test_hooks_run_in_registration_order_each_seeing_the_previous_result() -> None:
    def program(x: Any, first: list[np.ndarray], second: list[np.ndarray]) -> None:
        h = x * 3.0
        h.register_hook(_recorder(first, lambda g: g * 2.0))
        h.register_hook(_recorder(second))
        (h * h).sum().backward()

    x, tx = _leaf(X)
    logs: list[list[np.ndarray]] = [[], [], [], []]
    program(x, logs[0], logs[1])
    program(tx, logs[2], logs[3])
    assert all(len(log) == 1 for log in logs)
    _close(logs[1][0], 2 * logs[0][0])  # the second hook saw the first one's result
    _close(logs[0][0], logs[2][0])
    _close(logs[1][0], logs[3][0])
    _close(_grad(x), _tgrad(tx))


def test_a_hook_runs_once_with_the_summed_gradient_of_a_reused_tensor() -> None:
    x, tx = _leaf(X)
    calls: list[np.ndarray] = []
    tcalls: list[np.ndarray] = []
    x.register_hook(_recorder(calls))
    tx.register_hook(_recorder(tcalls))
    (x * x + x.exp() + x).sum().backward()
    (tx * tx + tx.exp() + tx).sum().backward()
    assert len(calls) == len(tcalls) == 1
    _close(calls[0], tcalls[0])


def test_removed_hook_is_not_called() -> None:
    x, tx = _leaf(X)
    calls: list[np.ndarray] = []
    handle = x.register_hook(_recorder(calls, lambda g: g * 100.0))
    thandle = tx.register_hook(lambda g: g * 100.0)
    handle.remove()
    thandle.remove()
    handle.remove()  # removing twice is harmless
    (x * 2.0).sum().backward()
    (tx * 2.0).sum().backward()
    assert calls == []
    np.testing.assert_array_equal(_grad(x), _tgrad(tx))
    np.testing.assert_array_equal(_grad(x), np.full(4, 2.0))


def test_register_hook_on_a_tensor_without_grad_raises_as_in_pytorch() -> None:
    with pytest.raises(RuntimeError, match="requires_grad_"):
        Tensor(X).register_hook(lambda g: None)
    with pytest.raises(RuntimeError):
        torch.tensor(X).register_hook(lambda g: None)


def test_a_hook_returning_the_wrong_shape_names_both_shapes() -> None:
    x = Tensor(X, requires_grad=True)
    h = x * 2.0
    h.register_hook(lambda g: g.sum())
    with pytest.raises(ValueError, match=r"shape \(\).*\(4,\)"):
        h.sum().backward()


# -- retain_grad -----------------------------------------------------------------------------


def test_non_leaf_grad_is_kept_only_after_retain_grad_as_in_pytorch() -> None:
    x, tx = _leaf(X)
    h, kept = x * 3.0, x.exp()
    th, tkept = tx * 3.0, tx.exp()
    kept.retain_grad()
    tkept.retain_grad()
    x.retain_grad()  # on a leaf: nothing changes
    (h * kept).sum().backward()
    (th * tkept).sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(_grad(kept), _tgrad(tkept), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(_grad(kept), 3 * X, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(_grad(x), _tgrad(tx), rtol=1e-12, atol=1e-14)


def test_retained_grad_accumulates_and_reflects_hooks_as_in_pytorch() -> None:
    x, tx = _leaf(X)
    h, th = x * 3.0, tx * 3.0
    for t in (h, th):
        t.retain_grad()
        t.register_hook(lambda g: g * 10.0)
    out, tout = (h * h).sum(), (th * th).sum()
    out.backward(retain_graph=True)
    out.backward()
    tout.backward(retain_graph=True)
    tout.backward()
    np.testing.assert_allclose(_grad(h), _tgrad(th), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(_grad(h), 2 * 10 * 2 * 3 * X, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(_grad(x), _tgrad(tx), rtol=1e-12, atol=1e-14)


# -- higher order ----------------------------------------------------------------------------


def _f(x: Any, w: Any) -> Any:
    """A scalar mixing matmul, tanh, pow, sin and mul: its Hessian is dense."""
    return ((w @ x).tanh() ** 3).sum() + (x.sin() * x * x).sum()


def test_create_graph_gives_hessian_vector_products_equal_to_pytorch() -> None:
    x, tx = _leaf(X)
    w, tw = _leaf(W)
    v = RNG.standard_normal(4)
    _f(x, w).backward(create_graph=True)
    _f(tx, tw).backward(create_graph=True)
    gx, tgx = x.grad, tx.grad
    assert gx is not None and tgx is not None
    assert gx.requires_grad and tgx.requires_grad
    np.testing.assert_allclose(gx.numpy(), tgx.detach().numpy(), rtol=1e-12, atol=1e-14)
    # Without zeroing, the second backward adds onto the first gradient, in both engines.
    (gx * Tensor(v)).sum().backward()
    (tgx * torch.from_numpy(v)).sum().backward()
    np.testing.assert_allclose(_grad(x), _tgrad(tx), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(_grad(w), _tgrad(tw), rtol=1e-10, atol=1e-13)


def _numeric_hvp(grad_fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, v: np.ndarray,
                 eps: float = 1e-5) -> np.ndarray:  # fmt: skip
    return (grad_fn(x + eps * v) - grad_fn(x - eps * v)) / (2 * eps)


def test_second_derivative_equals_central_differences_of_the_gradient() -> None:
    def gradient(a: np.ndarray) -> np.ndarray:
        x = Tensor(a, requires_grad=True)
        _f(x, Tensor(W)).backward()
        return _grad(x)

    v = RNG.standard_normal(4)
    x = Tensor(X, requires_grad=True)
    _f(x, Tensor(W)).backward(create_graph=True)
    g = x.grad
    assert g is not None
    x.grad = None
    (g * Tensor(v)).sum().backward()
    np.testing.assert_allclose(_grad(x), _numeric_hvp(gradient, X, v), rtol=1e-6, atol=1e-8)


def test_third_derivative_by_repeated_create_graph() -> None:
    x, tx = _leaf(np.array([0.3, -1.2, 2.0]))
    derivatives = []
    for lib_x in (x, tx):
        y = (lib_x.exp() * lib_x.sin()).sum()
        for _ in range(2):
            y.backward(create_graph=True)
            g = lib_x.grad
            assert g is not None
            lib_x.grad = None
            y = g.sum()
        y.backward()
        derivatives.append(lib_x.grad)
    ours, theirs = derivatives
    assert isinstance(ours, Tensor) and isinstance(theirs, torch.Tensor)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-14)
    # (e^x sin x)''' = 2 e^x (cos x - sin x)
    a = np.array([0.3, -1.2, 2.0])
    np.testing.assert_allclose(
        ours.numpy(), 2 * np.exp(a) * (np.cos(a) - np.sin(a)), rtol=1e-12, atol=1e-14
    )


def test_double_backward_through_linear_equals_pytorch() -> None:
    x, tx = _leaf(RNG.standard_normal((2, 4)))
    w, tw = _leaf(W)
    b, tb = _leaf(RNG.standard_normal(3))
    ops.linear(x, w, b).sigmoid().sum().backward(create_graph=True)
    torch.nn.functional.linear(tx, tw, tb).sigmoid().sum().backward(create_graph=True)
    assert w.grad is not None and tw.grad is not None
    gw, tgw = w.grad, tw.grad
    for t in (x, w, b, tx, tw, tb):
        t.grad = None
    (gw * gw).sum().backward()
    (tgw * tgw).sum().backward()
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(_grad(ours), _tgrad(theirs), rtol=1e-10, atol=1e-13)
