"""concatenate / stack with NumPy's signature (a list of tensors), against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import chainrule as cr


def test_concatenate_and_stack_take_a_list_and_split_the_gradient_back() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    w = rng.standard_normal((2, 2, 3))
    ours = [cr.Tensor(v, requires_grad=True) for v in (a, b)]
    theirs = [torch.tensor(v, requires_grad=True) for v in (a, b)]
    (cr.stack(ours, axis=1) * cr.Tensor(w.transpose(1, 0, 2))).sum().backward()
    (cr.concatenate(ours, axis=1) ** 2).sum().backward()
    (torch.stack(theirs, dim=1) * torch.tensor(w.transpose(1, 0, 2))).sum().backward()
    (torch.cat(theirs, dim=1) ** 2).sum().backward()
    for o, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-12)  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", [cr.Tensor(np.ones(3)), [], 3.0])
def test_join_rejects_what_is_not_a_list_of_tensors(bad: object) -> None:
    with pytest.raises(TypeError, match=r"concatenate: expected a non-empty list"):
        cr.concatenate(bad)  # type: ignore[arg-type]
