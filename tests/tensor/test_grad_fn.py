"""``grad_fn`` objects: walking the graph back from the loss, as PyTorch's tutorial does."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from chainrule import Tensor


def walk(node: Any, leaves: dict[int, str]) -> Any:
    """The graph below ``node`` as nested (name, children) tuples; leaves by their label."""
    if node is None:
        return None
    if node.name() in ("AccumulateGrad", "torch::autograd::AccumulateGrad"):
        return leaves[id(node.variable)]
    return (node.name(), tuple(walk(child, leaves) for child, _ in node.next_functions))


def test_grad_fn_graph_matches_pytorchs_names_and_structure() -> None:
    w0, b0, x0 = np.array([0.5, -1.0]), np.array([0.1, 0.2]), np.array([2.0, 3.0])
    w, b = Tensor(w0, requires_grad=True), Tensor(b0, requires_grad=True)
    x = Tensor(x0)
    loss = ((w * x + b).tanh().exp() - 1.0).sum()

    tw, tb = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    tx = torch.tensor(x0)
    tloss = ((tw * tx + tb).tanh().exp() - 1.0).sum()

    ours = walk(loss.grad_fn, {id(w): "w", id(b): "b"})
    theirs = walk(tloss.grad_fn, {id(tw): "w", id(tb): "b"})
    assert ours == theirs
    assert ours[0] == "SumBackward0"


def test_leaves_and_constants_in_next_functions() -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    y = w * 2.0
    assert y.grad_fn is not None
    (acc, k), (const, j) = y.grad_fn.next_functions
    assert acc is not None and acc.name() == "AccumulateGrad" and acc.variable is w
    assert const is None and k == j == 0
    assert w.grad_fn is None
    assert y.grad_fn == y.grad_fn and y.grad_fn.op == "mul"
    assert "grad_fn=<MulBackward0>" in repr(y)


def test_a_freed_graph_has_no_next_functions() -> None:
    w = Tensor(np.ones(2), requires_grad=True)
    y = (w * w).sum()
    y.backward()
    assert y.grad_fn is not None and y.grad_fn.next_functions == ()
