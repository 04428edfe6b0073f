"""Every tensor op next to its PyTorch twin, on inputs chosen to cover shapes and edge values.

Shared by ``test_ops_pytorch.py`` (values and gradients) and ``test_ops_second_order.py``
(double backward). A case's float64 inputs require a gradient; integer and boolean inputs
(indices, masks, class labels) are passed as constants, a NumPy array to chainrule and a
torch tensor to PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chainrule.tensor import Tensor, backend, ops
from chainrule.tensor.ops.loss import cross_entropy
from tests.conftest import array_backends

Fn = Callable[..., Any]


@dataclass(frozen=True)
class Case:
    """One op on one set of inputs: ``fn`` (chainrule) and ``tfn`` (PyTorch) must agree."""

    id: str
    fn: Fn
    tfn: Fn
    inputs: tuple[np.ndarray, ...]
    second_order: bool = True  # False where PyTorch's double backward is itself nan/inf


_rng = np.random.default_rng(20240607)


def normal(*shape: int) -> np.ndarray:
    return _rng.standard_normal(shape)


def positive(*shape: int) -> np.ndarray:
    return _rng.uniform(0.5, 2.0, shape)


def away_from_zero(*shape: int) -> np.ndarray:
    return _rng.choice([-1.0, 1.0], shape) * _rng.uniform(0.5, 2.0, shape)


def arr(values: Any) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def dims(axis: int | tuple[int, ...] | None, ndim: int) -> tuple[int, ...]:
    """NumPy's ``axis`` as PyTorch's ``dim`` (None: every axis)."""
    if axis is None:
        return tuple(range(ndim))
    return (axis,) if isinstance(axis, int) else axis


CASES: list[Case] = []


def case(id: str, fn: Fn, tfn: Fn, *inputs: np.ndarray, second_order: bool = True) -> None:
    CASES.append(Case(id, fn, tfn, tuple(inputs), second_order))


# -- arithmetic, with broadcasting, size-1 and zero-size axes ------------------------------

BINARY_SHAPES = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 4)), ((), (2, 3)),
                 ((2, 0, 3), (3,)), ((1,), (5,)), ((4, 1, 2), (3, 1))]  # fmt: skip
for sx, sy in BINARY_SHAPES:
    s = f"{sx}{sy}"
    case(f"add{s}", lambda x, y: x + y, lambda x, y: x + y, normal(*sx), normal(*sy))
    case(f"sub{s}", lambda x, y: x - y, lambda x, y: x - y, normal(*sx), normal(*sy))
    case(f"mul{s}", lambda x, y: x * y, lambda x, y: x * y, normal(*sx), normal(*sy))
    case(f"div{s}", lambda x, y: x / y, lambda x, y: x / y, normal(*sx), away_from_zero(*sy))
    case(f"pow{s}", lambda x, y: x**y, lambda x, y: x**y, positive(*sx), normal(*sy))
    case(f"pow_swapped{s}", lambda x, y: y**x, lambda x, y: y**x, normal(*sx), positive(*sy))

# Python numbers on either side.
NUMBER_OPS: list[tuple[str, Fn]] = [
    ("x+2.5", lambda x: x + 2.5), ("2.5+x", lambda x: 2.5 + x), ("x-2.5", lambda x: x - 2.5),
    ("2.5-x", lambda x: 2.5 - x), ("x*-1.5", lambda x: x * -1.5), ("-1.5*x", lambda x: -1.5 * x),
    ("x/3", lambda x: x / 3), ("3/x", lambda x: 3 / x), ("x**2", lambda x: x**2),
    ("x**3", lambda x: x**3), ("x**0", lambda x: x**0), ("x**1", lambda x: x**1),
    ("x**-2", lambda x: x**-2), ("2.0**x", lambda x: 2.0**x), ("2**x", lambda x: 2**x),
    ("0.5**x", lambda x: 0.5**x), ("-x", lambda x: -x), ("x*x", lambda x: x * x),
]  # fmt: skip
for name, f in NUMBER_OPS:
    case(name, f, f, away_from_zero(2, 3))
case("x**0.5", lambda x: x**0.5, lambda x: x**0.5, positive(2, 3))
case("x**-1.5", lambda x: x**-1.5, lambda x: x**-1.5, positive(4))
case("x**2.5", lambda x: x**2.5, lambda x: x**2.5, positive(3, 1))

# pow's edges: 0 and negative bases, zero exponents (value nan/inf exactly where PyTorch's is).
EDGE_BASES = arr([0.0, 0.0, 0.0, 0.0, -1.5, -1.5, 2.0])
for e in [2, 1, 0, 0.5, -1, 3.0]:
    case(f"pow_edge_x**{e}", lambda x, e=e: x**e, lambda x, e=e: x**e, EDGE_BASES,
         second_order=e not in (0.5, -1))  # fmt: skip
case("pow_edge_tensor_exponent", lambda x, y: x**y, lambda x, y: x**y,
     arr([0.0, 0.0, 0.0, 0.0, 1.5, -2.0, -2.0]), arr([2.0, 0.0, -1.0, 0.5, 0.0, 2.0, 3.0]),
     second_order=False)  # fmt: skip

# -- unary functions ----------------------------------------------------------------------

UNARY_SHAPES = [(), (5,), (2, 3, 4), (0, 3), (1, 1)]
UNARY: list[tuple[str, Fn, Fn, Callable[..., np.ndarray]]] = [
    ("neg", ops.negative, torch.neg, normal),
    ("exp", lambda x: x.exp(), torch.exp, normal),
    ("log", lambda x: x.log(), torch.log, positive),
    ("sqrt", lambda x: x.sqrt(), torch.sqrt, positive),
    ("tanh", lambda x: x.tanh(), torch.tanh, normal),
    ("sigmoid", lambda x: x.sigmoid(), torch.sigmoid, normal),
    ("relu", lambda x: x.relu(), torch.relu, normal),
    ("leaky_relu", lambda x: x.leaky_relu(), F.leaky_relu, normal),
    ("leaky_relu_0.2", lambda x: x.leaky_relu(0.2), lambda x: F.leaky_relu(x, 0.2), normal),
    ("abs", lambda x: x.abs(), torch.abs, normal),
    ("abs_builtin", abs, abs, normal),
    ("sin", lambda x: x.sin(), torch.sin, normal),
    ("cos", lambda x: x.cos(), torch.cos, normal),
]
for name, f, tf, make in UNARY:
    for shape in UNARY_SHAPES:
        case(f"{name}{shape}", f, tf, make(*shape))

# Kinks and extremes: relu/abs/leaky_relu at exactly 0, sigmoid/tanh/exp far out, sqrt at 0.
KINKS = arr([-2.0, -0.0, 0.0, 1e-300, -1e-300, 3.0])
for name, f, tf, _ in UNARY:
    if name in ("relu", "leaky_relu", "leaky_relu_0.2", "abs", "neg", "sin", "cos", "tanh"):
        case(f"{name}_at_kinks", f, tf, KINKS)
# An infinite upstream gradient where the op passes none: the mask selects 0, it does not
# multiply (inf * 0 = nan), as PyTorch's threshold and clamp backward do.
case("relu_then_sqrt", lambda x: x.relu().sqrt(), lambda x: x.relu().sqrt(), KINKS[:3],
     second_order=False)  # fmt: skip
case("clip_then_sqrt", lambda x: x.clip(0.0, 2.0).sqrt(), lambda x: x.clamp(0.0, 2.0).sqrt(),
     arr([-1.0, 1.0, 3.0]), second_order=False)  # fmt: skip
EXTREMES = arr([-800.0, -40.0, -1e-8, 0.0, 40.0, 800.0])
case("sigmoid_extremes", lambda x: x.sigmoid(), torch.sigmoid, EXTREMES)
case("tanh_extremes", lambda x: x.tanh(), torch.tanh, EXTREMES)
case("exp_extremes", lambda x: x.exp(), torch.exp, arr([-800.0, -40.0, 0.0, 40.0, 700.0]))
case("sqrt_at_zero", lambda x: x.sqrt(), torch.sqrt, arr([0.0, 1e-300, 4.0]), second_order=False)
case("log_at_zero", lambda x: x.log(), torch.log, arr([0.0, 1e-300, 4.0]), second_order=False)

# -- selection ----------------------------------------------------------------------------

TIES_X, TIES_Y = arr([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]]), arr([[1.0, 3.0, 3.0], [0.0, 1.0, 2.0]])
for name, f, tf in [
    ("maximum", ops.maximum, torch.maximum),
    ("minimum", ops.minimum, torch.minimum),
]:
    case(f"{name}_ties", f, tf, TIES_X, TIES_Y)
    case(f"{name}_broadcast", f, tf, normal(3, 1), normal(4))
    case(f"{name}_tie_broadcast", f, tf, arr([[0.0], [1.0]]), arr([0.0, 1.0, 2.0]))
    case(f"{name}_number", lambda x, f=f: f(x, 0.0),
         lambda x, tf=tf: tf(x, torch.tensor(0.0, dtype=torch.float64)), KINKS)  # fmt: skip
    case(f"{name}_zero_size", f, tf, normal(0, 3), normal(3))

AT_BOUNDS = arr([-2.0, -0.5, -0.4999, 0.0, 0.9999, 1.0, 1.5])
case("clip_both", lambda x: x.clip(-0.5, 1.0), lambda x: x.clamp(-0.5, 1.0), AT_BOUNDS)
case("clip_min", lambda x: x.clip(min=-0.5), lambda x: x.clamp(min=-0.5), AT_BOUNDS)
case("clip_max", lambda x: x.clip(max=1.0), lambda x: x.clamp(max=1.0), AT_BOUNDS)
case("clamp_3d", lambda x: x.clamp(-0.3, 0.3), lambda x: x.clamp(-0.3, 0.3), normal(2, 3, 4))
case("clip_empty_range", lambda x: x.clip(1.0, -1.0), lambda x: x.clamp(1.0, -1.0), AT_BOUNDS)

COND = _rng.random((2, 3, 4)) > 0.5
case("where", ops.where, torch.where, COND, normal(2, 3, 4), normal(2, 3, 4))
case("where_broadcast", ops.where, torch.where, COND[0, :, :1], normal(4), normal(2, 1, 1))
case("where_number", lambda c, x: ops.where(c, x, 0.0),
     lambda c, x: torch.where(c, x, 0.0), COND, normal(3, 4))  # fmt: skip
case("where_tensor_condition", lambda x, y: ops.where(x > y, x * 2, y),
     lambda x, y: torch.where(x > y, x * 2, y), normal(3, 4), normal(4))  # fmt: skip

# -- matmul with NumPy semantics ----------------------------------------------------------

MATMUL_SHAPES = [
    ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)), ((2, 1, 2, 3), (4, 3, 2)), ((3,), (5, 3, 4)), ((5, 2, 3), (3,)),
    ((0, 3), (3, 2)), ((2, 0), (0, 3)), ((1, 2, 3), (4, 3, 5)), ((1, 1), (1, 1)),
    ((2, 1, 3, 4), (1, 5, 4, 2)),
]  # fmt: skip
for sx, sy in MATMUL_SHAPES:
    case(f"matmul{sx}{sy}", lambda x, y: x @ y, torch.matmul, normal(*sx), normal(*sy))
case("matmul_method", lambda x, y: x.matmul(y), torch.matmul, normal(2, 3), normal(3, 2))
LEFT = normal(4, 3)
case("matmul_ndarray_left", lambda y: like(LEFT, y) @ y, lambda y: torch.tensor(LEFT) @ y,
     normal(3, 2))  # fmt: skip

# -- reductions ---------------------------------------------------------------------------

REDUCE_SHAPES: list[tuple[tuple[int, ...], int | tuple[int, ...] | None]] = [
    ((), None), ((4,), None), ((4,), 0), ((4,), -1), ((2, 3, 4), None), ((2, 3, 4), 1),
    ((2, 3, 4), -1), ((2, 3, 4), (0, 2)), ((2, 3, 4), (-1, 0)), ((2, 0, 3), 1), ((2, 0, 3), 2),
    ((1, 3), 0),
]  # fmt: skip


def _torch_reduce(name: str) -> Fn:
    def tf(x: torch.Tensor, axis: Any, keepdims: bool) -> torch.Tensor:
        d = dims(axis, x.ndim)
        if name in ("sum", "mean"):
            return getattr(torch, name)(x, dim=d, keepdim=keepdims) if d else x * 1
        return getattr(torch, name)(x, dim=d, keepdim=keepdims)

    return tf


for shape, axis in REDUCE_SHAPES:
    for keep in (False, True):
        tag = f"{shape}_axis={axis}_keep={keep}"
        for name, tname in [("sum", "sum"), ("mean", "mean"), ("max", "amax"), ("min", "amin")]:
            if name in ("max", "min") and 0 in shape and axis in (None, 1):
                continue  # the maximum of an empty axis is undefined (both libraries raise)
            tf = _torch_reduce(tname)
            case(f"{name}{tag}",
                 lambda x, n=name, a=axis, k=keep: getattr(x, n)(axis=a, keepdims=k),
                 lambda x, t=tf, a=axis, k=keep: t(x, a, k),
                 normal(*shape))  # fmt: skip
        if shape and 0 not in shape:
            case(f"logsumexp{tag}", lambda x, a=axis, k=keep: x.logsumexp(axis=a, keepdims=k),
                 lambda x, a=axis, k=keep: torch.logsumexp(x, dim=dims(a, x.ndim), keepdim=k),
                 normal(*shape) * 3)  # fmt: skip
            for ddof in (0, 1):
                case(f"var{tag}_ddof={ddof}",
                     lambda x, a=axis, k=keep, d=ddof: x.var(axis=a, keepdims=k, ddof=d),
                     lambda x, a=axis, k=keep, d=ddof: torch.var(
                         x, dim=dims(a, x.ndim), correction=d, keepdim=k),
                     normal(*shape))  # fmt: skip

# Ties: the gradient is shared equally among the maxima (PyTorch's amax/amin).
TIES = arr([[1.0, 3.0, 3.0, -1.0], [2.0, 2.0, 2.0, 2.0], [-5.0, 0.0, -5.0, 0.0]])
for name, tname in [("max", torch.amax), ("min", torch.amin)]:
    case(f"{name}_ties_axis1", lambda x, n=name: getattr(x, n)(axis=1),
         lambda x, t=tname: t(x, dim=1), TIES)  # fmt: skip
    case(f"{name}_ties_axis0", lambda x, n=name: getattr(x, n)(axis=0, keepdims=True),
         lambda x, t=tname: t(x, dim=0, keepdim=True), TIES)  # fmt: skip
    case(f"{name}_ties_all", lambda x, n=name: getattr(x, n)(),
         lambda x, t=tname: t(x, dim=(0, 1)), arr([[2.0, 1.0], [2.0, 2.0]]))  # fmt: skip
    case(f"{name}_dim_keepdim", lambda x, n=name: getattr(x, "a" + n)(dim=-1, keepdim=True),
         lambda x, t=tname: t(x, dim=-1, keepdim=True), TIES)  # fmt: skip
    # max(dim) / min(dim) as PyTorch's: (values, indices), the gradient to the first index.
    case(f"{name}_dim_values", lambda x, n=name: getattr(x, n)(-1, keepdim=True).values,
         lambda x, n=name: getattr(x, n)(-1, keepdim=True).values, TIES)  # fmt: skip
    case(f"{name}_dim0_values", lambda x, n=name: getattr(x, n)(dim=0)[0],
         lambda x, n=name: getattr(x, n)(dim=0)[0], normal(3, 4))  # fmt: skip
case("var_default_ddof0", lambda x: x.var(), lambda x: torch.var(x, correction=0), normal(3, 4))
case("sum_dim_keepdim", lambda x: x.sum(dim=(0, 2), keepdim=True),
     lambda x: x.sum(dim=(0, 2), keepdim=True), normal(2, 3, 4))  # fmt: skip
case("mean_dim", lambda x: x.mean(dim=1), lambda x: x.mean(dim=1), normal(2, 3, 4))
case("var_constant_rows", lambda x: x.var(axis=1, ddof=1),
     lambda x: torch.var(x, dim=1, correction=1),
     arr([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]]))  # fmt: skip

# -- the softmax family: stable for huge inputs --------------------------------------------

SOFTMAX_INPUTS = [("(4,)", normal(4), -1), ("(3,5)", normal(3, 5), -1),
                  ("(3,5)ax0", normal(3, 5), 0), ("(2,3,4)ax1", normal(2, 3, 4), 1),
                  ("(3,1)", normal(3, 1), -1),
                  ("huge", arr([[1e4, 1e4 - 1, -1e4], [-1e4, -1e4 + 2, -1e4 + 1]]), -1),
                  ("huge_ax0", arr([[1e4, 0.0], [1e4 - 3, 1e4]]), 0),
                  ("minus_inf", arr([[-np.inf, 0.0, 1.0], [2.0, -np.inf, -1.0]]), -1),
                  ("(4,0)", normal(4, 0), -1), ("(0,4)", normal(0, 4), -1)]  # fmt: skip
for tag, x, axis in SOFTMAX_INPUTS:
    case(f"softmax_{tag}", lambda x, a=axis: x.softmax(a), lambda x, a=axis: x.softmax(a), x)
    case(f"log_softmax_{tag}", lambda x, a=axis: x.log_softmax(a),
         lambda x, a=axis: x.log_softmax(a), x)  # fmt: skip
    if x.shape[axis] > 0:
        case(f"logsumexp_{tag}", lambda x, a=axis: x.logsumexp(a),
             lambda x, a=axis: x.logsumexp(a), x)  # fmt: skip
case("logsumexp_huge_all", lambda x: x.logsumexp(), lambda x: x.reshape(-1).logsumexp(0),
     arr([[1e4, 1e4], [-1e4, 1e4 - 1]]))  # fmt: skip
case("logsumexp_empty_axis", lambda x: x.logsumexp(axis=1), lambda x: x.logsumexp(1),
     normal(3, 0))  # fmt: skip

# -- shape operations ---------------------------------------------------------------------

SHAPE_OPS: list[tuple[str, Fn, Fn, tuple[int, ...]]] = [
    ("reshape", lambda x: x.reshape(6, 4), lambda x: x.reshape(6, 4), (2, 3, 4)),
    ("reshape_tuple", lambda x: x.reshape((4, -1, 2)), lambda x: x.reshape(4, -1, 2), (2, 3, 4)),
    ("flatten", lambda x: x.flatten(), lambda x: x.flatten(), (2, 3, 4)),
    ("view_0d", lambda x: x.view(1, 1), lambda x: x.view(1, 1), ()),
    ("reshape_empty", lambda x: x.reshape(3, 0), lambda x: x.reshape(3, 0), (0, 3)),
    ("transpose", lambda x: x.transpose(), lambda x: x.permute(2, 1, 0), (2, 3, 4)),
    ("transpose_axes", lambda x: x.transpose(1, 0, 2), lambda x: x.permute(1, 0, 2), (2, 3, 4)),
    ("permute", lambda x: x.permute(2, 0, 1), lambda x: x.permute(2, 0, 1), (2, 3, 4)),
    ("permute_negative", lambda x: x.permute(-1, 0, -2), lambda x: x.permute(-1, 0, -2), (2, 3, 4)),
    ("permute_negative_2d", lambda x: x.permute(-1, 0), lambda x: x.permute(-1, 0), (2, 3)),
    ("T_2d", lambda x: x.T, lambda x: x.T, (2, 3)),
    ("T_3d", lambda x: x.T, lambda x: x.permute(2, 1, 0), (2, 3, 4)),
    ("mT_2d", lambda x: x.mT, lambda x: x.mT, (2, 3)),
    ("mT_3d", lambda x: x.mT, lambda x: x.mT, (2, 3, 4)),
    ("swapaxes", lambda x: x.swapaxes(0, 2), lambda x: x.swapaxes(0, 2), (2, 3, 4)),
    ("expand", lambda x: x.expand(2, 3, 4), lambda x: x.expand(2, 3, 4), (3, 1)),
    ("broadcast_to", lambda x: x.broadcast_to((5,)), lambda x: x.broadcast_to((5,)), (1,)),
    ("broadcast_to_0d", lambda x: x.broadcast_to(2, 2), lambda x: x.expand(2, 2), ()),
    ("broadcast_to_zero", lambda x: x.broadcast_to(0, 3), lambda x: x.expand(0, 3), (3,)),
    ("squeeze_all", lambda x: x.squeeze(), lambda x: x.squeeze(), (1, 3, 1)),
    ("squeeze_axis", lambda x: x.squeeze(2), lambda x: x.squeeze(2), (1, 3, 1)),
    ("squeeze_axes", lambda x: x.squeeze((0, -1)), lambda x: x.squeeze((0, -1)), (1, 3, 1)),
    ("unsqueeze_0", lambda x: x.unsqueeze(0), lambda x: x.unsqueeze(0), (2, 3)),
    ("unsqueeze_-1", lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(-1), (2, 3)),
    ("unsqueeze_mid", lambda x: x.unsqueeze(1), lambda x: x.unsqueeze(1), (2, 3)),
]
for name, f, tf, shape in SHAPE_OPS:
    case(name, f, tf, normal(*shape))


def like(index: Any, x: Any) -> Any:
    """``index`` with its NumPy arrays made by the array library of ``x``'s data: a case
    indexes an array-api-strict tensor with array-api-strict arrays (one library per op)."""
    if isinstance(index, tuple):
        return tuple(like(i, x) for i in index)
    if isinstance(index, np.ndarray) and not isinstance(x._data, np.ndarray):
        return backend.array_namespace(x).asarray(index)
    return index


def _index_case(name: str, index: Any, shape: tuple[int, ...] = (4, 3, 5)) -> None:
    """``x[index]`` for both: NumPy arrays inside ``index`` become torch tensors."""

    def to_torch(i: Any) -> Any:
        if isinstance(i, tuple):
            return tuple(to_torch(j) for j in i)
        return torch.from_numpy(i) if isinstance(i, np.ndarray) else i

    case(f"getitem_{name}", lambda x: x[like(index, x)], lambda x: x[to_torch(index)],
         normal(*shape))  # fmt: skip


for name, index in [
    ("int", 1), ("negative_int", -1), ("slice", slice(1, 3)), ("step", slice(None, None, 2)),
    ("tuple", (slice(None), 1)), ("ellipsis", (Ellipsis, 0)), ("newaxis", (None, 1)),
    ("int_and_slice", (2, slice(0, 2), -1)), ("empty_slice", slice(2, 2)),
    ("repeated", np.array([0, 0, 2, 0])), ("negative_array", np.array([-1, 0, -1])),
    ("array_2d", np.array([[0, 1], [1, 1]])), ("pair", (np.array([0, 2, 0]), np.array([1, 1, 1]))),
    ("mixed", (slice(None), np.array([2, 2, 0]))), ("mixed_slice", (np.array([3, 3]), slice(1, 3))),
    ("empty_array", np.array([], dtype=np.int64)),
    ("mask_row", np.array([True, False, True, True])),
    ("mask_full", _rng.random((4, 3, 5)) > 0.5),
    ("mask_pair", (_rng.random((4, 3)) > 0.3,)),
]:  # fmt: skip
    _index_case(name, index)
case("getitem_tensor_mask", lambda x: x[x > 0], lambda x: x[x > 0], normal(4, 3))
case("getitem_tensor_index", lambda x: x[Tensor(like(np.array([1, 1, 0]), x))],
     lambda x: x[torch.tensor([1, 1, 0])], normal(3, 2))  # fmt: skip
case("getitem_list", lambda x: x[[2, 2, 1]], lambda x: x[[2, 2, 1]], normal(3, 2))
case("iterate_rows", lambda x: ops.stack(*list(x)) * 2, lambda x: torch.stack(list(x)) * 2,
     normal(3, 2))  # fmt: skip


def _join_case(name: str, op: str, shapes: Sequence[tuple[int, ...]], axis: int) -> None:
    f = getattr(ops, op)
    tf = torch.cat if op == "concatenate" else torch.stack
    case(f"{op}_{name}", lambda *xs: f(*xs, axis=axis), lambda *xs: tf(xs, dim=axis),
         *[normal(*s) for s in shapes])  # fmt: skip


_join_case("axis0", "concatenate", [(2, 3), (4, 3)], 0)
_join_case("axis-1", "concatenate", [(2, 3), (2, 1), (2, 2)], -1)
_join_case("zero_size", "concatenate", [(2, 0, 4), (2, 3, 4), (2, 0, 4)], 1)
_join_case("one", "concatenate", [(3, 2)], 0)
_join_case("axis0", "stack", [(2, 3), (2, 3)], 0)
_join_case("axis1", "stack", [(2, 3), (2, 3), (2, 3)], 1)
_join_case("axis-1", "stack", [(2, 3), (2, 3)], -1)
_join_case("zero_size", "stack", [(0, 3), (0, 3)], 1)

case("astype_roundtrip", lambda x: x.astype(np.float32).astype(np.float64),
     lambda x: x.float().double(), normal(2, 3))  # fmt: skip
case("sum_to", lambda x: ops.sum_to(x, (3, 1)), lambda x: x.sum_to_size(3, 1), normal(2, 3, 4))
case("index_add", lambda g: ops.index_add(g, (4, 2), like(np.array([1, 3, 1]), g)),
     lambda g: torch.zeros(4, 2, dtype=torch.float64).index_put(
         (torch.tensor([1, 3, 1]),), g, accumulate=True), normal(3, 2))  # fmt: skip

# -- fused ops: linear and cross-entropy --------------------------------------------------

for sx in [(4, 3), (3,), (2, 4, 3), (0, 3)]:
    case(f"linear{sx}", ops.linear, F.linear, normal(*sx), normal(2, 3), normal(2))
    case(f"linear_no_bias{sx}", ops.linear, F.linear, normal(*sx), normal(2, 3))

LABELS = np.array([0, 3, 3, 1, 2])
HUGE_LOGITS = normal(5, 4) * 1e4
for reduction in ("mean", "sum", "none"):
    case(f"cross_entropy_{reduction}",
         lambda z, t, r=reduction: cross_entropy(z, t, reduction=r),
         lambda z, t, r=reduction: F.cross_entropy(z, t, reduction=r),
         normal(5, 4), LABELS)  # fmt: skip
    case(f"cross_entropy_huge_{reduction}",
         lambda z, t, r=reduction: cross_entropy(z, t, reduction=r),
         lambda z, t, r=reduction: F.cross_entropy(z, t, reduction=r),
         HUGE_LOGITS, LABELS)  # fmt: skip
case("cross_entropy_one_class", lambda z, t: cross_entropy(z, t), F.cross_entropy,
     normal(3, 1), np.zeros(3, dtype=np.int64))  # fmt: skip


# -- running a case in both libraries -----------------------------------------------------


# The array libraries chainrule's half of every case runs on (pytest --array-backend, by
# default NumPy and array-api-strict: the standard's strict reference, where any NumPy-only
# call left in an op or a rule fails; cupy on a GPU, scripts/gpu-check).
BACKENDS = array_backends()

# Cases that cannot run on array-api-strict, each with the reason (not a silent skip).
STRICT_CANNOT: dict[str, str] = {
    "matmul_ndarray_left": "array-api-strict's operators raise TypeError for an operand that "
    "is not one of its arrays instead of returning NotImplemented, so ndarray @ Tensor never "
    "reaches Tensor.__rmatmul__ (NumPy defers to it)",
}


def library(name: str) -> Any:
    """The array library called ``name`` (its module)."""
    if name == "numpy":
        return np
    if name == "cupy":  # its array API namespace, as backend.array_namespace gives it
        import array_api_compat.cupy

        return array_api_compat.cupy
    import array_api_strict

    return array_api_strict


def make_inputs(inputs: Sequence[np.ndarray], xp: Any = np) -> tuple[list[Any], list[Any]]:
    """Fresh leaves for both libraries: float arrays require grad, others are constants.
    Chainrule's inputs are arrays of ``xp`` (NumPy by default)."""
    ours: list[Any] = []
    theirs: list[Any] = []
    for a in inputs:
        is_float = a.dtype.kind == "f"
        mine = a.copy() if xp is np else xp.asarray(a)
        ours.append(Tensor(mine, requires_grad=True) if is_float else mine)
        theirs.append(torch.tensor(a, requires_grad=is_float))
    return ours, theirs


