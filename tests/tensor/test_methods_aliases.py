"""PyTorch spellings accepted by Tensor methods give PyTorch's results."""

from __future__ import annotations

import numpy as np
import torch

from chainrule import Tensor


def test_expand_with_minus_one_keeps_the_axis_and_sums_the_gradient_back() -> None:
    a = np.arange(3.0).reshape(3, 1)
    ours = Tensor(a, requires_grad=True)
    theirs = torch.tensor(a, requires_grad=True)
    weights = np.arange(24.0).reshape(2, 3, 4)
    (ours.expand(2, -1, 4) * Tensor(weights)).sum().backward()
    (theirs.expand(2, -1, 4) * torch.tensor(weights)).sum().backward()
    assert ours.grad is not None and theirs.grad is not None
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


def test_var_accepts_dim_and_keepdim() -> None:
    a = np.random.default_rng(0).standard_normal((3, 5))
    ours = Tensor(a).var(dim=1, keepdim=True, ddof=1)
    theirs = torch.tensor(a).var(dim=1, keepdim=True, correction=1)
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
