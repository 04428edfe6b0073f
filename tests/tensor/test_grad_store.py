"""``register_grad_store``: a leaf whose .grad lives in memory another component manages."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import Tensor
from chainrule.tensor.backward import register_grad_store


def test_the_store_replaces_the_add_to_grad_and_others_keep_the_engines_path() -> None:
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    v = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    flat = np.zeros(2)
    calls: list[list[float]] = []

    def store(t: Tensor, g: np.ndarray) -> None:  # accumulate in place into `flat`
        calls.append(g.tolist())
        flat[...] += g
        t.grad = Tensor._wrap(flat)

    handle = register_grad_store(w, store)
    (w * v).sum().backward()
    (w * v).sum().backward()
    assert calls == [[3.0, 4.0], [3.0, 4.0]]
    assert w.grad is not None and w.grad._data is flat and flat.tolist() == [6.0, 8.0]
    before = v.grad
    assert before is not None and before.numpy().tolist() == [2.0, 4.0]
    handle.remove()  # back to the engine's own: a new array, the old one left as it was
    (w * v).sum().backward()
    assert w.grad is not None and w.grad._data is not flat
    assert flat.tolist() == [6.0, 8.0] and w.grad.numpy().tolist() == [9.0, 12.0]
    assert len(calls) == 2


def test_a_recorded_pass_binds_a_new_grad_without_the_store() -> None:
    w = Tensor(np.array([3.0]), requires_grad=True)
    register_grad_store(w, lambda t, g: pytest.fail("a create_graph pass called the store"))
    (w * w).sum().backward(create_graph=True)
    assert w.grad is not None and w.grad.requires_grad and w.grad.numpy().tolist() == [6.0]


def test_a_store_on_a_non_leaf_or_a_second_store_is_an_error() -> None:
    w = Tensor(np.array([1.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="only a leaf"):
        register_grad_store(w * 2.0, lambda t, g: None)
    register_grad_store(w, lambda t, g: None)
    with pytest.raises(RuntimeError, match="already has a gradient store"):
        register_grad_store(w, lambda t, g: None)
