"""The NumPy-only fast paths of the built-in VJP rules give what their general paths give.

A normal backward pass runs the rules on plain NumPy arrays, and several rules take a
shortcut there (sum and mean write their gradient out instead of calling
``np.broadcast_to``, max/min count ties with the ufunc itself, matmul computes its 2-D
products transposed). With ``create_graph=True`` the same rules run on Tensors and take
the general path. Each test compares the two paths exactly, and both with PyTorch in
float64 and with central finite differences, over the cases the shortcuts special-case:
every axis/keepdims form, sizes on both sides of the size that selects a view, ties,
non-finite incoming gradients, NumPy scalars as the incoming gradient, and memory layouts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from chainrule import Tensor, gradcheck
from chainrule.tensor import ops
from chainrule.tensor.ops import reduce

RNG = np.random.default_rng(11)

# (shape, axis, keepdims): full, one axis, negative, several, keepdims on and off.
REDUCTIONS = [
    ((3, 4), None, False),
    ((3, 4), None, True),
    ((3, 4), 1, True),
    ((3, 4), 0, False),
    ((2, 3, 4), -1, False),
    ((2, 3, 4), (0, 2), True),
    ((2, 3, 4), (0, 2), False),
    ((5,), 0, False),
    ((), None, False),
]


def _grad_both_ways(f: Callable[[Tensor], Tensor], x: np.ndarray, g: np.ndarray) -> Any:
    """∂(Σ g·f(x))/∂x from a normal backward pass (arrays) and from a recorded one."""
    grads = []
    for create_graph in (False, True):
        t = Tensor(x.copy(), requires_grad=True)
        (f(t) * Tensor(g)).sum().backward(create_graph=create_graph)
        assert t.grad is not None
        grads.append(t.grad.numpy())
    return grads


def _torch_grad(f: Callable[[torch.Tensor], torch.Tensor], x: np.ndarray, g: np.ndarray) -> Any:
    t = torch.tensor(x, requires_grad=True)
    (f(t) * torch.tensor(g)).sum().backward()
    assert t.grad is not None
    return t.grad.numpy()


def _dims(axis: Any, ndim: int) -> Any:
    if axis is None:
        return tuple(range(ndim))
    return axis


@pytest.mark.parametrize("name", ["sum", "mean"])
@pytest.mark.parametrize(("shape", "axis", "keepdims"), REDUCTIONS)
@pytest.mark.parametrize("spread_limit", [0, 1 << 15])  # always a view / written out here
def test_sum_and_mean_gradients_are_the_same_on_arrays_and_tensors_and_pytorchs(
    name: str,
    shape: tuple[int, ...],
    axis: Any,
    keepdims: bool,
    spread_limit: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reduce, "_MATERIALIZE", spread_limit)
    x = RNG.standard_normal(shape)
    ans_shape = np.sum(x, axis=axis, keepdims=keepdims).shape
    g = RNG.standard_normal(ans_shape)
    f = lambda t: getattr(t, name)(axis=axis, keepdims=keepdims)  # noqa: E731
    fast, general = _grad_both_ways(f, x, g)
    np.testing.assert_array_equal(fast, general)
    dims = _dims(axis, len(shape))
    theirs = _torch_grad(lambda t: getattr(torch, name)(t, dim=dims, keepdim=keepdims), x, g)
    np.testing.assert_allclose(fast, theirs, rtol=1e-12, atol=1e-15)
    assert gradcheck(lambda t: (f(t) ** 2).sum(), Tensor(x, requires_grad=True), order=2)


def test_a_written_out_sum_gradient_is_a_leafs_own_writable_grad() -> None:
    # Below the size limit the rule returns a new array; two leaves must not share it.
    x, y = (Tensor(RNG.standard_normal((4, 3)), requires_grad=True) for _ in range(2))
    (x.sum(axis=1, keepdims=True) + y.sum(axis=1, keepdims=True)).sum().backward()
    assert x.grad is not None and y.grad is not None
    assert x.grad.numpy().flags.writeable
    assert not np.shares_memory(x.grad.numpy(), y.grad.numpy())
    x.grad.numpy()[0, 0] = 7.0  # one gradient written: the other unchanged
    np.testing.assert_array_equal(y.grad.numpy(), np.ones((4, 3)))


def test_the_sum_rule_takes_a_numpy_scalar_as_its_incoming_gradient() -> None:
    # -(s)/n hands sum's rule a NumPy scalar (0-d arithmetic), as the plain MLP step does.
    x = RNG.standard_normal((5, 2)).astype(np.float32)
    t = Tensor(x, requires_grad=True)
    (-(t.sum()) / 5).backward()
    assert t.grad is not None and t.grad.dtype == np.float32
    np.testing.assert_array_equal(t.grad.numpy(), np.full((5, 2), np.float32(-1) / 5))
    g = reduce._sum_rule(np.float32(2.5), None, x, None, False)
    assert isinstance(g, np.ndarray) and g.shape == (5, 2) and g.dtype == np.float32
    np.testing.assert_array_equal(g, np.full((5, 2), 2.5, np.float32))


TIES = [
    (np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, -1.0, 5.0]]), 1, True),
    (np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, -1.0, 5.0]]), 0, False),
    (np.array([[1.0, 3.0, 3.0], [3.0, 2.0, -3.0]]), None, False),
    (np.array([[1.0, 3.0, 3.0], [3.0, 2.0, -3.0]]), None, True),
    (np.array([[[4.0, 4.0], [1.0, 4.0]], [[0.0, 2.0], [2.0, 2.0]]]), (1, 2), False),
    (np.array(2.0), None, False),
]


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize(("x", "axis", "keepdims"), TIES)
def test_max_and_min_share_the_gradient_among_ties_as_pytorch(
    name: str, x: np.ndarray, axis: Any, keepdims: bool
) -> None:
    x = x if name == "max" else -x  # the same ties for min
    g = RNG.standard_normal(np.max(x, axis=axis, keepdims=keepdims).shape)
    f = lambda t: getattr(t, name)(axis=axis, keepdims=keepdims)  # noqa: E731
    fast, general = _grad_both_ways(f, x, g)
    np.testing.assert_array_equal(fast, general)
    dims = _dims(axis, x.ndim)
    torch_name = "amax" if name == "max" else "amin"
    theirs = _torch_grad(lambda t: getattr(torch, torch_name)(t, dim=dims, keepdim=keepdims), x, g)
    np.testing.assert_allclose(fast, theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_and_min_gradients_pass_finite_differences_to_second_order(name: str) -> None:
    x = Tensor(RNG.standard_normal((3, 5)), requires_grad=True)  # no ties: differentiable
    f = lambda t: (getattr(t, name)(axis=1, keepdims=True) ** 2 * t).sum()  # noqa: E731
    assert gradcheck(f, x, order=2)


def test_max_gives_zero_away_from_the_maxima_even_for_a_non_finite_gradient() -> None:
    # A selection, not a product: inf·0 would be nan at the elements that are not maxima.
    x = np.array([[1.0, 4.0, 4.0], [0.0, 2.0, -1.0]], np.float32)
    for g in (np.array([[np.inf], [np.nan]], np.float32), np.float32(np.inf)):
        axis = None if np.ndim(g) == 0 else 1
        ans = np.max(x, axis=axis, keepdims=axis is not None)
        got = reduce._extremum_rule(g, ans, x, axis, axis is not None)
        hit = x == np.max(x, axis=axis, keepdims=True)
        assert np.all(got[~hit] == 0) and not np.signbit(got[~hit]).any()
        count = hit.sum(axis=axis, keepdims=True)
        np.testing.assert_array_equal(got[hit], np.broadcast_to(g / count, x.shape)[hit])


def _layouts(a: np.ndarray) -> list[np.ndarray]:
    """The same matrix in C order, Fortran order and as a transposed view."""
    return [np.ascontiguousarray(a), np.asfortranarray(a), np.ascontiguousarray(a.T).T]


@pytest.mark.parametrize("layout", range(3))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_2d_matmul_and_its_gradients_match_numpy_and_pytorch_in_every_layout(
    layout: int, dtype: type
) -> None:
    a, b = RNG.standard_normal((6, 4)), RNG.standard_normal((4, 5))
    x, y = _layouts(a.astype(dtype))[layout], _layouts(b.astype(dtype))[2 - layout]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    g = RNG.standard_normal((6, 5)).astype(dtype)
    tx, ty = Tensor(x, requires_grad=True), Tensor(y, requires_grad=True)
    out = tx @ ty
    np.testing.assert_allclose(out.numpy(), np.matmul(x, y), rtol=tol, atol=tol)
    (out * Tensor(g)).sum().backward()
    px, py = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    (px @ py * torch.tensor(g)).sum().backward()
    assert tx.grad is not None and ty.grad is not None
    assert px.grad is not None and py.grad is not None
    np.testing.assert_allclose(tx.grad.numpy(), px.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(ty.grad.numpy(), py.grad.numpy(), rtol=tol, atol=tol)
    for grad in (tx.grad.numpy(), ty.grad.numpy()):  # a .grad owns its memory
        assert grad.flags.writeable and grad.base is None


@pytest.mark.parametrize(
    ("xs", "ys"), [((3, 4), (4, 2)), ((2, 3, 4), (4, 2)), ((3, 4), (2, 4, 5)), ((4,), (4, 3))]
)
def test_matmul_gradients_pass_finite_differences_to_second_order(
    xs: tuple[int, ...], ys: tuple[int, ...]
) -> None:
    x = Tensor(RNG.standard_normal(xs), requires_grad=True)
    y = Tensor(RNG.standard_normal(ys), requires_grad=True)
    assert gradcheck(lambda a, b: ((a @ b) ** 2).sum(), x, y, order=2)


def test_the_plain_softmax_step_gradients_equal_pytorchs() -> None:
    # benchmarks/compile.py's plain step: every fast path above in one graph, in float64.
    x, w, b = RNG.standard_normal((7, 4)), RNG.standard_normal((4, 3)), RNG.standard_normal(3)
    target = np.eye(3)[RNG.integers(0, 3, 7)]

    def loss(h: Any, w: Any, b: Any, t: Any, lib: Any) -> Any:
        h = lib.relu(h @ w + b) if lib is torch else (h @ w + b).relu()
        m = h.amax(dim=1, keepdim=True) if lib is torch else h.max(axis=1, keepdims=True)
        z = h - m
        s = z.exp().sum(dim=1, keepdim=True) if lib is torch else z.exp().sum(1, keepdims=True)
        return -((z - s.log()) * t).sum() / 7

    ours = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    loss(*ours, Tensor(target), ops).backward()
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    loss(*theirs, torch.tensor(target), torch).backward()
    for o, t in zip(ours, theirs, strict=True):
        assert o.grad is not None and t.grad is not None
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ((4, 3), (3,)),  # a bias: leading axis
        ((4, 3), (4, 1)),  # a kept axis, no reshape
        ((2, 4, 3), (4, 1)),  # both: leading axis and kept axis
        ((2, 4, 3), (1, 3)),
        ((4, 3), ()),  # everything: a 0-d array, not a NumPy scalar
        ((4, 1), (1,)),
        ((4, 3), (1, 1)),
    ],
)
def test_sum_to_undoes_broadcasting_in_every_form(src: tuple[int, ...], dst: Any) -> None:
    from chainrule.tensor.ops.shape import _sum_to

    x = RNG.standard_normal(src)
    lead = len(src) - len(dst)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(dst) if n == 1 and src[lead + i] != 1
    )
    expected = np.sum(x, axis=axes, keepdims=True).reshape(dst)
    for shape in (dst, list(dst)):
        got = _sum_to(x, shape)
        assert type(got) is np.ndarray and got.shape == tuple(dst)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    t = Tensor(x.copy(), requires_grad=True)
    assert gradcheck(lambda a: (ops.sum_to(a, dst) ** 2).sum(), t, order=2)


@pytest.mark.parametrize("shape", [(3,), (100, 16), (128, 256)])  # 0-d to large
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_the_relu_rule_selects_exactly_like_where_for_non_finite_gradients(
    shape: tuple[int, ...], dtype: Any
) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[:3] = [0.0, -0.0, 1.0]  # the subgradient 0 at 0, as PyTorch
    g = rng.standard_normal(shape).astype(dtype)
    g.flat[:3] = [np.inf, np.nan, -0.0]  # off the mask -> +0.0; on it, kept (also -0.0)
    ans = np.maximum(x, 0)
    rule = ops.relu.rules[0]
    assert rule is not None
    got = rule(g, ans, x)
    want = np.where(ans > 0, g, dtype(0.0))
    assert got.dtype == dtype and got.shape == shape
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))  # bitwise
    tx = torch.tensor(x, requires_grad=True)
    torch.relu(tx).backward(torch.tensor(g))
    assert tx.grad is not None
    np.testing.assert_array_equal(got, tx.grad.numpy())
