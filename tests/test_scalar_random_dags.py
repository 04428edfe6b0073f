"""Property: on random expression DAGs with shared sub-expressions, every leaf's gradient
equals PyTorch's (float64)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from chainrule import Value

# Ops that are defined for every real input (domain-restricted ones get a safe argument).
UNARY = [
    "neg",
    "exp_tanh",
    "log_sq",
    "sqrt_sq",
    "tanh",
    "sigmoid",
    "relu",
    "sin",
    "cos",
    "abs",
    "square",
    "cube",
    "rpow",
]
BINARY = ["add", "sub", "mul", "div_safe", "pow_value"]


def apply(op: str, a: Any, b: Any, lib: Any) -> Any:
    match op:
        case "neg":
            return -a
        case "exp_tanh":
            return lib.exp(lib.tanh(a))
        case "log_sq":
            return lib.log(a * a + 0.5)
        case "sqrt_sq":
            return lib.sqrt(a * a + 0.1)
        case "tanh":
            return lib.tanh(a)
        case "sigmoid":
            return lib.sigmoid(a)
        case "relu":
            return lib.relu(a)
        case "sin":
            return lib.sin(a)
        case "cos":
            return lib.cos(a)
        case "abs":
            return abs(a)
        case "square":
            return a**2
        case "cube":
            return a**3
        case "rpow":
            return 1.5 ** lib.tanh(a)
        case "add":
            return a + b
        case "sub":
            return 2.0 - a - b
        case "mul":
            return a * b
        case "div_safe":
            return a / (b * b + 1.0)
        case "pow_value":
            return (a * a + 1.0) ** lib.tanh(b)
    raise AssertionError(op)


class ValueLib:
    exp, log, sqrt, tanh = Value.exp, Value.log, Value.sqrt, Value.tanh
    sigmoid, relu, sin, cos = Value.sigmoid, Value.relu, Value.sin, Value.cos


@st.composite
def programs(draw: st.DrawFn) -> tuple[list[float], list[tuple[str, int, int]], list[int]]:
    leaves = draw(st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=4))
    steps: list[tuple[str, int, int]] = []
    for i in range(draw(st.integers(1, 25))):
        n = len(leaves) + i
        op = draw(st.sampled_from(UNARY + BINARY))
        # Operands drawn from everything so far: nodes get shared, often more than once.
        steps.append((op, draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))))
    n = len(leaves) + len(steps)
    outputs = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3))
    return leaves, steps, outputs


def run(program: Any, make_leaf: Any, lib: Any) -> tuple[list[Any], Any]:
    leaves, steps, outputs = program
    nodes = [make_leaf(x) for x in leaves]
    for op, i, j in steps:
        nodes.append(apply(op, nodes[i], nodes[j], lib))
    root = nodes[outputs[0]]
    for k in outputs[1:]:
        root = root + nodes[k] * 0.5
    return nodes[: len(leaves)], root


@given(programs())
def test_random_dag_leaf_gradients_match_pytorch(program: Any) -> None:
    leaves, root = run(program, Value, ValueLib)
    if not isinstance(root, Value) or not root._prev:
        root = root * 1.0
    root.backward()
    tleaves, troot = run(
        program, lambda x: torch.tensor(x, dtype=torch.float64, requires_grad=True), torch
    )
    grads = torch.autograd.grad(troot, tleaves, allow_unused=True)
    ours = np.array([v.grad for v in leaves])
    theirs = np.array([0.0 if g is None else float(g) for g in grads])
    assert np.isclose(root.data, float(troot.detach()), rtol=1e-12, atol=1e-12)
    scale = 1.0 + np.abs(theirs).max()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12 * scale)
