"""What the graph keeps for backward: counted from the engine, checked against shapes."""

from __future__ import annotations

import numpy as np

from chainrule import Tensor
from chainrule.tensor import ops
from chainrule.tensor.inspect import op_counts, saved_bytes, saved_tensors


def test_mlp_keeps_each_layer_input_and_output_once() -> None:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((5, 3)))
    w1 = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    w2 = Tensor(rng.standard_normal((2, 4)), requires_grad=True)
    f0 = ops.linear(x, w1)
    h1 = f0.relu()
    f1 = ops.linear(h1, w2)
    loss = f1.sum()
    saved = saved_tensors(loss)
    # non-leaf arrays: f0, h1, f1 and the scalar loss (float64: 8 bytes per element)
    expected = (5 * 4 + 5 * 4 + 5 * 2 + 1) * 8
    assert saved_bytes(loss) == expected
    assert saved_bytes(loss, include_leaves=True) == expected + (15 + 12 + 8) * 8
    assert {s.op for s in saved} == {"linear", "relu", "sum"}
    assert op_counts(loss) == {"linear": 2, "relu": 1, "sum": 1}


def test_shared_array_is_counted_once() -> None:
    a = Tensor(np.ones(10), requires_grad=True)
    b = a * a + a
    assert saved_bytes(b) == 2 * 10 * 8  # a*a and b; a is a leaf
