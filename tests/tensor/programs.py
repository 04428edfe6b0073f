"""Random programs: a random sequence of ops on a few inputs, run in chainrule and PyTorch.

A step applies one op to operands picked from the pool of inputs and earlier results, so
sub-expressions are shared and gradients meet from several paths. Every op keeps values
tame (exp of tanh, log of x² + 1, division by y² + 1) so that eight steps stay finite.
Used by ``test_ops_properties.py`` (first order) and ``test_ops_second_order.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from chainrule.tensor import Tensor, ops
from tests.tensor.op_twins import like

Op = tuple[str, int, Callable[..., Any], Callable[..., Any]]  # name, arity, ours, PyTorch's
IDX = np.array([-1, 0, 0])  # repeated and negative indices: a scatter-add in backward


def same(name: str, arity: int, f: Callable[..., Any]) -> Op:
    """An op spelled the same way in both libraries."""
    return (name, arity, f, f)


def _reversed_axes(x: Any) -> tuple[int, ...]:
    return tuple(range(x.ndim))[::-1]


PROGRAM_OPS: list[Op] = [
    same("tanh", 1, lambda x: x.tanh()),
    same("sigmoid", 1, lambda x: x.sigmoid()),
    same("sin", 1, lambda x: x.sin()),
    same("cos", 1, lambda x: x.cos()),
    same("exp_tanh", 1, lambda x: x.tanh().exp()),
    same("log_1_plus_square", 1, lambda x: (x * x + 1).log()),
    same("sqrt_1_plus_square", 1, lambda x: (x * x + 1).sqrt()),
    same("abs", 1, abs),
    same("relu", 1, lambda x: x.relu()),
    ("leaky_relu", 1, lambda x: x.leaky_relu(0.1), lambda x: F.leaky_relu(x, 0.1)),
    same("number_minus", 1, lambda x: 2.0 - 3 * x),
    same("number_over", 1, lambda x: 1 / (x * x + 1)),
    same("number_power", 1, lambda x: 2 ** x.tanh()),
    same("square", 1, lambda x: x**2),
    same("clamp", 1, lambda x: x.clamp(-0.5, 0.5)),
    same("softmax", 1, lambda x: x.softmax(-1)),
    same("log_softmax", 1, lambda x: x.log_softmax(0)),
    same("sum", 1, lambda x: x.sum(dim=-1, keepdim=True)),
    same("sum_all", 1, lambda x: x.sum()),
    ("mean", 1, lambda x: x.mean(axis=0), lambda x: x.mean(dim=0)),
    ("max", 1, lambda x: x.max(axis=-1, keepdims=True), lambda x: x.amax(-1, keepdim=True)),
    ("min", 1, lambda x: x.min(axis=0), lambda x: x.amin(0)),
    ("var", 1, lambda x: x.var(-1, True), lambda x: x.var(-1, correction=0, keepdim=True)),
    ("logsumexp", 1, lambda x: x.logsumexp(axis=-1), lambda x: x.logsumexp(-1)),
    same("mT", 1, lambda x: x.mT),
    (
        "reverse_axes",
        1,
        lambda x: x.permute(*_reversed_axes(x)),
        lambda x: x.permute(_reversed_axes(x)),
    ),
    same("flatten", 1, lambda x: x.reshape(-1)),
    same("unsqueeze", 1, lambda x: x.unsqueeze(0)),
    ("gather", 1, lambda x: x[..., like(IDX, x)], lambda x: x[..., torch.from_numpy(IDX)]),
    same("slice", 1, lambda x: x[1:]),
    same("add", 2, lambda x, y: x + y),
    same("sub", 2, lambda x, y: x - y),
    same("mul", 2, lambda x, y: x * y),
    same("div", 2, lambda x, y: x / (y * y + 1)),
    same("pow", 2, lambda x, y: (x * x + 1) ** y.tanh()),
    ("maximum", 2, ops.maximum, torch.maximum),
    ("minimum", 2, ops.minimum, torch.minimum),
    (
        "where",
        2,
        lambda x, y: ops.where(x > y, x, y * 2),
        lambda x, y: torch.where(x > y, x, y * 2),
    ),
    same("matmul", 2, lambda x, y: (x @ y.mT).tanh()),
    (
        "concatenate",
        2,
        lambda x, y: ops.concatenate(x, y, axis=-1),
        lambda x, y: torch.cat([x, y], -1),
    ),
    ("stack", 2, lambda x, y: ops.stack(x, y, axis=0), lambda x, y: torch.stack([x, y], 0)),
]

Steps = list[tuple[int, list[int]]]

# Up to three inputs whose shapes broadcast together (0-d and size-1 axes included).
LEAF_SHAPES = hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3)


@st.composite
def programs(draw: st.DrawFn) -> Steps:
    """Steps ``(op number, operand numbers)``; operand numbers wrap around the pool so far."""
    steps = []
    for n in range(draw(st.integers(1, 8))):
        op = draw(st.integers(0, len(PROGRAM_OPS) - 1))
        steps.append((op, [draw(st.integers(0, 2 + n)) for _ in range(PROGRAM_OPS[op][1])]))
    return steps


def leaves(arrays: list[np.ndarray], xp: Any = np) -> tuple[list[Tensor], list[torch.Tensor]]:
    """The leaves in both libraries; chainrule's hold arrays of ``xp`` (NumPy by default)."""
    ours = [Tensor(a if xp is np else xp.asarray(a), requires_grad=True) for a in arrays]
    return ours, [torch.tensor(a, requires_grad=True) for a in arrays]


def run_program(steps: Steps, pool: list[Any], tpool: list[Any]) -> tuple[list[Any], list[Any]]:
    """Apply the steps in both libraries; a step whose shapes do not fit is skipped.

    Returns the results of the steps (not the inputs), chainrule's and PyTorch's.
    """
    pool, tpool = list(pool), list(tpool)
    start = len(pool)
    for op, operands in steps:
        _, _, f, tf = PROGRAM_OPS[op]
        picks = [i % len(pool) for i in operands]
        try:
            out = f(*[pool[i] for i in picks])
        except (ValueError, IndexError):  # e.g. softmax of a 0-d tensor, matmul of 1-D by 3-D
            continue
        pool.append(out)
        tpool.append(tf(*[tpool[i] for i in picks]))
    return pool[start:], tpool[start:]


def weighted_sum(results: list[Any], ws: list[np.ndarray], lib: Any) -> Any:
    """Σ_k <results_k, w_k>: a scalar loss that every result feeds."""
    total: Any = 0.0
    for r, w in zip(results, ws, strict=True):
        weight = torch.from_numpy(w) if lib is torch else w if lib is np else lib.asarray(w)
        total = total + (r * weight).sum()
    return total
