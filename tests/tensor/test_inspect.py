"""What the graph keeps for backward: counted from the engine, checked against shapes."""

from __future__ import annotations

import numpy as np

from chainrule import Tensor
from chainrule.tensor import ops
from chainrule.tensor.inspect import op_counts, saved_bytes, saved_tensors


def test_mlp_keeps_what_the_rules_read_and_each_array_once() -> None:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((5, 3)))
    w1 = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    w2 = Tensor(rng.standard_normal((2, 4)), requires_grad=True)
    f0 = ops.linear(x, w1)
    h1 = f0.relu()
    f1 = ops.linear(h1, w2)
    loss = f1.sum()
    saved = saved_tensors(loss)
    # Non-leaf arrays: h1 only (float64: 8 bytes per element), kept by relu (its rule reads
    # the mask from its output) and by the second linear (its input): once. f0, f1 and the
    # loss are read by no rule (linear's reads h and Ω, sum's only shapes).
    assert saved_bytes(loss) == 5 * 4 * 8
    assert saved_bytes(loss, include_leaves=True) == (5 * 4 + 15 + 12 + 8) * 8
    assert [(s.op, s.role, s.shape, s.is_leaf) for s in saved] == [
        ("linear", "input 0", (5, 3), True),
        ("linear", "input 1", (4, 3), True),
        ("relu", "output", (5, 4), False),
        ("linear", "input 1", (2, 4), True),
    ]
    assert op_counts(loss) == {"linear": 2, "relu": 1, "sum": 1}


def test_shared_array_is_counted_once() -> None:
    a = Tensor(np.ones(10), requires_grad=True)
    b = a * a
    c = b * b + a
    # mul keeps both of its inputs: a (a leaf, twice: once) and b (twice: once); add nothing
    assert saved_bytes(c) == 10 * 8
    assert saved_bytes(c, include_leaves=True) == 2 * 10 * 8


def test_what_is_kept_goes_with_backward() -> None:
    a = Tensor(np.ones(10), requires_grad=True)
    loss = (a.exp() * 3.0).sum()
    assert saved_bytes(loss) == 10 * 8  # exp's output (read by exp's rule and by mul's)
    loss.backward()
    assert saved_tensors(loss) == []


def test_a_residual_is_counted() -> None:
    from chainrule.tensor.ops.loss import cross_entropy

    z = Tensor(np.zeros((4, 3)), requires_grad=True)
    loss = cross_entropy(z * 1.0, np.array([0, 1, 2, 0]))
    roles = {(s.op, s.role) for s in saved_tensors(loss)}
    assert ("cross_entropy", "residual") in roles and ("cross_entropy", "input 0") in roles
