"""``detect_anomaly()`` names the first op that makes a NaN or inf; a failed backward pass
changes no ``.grad`` at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from chainrule import AnomalyError, Tensor, detect_anomaly
from chainrule.tensor.anomaly import is_anomaly_enabled

# The forward passes below make inf and nan on purpose: NumPy's warnings are expected.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


# -- forward ---------------------------------------------------------------------------------


def test_forward_names_the_first_op_that_made_inf() -> None:
    x = Tensor(np.array([0.0, 1.0]), requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError) as info:
        (x * 2.0).log().exp() * 3.0  # log(0) = -inf, then exp, mul would carry it on
    message = str(info.value)
    assert "forward of 'log' produced inf" in message
    assert "this operation made it" in message


def test_forward_names_the_first_op_that_made_nan() -> None:
    x = Tensor(np.array([-1.0, 4.0]))  # also without requires_grad: every op is checked
    with detect_anomaly(), pytest.raises(AnomalyError, match="forward of 'sqrt' produced nan"):
        x.sqrt().log()


def test_forward_blames_the_data_when_an_input_already_holds_nan() -> None:
    x = Tensor(np.array([np.nan, 1.0]))
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"'mul'.*inputs already hold nan"):
        x * 2.0


def test_anomaly_error_is_a_floating_point_error() -> None:
    assert issubclass(AnomalyError, FloatingPointError)


def test_outside_detect_anomaly_nothing_is_checked() -> None:
    y = Tensor(np.array([0.0, 1.0])).log()
    assert np.isneginf(y.numpy()[0])


# -- backward --------------------------------------------------------------------------------


def test_backward_names_the_first_op_whose_gradient_is_inf_and_where_it_was_made() -> None:
    w = Tensor(np.array([0.0, 4.0]), requires_grad=True)
    with detect_anomaly():
        h = (w * 1.0).sqrt()  # forward is finite: sqrt(0) = 0
        loss = (h * 3.0).sum()
        with pytest.raises(AnomalyError) as info:
            loss.backward()  # d/dx √x = 1/(2√x) = inf at 0; mul would carry it on
    message = str(info.value)
    assert "backward of 'sqrt' produced inf in the gradient of its input 0" in message
    assert __file__ in message and "h = (w * 1.0).sqrt()" in message
    assert w.grad is None


def test_backward_of_a_graph_recorded_without_anomaly_mode_is_still_checked() -> None:
    w = Tensor(np.array([0.0, 4.0]), requires_grad=True)
    loss = w.sqrt().sum()
    with detect_anomaly(), pytest.raises(AnomalyError, match="backward of 'sqrt'"):
        loss.backward()


def test_detect_anomaly_works_as_a_decorator_and_restores_the_mode() -> None:
    @detect_anomaly()
    def step(x: Tensor) -> None:
        x.sqrt().sum().backward()

    with pytest.raises(AnomalyError, match="'sqrt'"):
        step(Tensor(np.array([0.0, 1.0]), requires_grad=True))
    assert not is_anomaly_enabled()
    x = Tensor(np.array([0.0, 1.0]), requires_grad=True)
    x.sqrt().sum().backward()  # outside the decorated function: no check, inf is stored
    assert x.grad is not None and np.isinf(x.grad.numpy()[0])


def test_recursive_decorated_function_restores_the_anomaly_mode() -> None:
    @detect_anomaly()
    def depth(n: int) -> int:
        assert is_anomaly_enabled()
        return 0 if n == 0 else 1 + depth(n - 1)

    assert depth(3) == 3
    assert not is_anomaly_enabled()


def test_finite_program_under_detect_anomaly_gives_the_usual_gradient() -> None:
    a = np.array([0.5, 1.5])
    x = Tensor(a, requires_grad=True)
    with detect_anomaly():
        x.log().sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), 1 / a)


# -- a backward pass that raises midway changes no .grad -------------------------------------


class Graph:
    """loss = Σ 2a + Σ k + Σ √h with k = 3c (grad retained) and h = b·1.

    The backward pass finishes a, k and c before it reaches sqrt, h and b; hooks log the
    visits, so a test can prove that some gradients were complete when the pass failed.
    """

    def __init__(self) -> None:
        self.a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
        self.b = Tensor(np.array([0.0, 1.0]), requires_grad=True)  # √ has an inf slope at 0
        self.c = Tensor(np.array([3.0, 4.0]), requires_grad=True)
        self.k = self.c * 3.0
        self.k.retain_grad()
        self.h = self.b * 1.0
        self.visited: list[str] = []
        for name in "akc":
            getattr(self, name).register_hook(lambda g, n=name: self.visited.append(n))
        self.loss = (self.a * 2.0).sum() + self.k.sum() + self.h.sqrt().sum()
        self.tensors = (self.a, self.b, self.c, self.k, self.h)

    def assert_early_gradients_were_complete(self) -> None:
        assert sorted(self.visited) == ["a", "c", "k"], self.visited


def _snapshot(*ts: Tensor) -> list[np.ndarray | None]:
    return [None if t.grad is None else t.grad.numpy().copy() for t in ts]


def _assert_unchanged(before: list[np.ndarray | None], *ts: Tensor) -> None:
    for old, t in zip(before, ts, strict=True):
        if old is None:
            assert t.grad is None
        else:
            assert t.grad is not None
            np.testing.assert_array_equal(t.grad.numpy(), old)


@pytest.mark.parametrize("earlier_grads", [False, True], ids=["no-grads", "earlier-grads"])
def test_anomaly_in_a_late_rule_leaves_every_grad_unchanged(earlier_grads: bool) -> None:
    graph = Graph()
    if earlier_grads:
        for i, t in enumerate(graph.tensors):
            t.grad = Tensor(np.full(2, float(i)))
    before = _snapshot(*graph.tensors)
    with detect_anomaly(), pytest.raises(AnomalyError, match="'sqrt'"):
        graph.loss.backward()
    graph.assert_early_gradients_were_complete()
    _assert_unchanged(before, *graph.tensors)


def _raise(g: Tensor) -> Any:
    raise ValueError("hook refused")


@pytest.mark.parametrize("late", ["b", "h"], ids=["leaf-hook", "non-leaf-hook"])
def test_a_hook_that_raises_leaves_every_grad_unchanged(late: str) -> None:
    graph = Graph()
    graph.loss.backward(retain_graph=True)  # a first, successful pass
    before = _snapshot(*graph.tensors)
    assert before[0] is not None and before[3] is not None  # a and k hold gradients
    getattr(graph, late).register_hook(_raise)
    graph.visited.clear()
    with pytest.raises(ValueError, match="hook refused"):
        graph.loss.backward(retain_graph=True)
    graph.assert_early_gradients_were_complete()
    _assert_unchanged(before, *graph.tensors)


def test_failed_create_graph_pass_leaves_every_grad_unchanged() -> None:
    graph = Graph()
    with detect_anomaly(), pytest.raises(AnomalyError):
        graph.loss.backward(create_graph=True)
    graph.assert_early_gradients_were_complete()
    assert all(t.grad is None for t in graph.tensors)
