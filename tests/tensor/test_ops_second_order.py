"""Second order: gradients from ``backward(create_graph=True)``, differentiated again.

For each case of ``op_twins.py``, with a random cotangent ``u`` of the output and random
directions ``v_k`` of the inputs, the first pass gives ``g_k = u·∂f/∂x_k`` as Tensors (the
VJP rules run on Tensors and are recorded); the second pass differentiates
``s = Σ_k <g_k, v_k>`` and must equal PyTorch's ``torch.autograd.grad`` with
``create_graph=True`` on the same function: a Hessian-vector product of every op.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from chainrule.tensor import Tensor, backend
from tests.tensor.op_twins import (
    BACKENDS,
    CASES,
    Case,
    assert_close,
    library_for,
    make_inputs,
)
from tests.tensor.programs import LEAF_SHAPES, Steps, leaves, programs, run_program, weighted_sum

SECOND = [c for c in CASES if c.second_order]


def _ours(
    case: Case, u: np.ndarray, vs: list[np.ndarray], xp: Any = np
) -> tuple[list[Any], list[Any]]:
    xs, _ = make_inputs(case.inputs, xp)
    leaves = [x for x in xs if isinstance(x, Tensor)]
    out = case.fn(*xs)
    out.backward(xp.asarray(u), create_graph=True)
    first = [x.grad if x.grad is not None else np.zeros(x.shape) for x in leaves]
    s: Any = 0.0
    for g, v in zip(first, vs, strict=True):
        if isinstance(g, Tensor) and g.requires_grad:
            s = s + (g * xp.asarray(v)).sum()
    for x in leaves:
        x.grad = None
    if isinstance(s, Tensor):
        s.backward()
    second = [x.grad if x.grad is not None else np.zeros(x.shape) for x in leaves]
    return first, second


def _theirs(case: Case, u: np.ndarray, vs: list[np.ndarray]) -> tuple[list[Any], list[Any]]:
    _, ts = make_inputs(case.inputs)
    leaves = [t for t in ts if t.requires_grad]
    out = case.tfn(*ts)
    first = torch.autograd.grad(
        out, leaves, torch.from_numpy(u), create_graph=True, allow_unused=True
    )
    first = [torch.zeros_like(t) if g is None else g for g, t in zip(first, leaves, strict=True)]
    s: Any = 0.0
    for g, v in zip(first, vs, strict=True):
        if g.requires_grad:
            s = s + (g * torch.from_numpy(v)).sum()
    if isinstance(s, torch.Tensor):
        second = torch.autograd.grad(s, leaves, allow_unused=True)
    else:
        second = [None] * len(leaves)
    return list(first), [
        torch.zeros_like(t) if h is None else h for h, t in zip(second, leaves, strict=True)
    ]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("lib", BACKENDS)
@pytest.mark.parametrize("case", SECOND, ids=[c.id for c in SECOND])
def test_double_backward_equals_pytorch(case: Case, lib: str) -> None:
    xp = library_for(case, lib)
    rng = np.random.default_rng(len(case.id))
    out = case.fn(*make_inputs(case.inputs)[0])
    u = rng.standard_normal(out.shape)
    vs = [rng.standard_normal(a.shape) for a in case.inputs if a.dtype.kind == "f"]
    first, second = _ours(case, u, vs, xp)
    for g in first + second:
        if isinstance(g, Tensor):
            assert backend.array_namespace(g) is xp, f"{case.id}: a gradient left {lib}"
    tfirst, tsecond = _theirs(case, u, vs)
    for k, (g, tg) in enumerate(zip(first, tfirst, strict=True)):
        assert_close(g, tg, f"{case.id}: create_graph gradient of input {k}")
    for k, (h, th) in enumerate(zip(second, tsecond, strict=True)):
        assert_close(h, th, f"{case.id}: second derivative (HVP) for input {k}")


def _or_zeros(g: Any, x: Any) -> Any:
    """A gradient that never arrived is zero (chainrule: None; PyTorch: None)."""
    if g is not None:
        return g
    return torch.zeros(tuple(x.shape), dtype=torch.float64)


@given(shapes=LEAF_SHAPES, steps=programs(), seed=st.integers(0, 2**32 - 1))
def test_random_programs_double_backward_equals_pytorch(
    shapes: Any, steps: Steps, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    xs, txs = leaves([rng.standard_normal(s) for s in shapes.input_shapes])
    results, tresults = run_program(steps, xs, txs)
    ws = [rng.standard_normal(r.shape) for r in xs + results]
    vs = [rng.standard_normal(x.shape) for x in xs]
    weighted_sum(xs + results, ws, np).backward(create_graph=True)
    tfirst = torch.autograd.grad(
        weighted_sum(txs + tresults, ws, torch), txs, create_graph=True, allow_unused=True
    )
    first = [x.grad for x in xs]
    for k, (g, tg, x) in enumerate(zip(first, tfirst, xs, strict=True)):
        assert_close(_or_zeros(g, x), _or_zeros(tg, x), f"create_graph gradient of input {k}")
        x.grad = None
    # s = Σ_k <∂loss/∂x_k, v_k>; a gradient that does not depend on the inputs adds nothing.
    s = weighted_sum([g for g in first if g is not None and g.requires_grad],
                     [v for g, v in zip(first, vs, strict=True)
                      if g is not None and g.requires_grad], np)  # fmt: skip
    ts = weighted_sum([g for g in tfirst if g is not None and g.requires_grad],
                      [v for g, v in zip(tfirst, vs, strict=True)
                       if g is not None and g.requires_grad], torch)  # fmt: skip
    if isinstance(s, Tensor):
        s.backward()
    second: Any = [None] * len(txs)
    if isinstance(ts, torch.Tensor):
        second = torch.autograd.grad(ts, txs, allow_unused=True)
    for k, (x, th) in enumerate(zip(xs, second, strict=True)):
        assert_close(_or_zeros(x.grad, x), _or_zeros(th, x), f"second derivative of input {k}")
