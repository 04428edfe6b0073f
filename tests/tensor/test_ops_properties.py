"""Property tests of the tensor ops on hypothesis-generated shapes.

1. Each op's gradient equals central finite differences in float64 (``fd_vjp`` below, an
   oracle independent of both chainrule and PyTorch), for any shape NumPy accepts:
   broadcasting, size-1 and zero-size axes, any axis/keepdims of a reduction.
2. Random programs (a random sequence of ops on a few inputs, with shared
   sub-expressions) give PyTorch's value and every leaf's gradient, first and second order.

Values come from a NumPy generator seeded by hypothesis; inputs are kept away from kinks
and ties (a grid offset by half a step), where finite differences are meaningless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from chainrule.tensor import Tensor, ops
from chainrule.tensor.ops.loss import cross_entropy
from tests.tensor.op_twins import assert_close
from tests.tensor.programs import LEAF_SHAPES, Steps, leaves, programs, run_program, weighted_sum

Shape = tuple[int, ...]
Built = tuple[Callable[..., Any], list[np.ndarray]]


def fd_vjp(
    f: Callable[..., Any], arrays: list[np.ndarray], w: np.ndarray, h: float = 1e-6
) -> list[Any]:
    """Central differences of φ = Σ w ⊙ f(arrays) with respect to each float array."""

    def phi(args: list[np.ndarray]) -> float:
        out = f(*[Tensor(a) if a.dtype.kind == "f" else a for a in args])
        return float((out.numpy() * w).sum())

    grads: list[Any] = []
    for k, a in enumerate(arrays):
        if a.dtype.kind != "f":
            grads.append(None)
            continue
        g = np.zeros_like(a)
        args = [b.copy() for b in arrays]
        for i in np.ndindex(a.shape):
            args[k][i] = a[i] + h
            up = phi(args)
            args[k][i] = a[i] - h
            down = phi(args)
            args[k][i] = a[i]
            g[i] = (up - down) / (2 * h)
        grads.append(g)
    return grads


def check_against_fd(f: Callable[..., Any], arrays: list[np.ndarray], seed: int) -> None:
    xs = [Tensor(a, requires_grad=True) if a.dtype.kind == "f" else a for a in arrays]
    out = f(*xs)
    w = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(w)
    for k, (x, fd) in enumerate(zip(xs, fd_vjp(f, arrays, w), strict=True)):
        if isinstance(x, Tensor):
            assert x.grad is not None and x.grad.shape == x.shape
            scale = 1.0 + float(np.abs(fd).max(initial=0.0))
            np.testing.assert_allclose(x.grad.numpy(), fd, rtol=1e-5, atol=1e-6 * scale,
                                       err_msg=f"gradient of input {k}")  # fmt: skip


# -- inputs -------------------------------------------------------------------------------

SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
NONEMPTY = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, min_side=0, max_side=3)
TRIPLES = hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, min_side=0, max_side=3)
# Batched matmul shapes, 1-D operands included: "?" marks an axis that may be absent.
MATMUL = hnp.mutually_broadcastable_shapes(signature="(m?,k),(k,n?)->(m?,n?)", max_dims=2,
                                           min_side=0, max_side=3)  # fmt: skip


def gen(data: st.DataObject) -> np.random.Generator:
    return np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))


def grid(rng: np.random.Generator, shape: Shape, offset: float = 0.0) -> np.ndarray:
    """Quarter steps in [-2, 2] plus ``offset``: two grids offset by 1/8 never meet."""
    return rng.integers(-8, 9, shape) / 4 + offset


def away_from(rng: np.random.Generator, shape: Shape, kink: float = 0.0) -> np.ndarray:
    return kink + rng.choice([-1.0, 1.0], shape) * rng.uniform(0.05, 2.0, shape)


def distinct(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Values at least 0.1 apart: no ties for max/min."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0


def axis_args(data: st.DataObject, ndim: int) -> tuple[Any, bool]:
    some = st.integers(-ndim, ndim - 1) | hnp.valid_tuple_axes(ndim, min_size=1)
    axis = data.draw(st.none() | some if ndim else st.none(), label="axis")
    return axis, data.draw(st.booleans(), label="keepdims")


# -- one builder per op: the function and its inputs --------------------------------------

UNARY: dict[str, tuple[Callable[..., Any], str]] = {
    "neg": (ops.negative, "normal"), "exp": (ops.exp, "normal"), "log": (ops.log, "positive"),
    "sqrt": (ops.sqrt, "positive"), "tanh": (ops.tanh, "normal"),
    "sigmoid": (ops.sigmoid, "normal"), "relu": (ops.relu, "kink"),
    "leaky_relu": (lambda x: x.leaky_relu(0.2), "kink"), "abs": (ops.absolute, "kink"),
    "sin": (ops.sin, "normal"), "cos": (ops.cos, "normal"),
}  # fmt: skip
BINARY: dict[str, tuple[Callable[..., Any], str, str]] = {
    "add": (ops.add, "normal", "normal"), "sub": (ops.subtract, "normal", "normal"),
    "mul": (ops.multiply, "normal", "normal"), "div": (ops.divide, "normal", "kink"),
    "pow": (ops.power, "positive", "normal"),
}  # fmt: skip


def values(rng: np.random.Generator, shape: Shape, kind: str) -> np.ndarray:
    if kind == "positive":
        return rng.uniform(0.3, 2.0, shape)
    return away_from(rng, shape) if kind == "kink" else rng.standard_normal(shape)


def build(name: str, data: st.DataObject) -> Built:
    rng = gen(data)
    if name in UNARY:
        f, kind = UNARY[name]
        return f, [values(rng, data.draw(SHAPES), kind)]
    if name in BINARY:
        f, kx, ky = BINARY[name]
        sx, sy = data.draw(PAIRS).input_shapes
        return f, [values(rng, sx, kx), values(rng, sy, ky)]
    if name in ("maximum", "minimum"):
        sx, sy = data.draw(PAIRS).input_shapes
        return getattr(ops, name), [grid(rng, sx), grid(rng, sy, 0.125)]
    if name == "number_operand":
        c = data.draw(st.floats(0.5, 3.0) | st.floats(-3.0, -0.5) | st.sampled_from([2, 3]))
        fns: dict[str, Callable[..., Any]] = {
            "x+c": lambda x: x + c, "c+x": lambda x: c + x, "x-c": lambda x: x - c,
            "c-x": lambda x: c - x, "x*c": lambda x: x * c, "c*x": lambda x: c * x,
            "x/c": lambda x: x / c, "c/x": lambda x: c / x, "x**c": lambda x: x**c,
            "|c|**x": lambda x: abs(c) ** x,
        }  # fmt: skip
        return fns[data.draw(st.sampled_from(sorted(fns)))], [
            rng.uniform(0.3, 2.0, data.draw(SHAPES))
        ]
    if name == "where":
        sc, sx, sy = data.draw(TRIPLES).input_shapes
        return ops.where, [rng.random(sc) > 0.5, rng.standard_normal(sx), rng.standard_normal(sy)]
    if name == "clip":
        lo = data.draw(st.sampled_from([None, -1.0, -0.5, 0.0]))
        hi = data.draw(st.sampled_from([None, 0.25, 1.0]))
        return lambda x: x.clip(lo, hi), [grid(rng, data.draw(SHAPES), 0.125)]
    if name == "matmul":
        sx, sy = data.draw(MATMUL).input_shapes
        return ops.matmul, [rng.standard_normal(sx), rng.standard_normal(sy)]
    if name in ("sum", "mean", "max", "min", "logsumexp", "var"):
        shape = data.draw(NONEMPTY if name in ("max", "min", "var") else SHAPES)
        axis, keep = axis_args(data, len(shape))
        x = distinct(rng, shape) if name in ("max", "min") else rng.standard_normal(shape)
        if name == "var":
            n = x.size // np.sum(x, axis=axis, keepdims=True).size  # elements per slice
            ddof = data.draw(st.sampled_from([0, 1])) if n > 1 else 0
            return lambda t: t.var(axis=axis, keepdims=keep, ddof=ddof), [x]
        return lambda t: getattr(t, name)(axis=axis, keepdims=keep), [x * 3]
    if name in ("softmax", "log_softmax"):
        shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4))
        axis = data.draw(st.integers(-len(shape), len(shape) - 1))
        shift = data.draw(st.sampled_from([0.0, 30.0, -30.0]))
        return lambda t: getattr(t, name)(axis), [rng.standard_normal(shape) * 3 + shift]
    return build_shape_op(name, data, rng)


def build_shape_op(name: str, data: st.DataObject, rng: np.random.Generator) -> Built:
    shape = data.draw(SHAPES)
    x = rng.standard_normal(shape)
    if name == "reshape":
        target = data.draw(st.sampled_from([(-1,), shape[::-1], (1, *shape), (x.size, 1)]))
        return lambda t: t.reshape(target), [x]
    if name == "transpose":
        perm = data.draw(st.permutations(range(len(shape))))
        neg = [a - len(shape) if data.draw(st.booleans()) else a for a in perm]  # any spelling
        return lambda t: t.permute(*neg), [x]
    if name == "broadcast_to":
        other = data.draw(hnp.broadcastable_shapes(shape, max_dims=4, min_side=0, max_side=3))
        target = np.broadcast_shapes(shape, other)
        return lambda t: t.broadcast_to(target), [x]
    if name == "squeeze_unsqueeze":
        ones = [a for a, n in enumerate(shape) if n == 1]
        some_ones = st.sets(st.sampled_from(ones)).map(tuple) if ones else st.nothing()
        axes = data.draw(st.none() | some_ones)
        squeezed = len(shape) - len(ones if axes is None else axes)
        at = data.draw(st.integers(-squeezed - 1, squeezed))
        return lambda t: t.squeeze(axes).unsqueeze(at), [x]
    if name == "getitem_basic":
        index = data.draw(hnp.basic_indices(shape, allow_newaxis=True))
        return lambda t: t[index], [x]
    if name == "getitem_integer_arrays":
        shape = data.draw(NONEMPTY.filter(lambda s: len(s) > 0))
        # Up to 25 indices into at most 4 places per axis: repeats are likely (scatter-add).
        result = hnp.array_shapes(min_dims=1, max_dims=2, max_side=5)
        index = data.draw(hnp.integer_array_indices(shape, result_shape=result))
        return lambda t: t[index], [rng.standard_normal(shape)]
    if name == "getitem_mask":
        k = data.draw(st.integers(0, len(shape)))
        mask = rng.random(shape[:k]) > 0.4
        return lambda t: t[mask], [x]
    if name in ("concatenate", "stack"):
        if name == "concatenate" and not shape:
            shape, x = (2,), rng.standard_normal(2)  # a 0-d array has no axis to join along
        ndim = len(shape) + (name == "stack")  # of the result
        axis = data.draw(st.integers(-ndim, ndim - 1))
        pieces = [x]
        for _ in range(data.draw(st.integers(0, 2))):
            s = list(shape)
            if name == "concatenate":
                s[axis] = data.draw(st.integers(0, 3))
            pieces.append(rng.standard_normal(s))
        return lambda *ts: getattr(ops, name)(*ts, axis=axis), pieces
    if name == "linear":
        batch = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
        n_in, n_out = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
        arrays = [rng.standard_normal((*batch, n_in)), rng.standard_normal((n_out, n_in))]
        if data.draw(st.booleans()):
            arrays.append(rng.standard_normal(n_out))
        return ops.linear, arrays
    if name == "cross_entropy":
        n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
        reduction = data.draw(st.sampled_from(["mean", "sum", "none"]))
        labels = rng.integers(0, c, n)
        logits = rng.standard_normal((n, c)) * 2
        return lambda z: cross_entropy(z, labels, reduction=reduction), [logits]
    raise AssertionError(name)


OPS = [*UNARY, *BINARY, "maximum", "minimum", "number_operand", "where", "clip", "matmul",
       "sum", "mean", "max", "min", "logsumexp", "var", "softmax", "log_softmax", "reshape",
       "transpose", "broadcast_to", "squeeze_unsqueeze", "getitem_basic",
       "getitem_integer_arrays", "getitem_mask", "concatenate", "stack", "linear",
       "cross_entropy"]  # fmt: skip


@pytest.mark.parametrize("name", OPS)
@given(data=st.data())
def test_gradient_equals_central_differences(name: str, data: st.DataObject) -> None:
    f, arrays = build(name, data)
    arrays = [np.array(a) for a in arrays]  # 0-d draws come back as NumPy scalars
    check_against_fd(f, arrays, seed=data.draw(st.integers(0, 2**16), label="w"))


# -- random programs vs PyTorch ----------------------------------------------------------


@given(shapes=LEAF_SHAPES, steps=programs(), seed=st.integers(0, 2**32 - 1))
def test_random_programs_match_pytorch(shapes: Any, steps: Steps, seed: int) -> None:
    rng = np.random.default_rng(seed)
    xs, txs = leaves([rng.standard_normal(s) for s in shapes.input_shapes])
    results, tresults = run_program(steps, xs, txs)
    # Every input and result feeds the loss: shared sub-expressions collect gradient from
    # several paths (the chain rule's sum over paths).
    ws = [rng.standard_normal(r.shape) for r in xs + results]
    loss = weighted_sum(xs + results, ws, np)
    tloss = weighted_sum(txs + tresults, ws, torch)
    assert_close(loss, tloss, "loss")
    loss.backward()
    tloss.backward()
    for k, (x, tx) in enumerate(zip(xs, txs, strict=True)):
        assert_close(x.grad, tx.grad, f"gradient of input {k}")
