"""In-place changes of a tensor that a forward pass saved are caught at backward().

(a) Tensor in-place methods bump a version counter (shared with ``detach()``), as PyTorch
does. (b) Writes through the NumPy array (``t.data[...] = ...``, ``t.numpy()[...] = ...``)
are caught by the fingerprint that ``.data``/``.numpy()`` takes when it hands the array
out after the forward pass (``chainrule.tensor.versions.fingerprint``): a change of the
whole array is caught. Legitimate patterns (reading, updating after backward, changing
tensors no recorded op saved) raise nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from chainrule import Tensor, no_grad

V = np.array([0.5, -1.0, 2.0, 3.0])


def _graph(name: str = "c") -> tuple[Tensor, Tensor, Tensor]:
    """loss = Σ w·c: mul saves the constant c (named) for w's gradient."""
    w = Tensor(V, requires_grad=True, name="w")
    c = Tensor(V * 2, name=name)
    return w, c, (w * c).sum()


def _saved_error(tensor: str, op: str) -> str:
    return rf"{re.escape(tensor)}.*'{op}' saved for its backward pass was modified in place"


# -- (a) through Tensor in-place methods -----------------------------------------------------

TENSOR_WRITES: list[tuple[str, Callable[[Tensor], Any]]] = [
    ("+=", lambda c: c.__iadd__(1.0)),
    ("*=", lambda c: c.__imul__(2.0)),
    ("setitem", lambda c: c.__setitem__(1, 7.0)),
    ("zero_", lambda c: c.zero_()),
    ("copy_", lambda c: c.copy_(np.ones(4))),
    ("fill_", lambda c: c.fill_(1.0)),
    ("detach-zero_", lambda c: c.detach().zero_()),  # the detached tensor shares the version
]


@pytest.mark.parametrize(
    ("change"), [c[1] for c in TENSOR_WRITES], ids=[c[0] for c in TENSOR_WRITES]
)
def test_tensor_inplace_change_of_a_saved_tensor_is_caught(change: Callable[[Tensor], Any]) -> None:
    w, c, loss = _graph()
    change(c)
    with pytest.raises(RuntimeError, match=_saved_error("tensor 'c' of shape (4,)", "mul")):
        loss.backward()
    assert w.grad is None


def test_an_unnamed_tensor_is_named_by_shape_and_dtype() -> None:
    _, c, loss = _graph(name="")
    c += 1.0
    with pytest.raises(RuntimeError, match=_saved_error("tensor of shape (4,) (float64)", "mul")):
        loss.backward()


def test_updating_a_parameter_between_forward_and_backward_is_caught_as_in_pytorch() -> None:
    w = Tensor(V, requires_grad=True, name="w")
    loss = (w * w).sum()
    with no_grad():
        w -= 0.1
    with pytest.raises(RuntimeError, match=_saved_error("tensor 'w'", "mul")):
        loss.backward()
    tw = torch.tensor(V, requires_grad=True)
    tloss = (tw * tw).sum()
    with torch.no_grad():
        tw -= 0.1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        tloss.backward()


def test_a_change_of_a_saved_intermediate_through_detach_is_caught() -> None:
    w = Tensor(V, requires_grad=True)
    h = w * 2.0
    loss = (h * h).sum()
    h.detach().zero_()
    with pytest.raises(RuntimeError, match="'mul' saved"):
        loss.backward()


# -- (b) through the NumPy array -------------------------------------------------------------

ARRAY_WRITES: list[tuple[str, Callable[[Tensor], Any]]] = [
    ("data[...]=", lambda c: c.data.__setitem__(Ellipsis, 5.0)),
    ("data*=", lambda c: c.data.__imul__(2.0)),
    ("data-=", lambda c: c.data.__isub__(0.1 * np.arange(4.0))),
    ("numpy()[:]=", lambda c: c.numpy().__setitem__(slice(None), 0.0)),
    ("np.copyto", lambda c: np.copyto(c.numpy(), np.ones(4))),
    ("data=", lambda c: setattr(c, "data", np.zeros(4))),
]


@pytest.mark.parametrize(("change"), [c[1] for c in ARRAY_WRITES], ids=[c[0] for c in ARRAY_WRITES])
def test_write_through_the_array_after_forward_is_caught(change: Callable[[Tensor], Any]) -> None:
    w, c, loss = _graph()
    change(c)
    with pytest.raises(RuntimeError, match=_saved_error("tensor 'c'", "mul")):
        loss.backward()
    assert w.grad is None


def test_array_handed_out_before_forward_and_fetched_again_after_is_caught() -> None:
    w = Tensor(V, requires_grad=True)
    c = Tensor(V * 2, name="c")
    _ = c.numpy()  # handed out before the pass
    loss = (w * c).sum()
    c.numpy()[:] = 0.0  # fetched again after it: a fresh sample is taken
    with pytest.raises(RuntimeError, match=r"written through \.data or a NumPy view"):
        loss.backward()


def test_parameter_update_through_data_before_backward_is_caught() -> None:
    w = Tensor(V, requires_grad=True, name="w")
    loss = w.sin().sum()  # sin's rule reads its input: cos(w)
    w.data -= 0.01  # an optimiser step written by hand, too early
    with pytest.raises(RuntimeError, match=_saved_error("tensor 'w'", "sin")):
        loss.backward()


