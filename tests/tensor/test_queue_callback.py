"""queue_callback: run once after the pass has stored .grad; dropped when the pass raises."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import Tensor
from chainrule.tensor.backward import queue_callback


@pytest.mark.parametrize("create_graph", [False, True])
def test_a_queued_callback_runs_once_after_grad_is_stored(create_graph: bool) -> None:
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    seen: list[object] = []

    def hook(g: Tensor) -> None:
        seen.append(("hook", w.grad))  # during the pass: not stored yet
        queue_callback(lambda: seen.append(("after", w.grad.numpy().tolist())))

    w.register_hook(hook)
    (w * w).sum().backward(create_graph=create_graph)
    assert seen == [("hook", None), ("after", [2.0, 4.0])]
    (w * 3).sum().backward()  # the queue was emptied: only the new callback runs
    assert seen[-1] == ("after", [5.0, 7.0]) and len(seen) == 4


def test_a_pass_that_raises_drops_its_callbacks() -> None:
    w = Tensor(np.array([1.0]), requires_grad=True)
    ran: list[int] = []

    def hook(g: Tensor) -> None:
        queue_callback(lambda: ran.append(1))
        raise ValueError("boom")

    w.register_hook(hook)
    with pytest.raises(ValueError, match="boom"):
        (w * 2).sum().backward()
    assert ran == []
    v = Tensor(np.array([1.0]), requires_grad=True)
    (v * 2).sum().backward()
    assert ran == []


def test_queue_callback_outside_backward_says_where_to_call_it() -> None:
    with pytest.raises(RuntimeError, match="no backward pass is running"):
        queue_callback(lambda: None)
