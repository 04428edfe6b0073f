"""The one backward core: keyword tensors, callbacks after a pass, post-accumulate hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chainrule import Tensor, gradcheck
from chainrule.tensor import ops
from chainrule.tensor.backward import queue_callback


def test_a_bias_given_by_keyword_is_recorded_and_gets_its_gradient() -> None:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(2), requires_grad=True)
    (ops.linear(x, w, bias=b) ** 2).sum().backward()

    xt, wt, bt = (torch.tensor(t.numpy(), requires_grad=True) for t in (x, w, b))
    (torch.nn.functional.linear(xt, wt, bias=bt) ** 2).sum().backward()
    for mine, theirs in ((x, xt), (w, wt), (b, bt)):
        assert mine.grad is not None and theirs.grad is not None
        np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-12)


def test_keyword_tensors_pass_gradcheck_to_second_order() -> None:
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((3, 2)), rng.standard_normal((4, 2)), rng.standard_normal(4)
    assert gradcheck(lambda x, w, b: ops.linear(x, w, bias=b).tanh(), x, w, b, order=2)


def test_a_constant_tensor_bound_by_keyword_works_as_the_array_would() -> None:
    x = Tensor(np.array([-2.0, 0.5, 3.0]), requires_grad=True)
    y = x.clip(min=Tensor(np.array(-1.0)), max=Tensor(np.array(1.0)))
    y.sum().backward()
    assert y.numpy().tolist() == [-1.0, 0.5, 1.0]
    assert x.grad is not None and x.grad.numpy().tolist() == [0.0, 1.0, 0.0]


def test_a_keyword_tensor_that_needs_a_gradient_the_op_cannot_give_names_the_input() -> None:
    x = Tensor(np.array([-2.0, 0.5]), requires_grad=True)
    low = Tensor(np.array(-1.0), requires_grad=True)
    with pytest.raises(TypeError, match="clip: input 1 is not differentiable"):
        x.clip(min=low).sum().backward()


def test_a_tensor_by_keyword_to_an_op_without_a_signature_names_the_argument() -> None:
    x = Tensor(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"'where' cannot take a tensor by keyword"):
        ops.exp(x, where=Tensor(np.array([True, False])))


def test_queued_callbacks_run_once_after_the_gradients_are_stored() -> None:
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    seen: list[object] = []

    def hook(g: Tensor) -> None:
        seen.append("hook")
        queue_callback(lambda: seen.append(w.grad.numpy().tolist() if w.grad is not None else None))

    w.register_hook(hook)
    (w * 3.0).sum().backward()
    assert seen == ["hook", [3.0, 3.0]]


def test_callbacks_of_a_pass_that_raises_do_not_run() -> None:
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    ran: list[int] = []
    y = w * 3.0

    def hook(g: Tensor) -> None:
        queue_callback(lambda: ran.append(1))
        raise ValueError("stop")

    y.register_hook(hook)
    with pytest.raises(ValueError, match="stop"):
        y.sum().backward()
    assert ran == [] and w.grad is None


def test_queue_callback_outside_a_backward_pass_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no backward pass is running"):
        queue_callback(lambda: None)


def test_post_accumulate_grad_hooks_see_the_accumulated_grad() -> None:
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    seen: list[list[float]] = []
    handle = w.register_post_accumulate_grad_hook(
        lambda t: seen.append(t.grad.numpy().tolist() if t.grad is not None else [])
    )
    (w * 2.0).sum().backward()
    (w * 2.0).sum().backward()
    handle.remove()
    (w * 2.0).sum().backward()
    assert seen == [[2.0, 2.0], [4.0, 4.0]]


def test_post_accumulate_grad_hook_on_a_non_leaf_is_an_error() -> None:
    w = Tensor(np.array([1.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="only a leaf"):
        (w * 2.0).register_post_accumulate_grad_hook(lambda t: None)
