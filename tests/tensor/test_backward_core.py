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


def test_a_leaf_hook_fires_during_the_pass_with_its_complete_gradient() -> None:
    # Data-parallel training starts an all-reduce from a parameter's hook while the rest of
    # the pass still runs: the hook must see the whole (summed) gradient, before later nodes.
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    events: list[object] = []
    w.register_hook(lambda g: events.append(("w", g.numpy().tolist())))
    x.register_hook(lambda g: events.append(("x", g.numpy().tolist())))
    h = w * 2.0  # w's gradient is complete once h's is: 2 * (used twice below)
    y = (h * x).sum() + (h * 1.0).sum() + (x * x * x).sum()
    queued: list[str] = []
    w.register_hook(lambda g: queue_callback(lambda: queued.append("after")))
    y.backward()
    assert ("w", [2.0 * (3.0 + 1.0), 2.0 * (4.0 + 1.0)]) in events
    assert ("x", [2.0 + 27.0, 4.0 + 48.0]) in events
    assert w.grad is not None and w.grad.numpy().tolist() == [8.0, 10.0]
    assert queued == ["after"]


def test_post_accumulate_hooks_run_after_every_leaf_was_stored_and_not_on_failure() -> None:
    a = Tensor(np.array([1.0]), requires_grad=True)
    b = Tensor(np.array([2.0]), requires_grad=True)
    seen: list[tuple[str, bool]] = []
    # When a's hook runs, b's .grad is already stored too: the pass stores all, then hooks.
    a.register_post_accumulate_grad_hook(lambda t: seen.append(("a", b.grad is not None)))
    (a * b).sum().backward()
    assert seen == [("a", True)]

    y = a * b

    def fail(g: Tensor) -> None:
        raise ValueError("stop")

    y.register_hook(fail)
    with pytest.raises(ValueError, match="stop"):
        y.sum().backward()
    assert seen == [("a", True)]  # a raising pass stores nothing and runs no hook


def test_post_accumulate_hook_runs_after_a_create_graph_pass() -> None:
    w = Tensor(np.array([3.0]), requires_grad=True)
    seen: list[bool] = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad is not None))
    (w * w).sum().backward(create_graph=True)
    assert seen == [True]
    assert w.grad is not None and w.grad.requires_grad