def assert_close(actual: Any, expected: Any, what: str, rtol: float = 1e-10) -> None:
    """Elementwise ``|a - e| <= rtol |e| + atol``; nan and ±inf must sit in the same places.

    ``atol`` is 1e-13 times the largest finite magnitude of ``expected`` (at least 1): a
    value that should be 0 (sin π, a gradient through cancelling paths) is rounding noise
    on the scale of its neighbours, not on its own scale.
    """
    a = actual.numpy() if isinstance(actual, Tensor) else np.asarray(actual)
    e = expected.numpy(force=True) if isinstance(expected, torch.Tensor) else np.asarray(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape}, PyTorch's is {e.shape}"
    assert a.dtype == e.dtype, f"{what}: dtype {a.dtype}, PyTorch's is {e.dtype}"
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg=f"{what}: nan positions")
    finite = np.isfinite(e)
    np.testing.assert_array_equal(a[~finite], e[~finite], err_msg=f"{what}: inf values")
    scale = float(np.abs(e[finite]).max(initial=1.0))
    np.testing.assert_allclose(
        a[finite], e[finite], rtol=rtol, atol=1e-13 * scale, err_msg=f"{what}: values"
    )


def library_for(case: Case, lib: str) -> Any:
    """The array library ``lib`` for ``case``; a skip, with its reason, for the cases that
    library cannot run (``STRICT_CANNOT``)."""
    if lib == "array_api_strict" and case.id in STRICT_CANNOT:
        pytest.skip(f"{lib}: {STRICT_CANNOT[case.id]}")
    return library(lib)