def test_a_change_of_an_input_that_no_rule_reads_is_harmless_as_in_pytorch() -> None:
    w = Tensor(V, requires_grad=True, name="w")
    loss = w.tanh().sum()  # tanh's rule reads its output only (1 - ans²): w is not kept
    w.data -= 0.01
    loss.backward()
    tw = torch.tensor(V, requires_grad=True)
    tloss = tw.tanh().sum()
    tw.data -= 0.01
    tloss.backward()
    assert w.grad is not None and tw.grad is not None
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), 1 - np.tanh(V) ** 2, rtol=1e-12)


def test_an_inplace_change_of_a_saved_output_is_caught_as_in_pytorch() -> None:
    w = Tensor(V, requires_grad=True)
    h = w.relu()  # relu's rule reads its output: the mask ans > 0
    loss = h.sum()
    with no_grad():
        h += 1.0
    with pytest.raises(RuntimeError, match=_saved_error("output", "relu")):
        loss.backward()
    assert w.grad is None
    tw = torch.tensor(V, requires_grad=True)
    th = tw.relu()
    tloss = th.sum()
    with torch.no_grad():
        th += 1.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        tloss.backward()


@pytest.mark.parametrize(
    "change",
    [lambda h: h.numpy().__setitem__(0, 9.0), lambda h: h.detach().zero_()],
    ids=["numpy()[0]=", "detach-zero_"],
)
def test_a_write_to_a_saved_output_is_caught(change: Callable[[Tensor], Any]) -> None:
    w = Tensor(V, requires_grad=True)
    h = w.exp()  # exp's rule reads its output: g * ans
    loss = h.sum()
    change(h)
    with pytest.raises(RuntimeError, match=_saved_error("output", "exp")):
        loss.backward()


def test_view_taken_before_forward_and_written_after_is_caught() -> None:
    w = Tensor(V, requires_grad=True)
    c = Tensor(V * 2, name="c")
    view = c.numpy()  # e.g. a data loader or optimiser that keeps the arrays
    loss = (w * c).sum()
    view[:] = 100.0
    with pytest.raises(RuntimeError, match=_saved_error("tensor 'c'", "mul")):
        loss.backward()


# -- legitimate patterns raise nothing -------------------------------------------------------


def test_reading_data_and_numpy_between_forward_and_backward_is_fine() -> None:
    w, c, loss = _graph()
    total = float(c.data.sum() + c.numpy().mean() + w.data[0] + w.numpy()[1])
    assert np.isfinite(total)
    loss.backward()
    assert w.grad is not None
    np.testing.assert_array_equal(w.grad.numpy(), V * 2)


@pytest.mark.parametrize(
    "update",
    [
        lambda w, g: w.data.__isub__(0.1 * g),
        lambda w, g: w.numpy().__setitem__(slice(None), w.numpy() - 0.1 * g),
        lambda w, g: w.__isub__(0.1 * g),  # under no_grad, below
    ],
    ids=["data-=", "numpy()[:]=", "no_grad -="],
)
def test_updating_after_backward_then_a_new_pass_is_fine(
    update: Callable[[Tensor, np.ndarray], Any],
) -> None:
    w = Tensor(V, requires_grad=True)
    expected = V.copy()
    for _ in range(3):
        loss = (w * w).sum()
        loss.backward()
        assert w.grad is not None
        np.testing.assert_allclose(w.grad.numpy(), 2 * expected)  # uses the current values
        with no_grad():
            update(w, w.grad.numpy())
        expected = expected - 0.1 * 2 * expected
        w.grad = None
    np.testing.assert_allclose(w.numpy(), expected)


def test_inplace_change_of_tensors_no_recorded_op_saved_is_fine() -> None:
    w = Tensor(V, requires_grad=True)
    c, d = Tensor(V * 2), Tensor(V * 3)
    scale = (c * d).sum()  # no input requires grad: nothing recorded, c and d not saved
    with no_grad():
        e = w * c  # nothing recorded under no_grad either
    loss = (w * scale.item()).sum()
    c += 1.0
    d.data[:] = 0.0
    d.zero_()
    e.numpy()[:] = 0.0
    loss.backward()
    assert w.grad is not None
    np.testing.assert_allclose(w.grad.numpy(), np.full(4, np.sum(V * 2 * V * 3)))


def test_writing_data_before_the_forward_pass_is_fine() -> None:
    w, c = Tensor(V, requires_grad=True), Tensor(V * 2)
    c.data[:] = 1.0  # sampled here, but the forward pass saves the new values
    loss = (w * c).sum()
    loss.backward()
    assert w.grad is not None
    np.testing.assert_array_equal(w.grad.numpy(), np.ones(4))


def test_a_write_restoring_the_same_values_is_fine() -> None:
    w, c, loss = _graph()
    c.data[:] = c.numpy().copy()  # the values the pass saved: the gradient is still right
    loss.backward()
    assert w.grad is not None
    np.testing.assert_array_equal(w.grad.numpy(), V * 2)


@pytest.mark.parametrize("create_graph", [False, True])
def test_a_hook_that_changes_a_saved_tensor_during_backward_is_caught(create_graph: bool) -> None:
    w = Tensor(V, requires_grad=True, name="w")
    c = Tensor(V * 2, name="c")
    h = w * c  # mul saves c
    out = (h * 2).sum()

    def hook(g: Tensor) -> None:
        with no_grad():
            c.fill_(0.0)  # before mul's node has run

    h.register_hook(hook)
    with pytest.raises(RuntimeError, match=_saved_error("tensor 'c' of shape (4,)", "mul")):
        out.backward(create_graph=create_graph)
    assert w.grad is None
