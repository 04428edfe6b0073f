"""The tensor engine end to end: a small MLP's gradients equal PyTorch's (float64)."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from chainrule.tensor import Tensor, no_grad, ops
from chainrule.tensor.ops.loss import cross_entropy


def test_mlp_with_softmax_cross_entropy_matches_pytorch() -> None:
    rng = np.random.default_rng(0)
    sizes = [5, 7, 6, 3]
    weights = [rng.standard_normal((o, i)) for i, o in itertools.pairwise(sizes)]
    biases = [rng.standard_normal(o) for o in sizes[1:]]
    x = rng.standard_normal((8, 5))
    y = rng.integers(0, 3, 8)

    params = [Tensor(a, requires_grad=True) for a in weights + biases]
    h = Tensor(x)
    for k in range(3):
        f = ops.linear(h, params[k], params[3 + k])
        h = f.relu() if k < 2 else f
    loss = cross_entropy(h, y)
    loss.backward()

    tparams = [torch.tensor(a, requires_grad=True) for a in weights + biases]
    th = torch.tensor(x)
    for k in range(3):
        tf = torch.nn.functional.linear(th, tparams[k], tparams[3 + k])
        th = tf.relu() if k < 2 else tf
    tloss = torch.nn.functional.cross_entropy(th, torch.tensor(y))
    tloss.backward()

    assert np.isclose(loss.item(), tloss.item(), rtol=1e-12)
    for p, tp in zip(params, tparams, strict=True):
        assert p.grad is not None and tp.grad is not None
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_second_derivative_through_create_graph() -> None:
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (a**3).sum().backward(create_graph=True)
    first = a.grad
    assert first is not None
    np.testing.assert_allclose(first.numpy(), 3 * a.numpy() ** 2)
    a.grad = None
    first.sum().backward()
    assert a.grad is not None
    np.testing.assert_allclose(a.grad.numpy(), 6 * a.numpy())


def test_no_grad_records_nothing() -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        y = (w * 2).sum()
    assert not y.requires_grad and y.is_leaf
