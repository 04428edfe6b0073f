"""No work and no memory for what needs no gradient; a very deep graph.

Work is counted with VJP rules that record their calls (a primitive registered here, and
the built-in ``mul`` with its rules wrapped). Memory is checked with weak references:
an array or tensor that nothing holds any more is freed at once by reference counting, so
a dead weak reference proves that the engine kept no reference (and no cycle) to it.
"""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from chainrule import Tensor, no_grad
from chainrule.tensor import defvjp, ops, primitive

RNG = np.random.default_rng(11)
V = RNG.standard_normal(5)


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Only reference counting frees objects: a weakref that dies proves there is no cycle."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def _counting_mul() -> tuple[Any, dict[str, int]]:
    calls = {"x": 0, "y": 0}

    def rule_x(g: Any, ans: Any, x: Any, y: Any) -> Any:
        calls["x"] += 1
        return g * y

    def rule_y(g: Any, ans: Any, x: Any, y: Any) -> Any:
        calls["y"] += 1
        return g * x

    prim = primitive(np.multiply, "counted_mul")
    defvjp(prim, rule_x, rule_y)
    return prim, calls


# -- no VJP for inputs that need no gradient -------------------------------------------------


@pytest.mark.parametrize("create_graph", [False, True])
def test_rule_of_an_input_without_grad_is_never_called(create_graph: bool) -> None:
    mul, calls = _counting_mul()
    w, c = Tensor(V, requires_grad=True), Tensor(V * 2)
    mul(w, c).sum().backward(create_graph=create_graph)
    assert calls == {"x": 1, "y": 0}
    assert w.grad is not None
    np.testing.assert_allclose(w.grad.numpy(), V * 2)


def test_ops_on_constants_are_not_recorded_and_their_rules_never_run() -> None:
    mul, calls = _counting_mul()
    c = Tensor(V)
    const = mul(mul(c, c), c)  # no input requires grad: a plain result, no graph
    assert not const.requires_grad and const.is_leaf
    w = Tensor(V, requires_grad=True)
    out = mul(mul(const, w), const).sum()
    out.backward()
    assert calls == {"x": 1, "y": 1}  # only the path from w: y of the inner, x of the outer
    assert w.grad is not None
    np.testing.assert_allclose(w.grad.numpy(), (V**3) ** 2)


def test_builtin_mul_computes_no_vjp_for_a_constant(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def counted(argnum: int, rule: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            calls.append(argnum)
            return rule(*args, **kwargs)

        return wrapped

    rules = ops.multiply.rules
    assert rules[0] is not None and rules[1] is not None
    monkeypatch.setattr(ops.multiply, "rules", (counted(0, rules[0]), counted(1, rules[1])))
    w, c = Tensor(V, requires_grad=True), Tensor(V)
    (c * w * c * c).sum().backward()  # three muls, w always the second or first operand
    assert sorted(calls) == [0, 0, 1]
    assert w.grad is not None
    np.testing.assert_allclose(w.grad.numpy(), V**3)


# -- gradients of intermediates are freed once passed on -------------------------------------


def _probe_chain(n: int, keep: list[Any] | None) -> list[int]:
    """Backpropagate through ``n`` copies of a primitive whose rule counts, at each call,
    how many gradient arrays seen by earlier calls are still alive."""
    refs: list[weakref.ref[np.ndarray]] = []
    alive: list[int] = []

    def rule(g: Any, ans: Any, x: Any) -> Any:
        alive.append(sum(r() is not None for r in refs))
        refs.append(weakref.ref(g))
        if keep is not None:
            keep.append(g)  # the control: a leak the check must see
        return g * 1.0  # a new array, as real rules make

    probe = primitive(lambda x: x * 1.0, "probe")
    defvjp(probe, rule)
    w = Tensor(RNG.standard_normal(1000), requires_grad=True)
    y = w
    for _ in range(n):
        y = probe(y)
    y.sum().backward()
    assert w.grad is not None
    np.testing.assert_array_equal(w.grad.numpy(), np.ones(1000))
    alive.append(sum(r() is not None for r in refs))  # after the pass
    return alive


def test_each_gradient_is_freed_as_soon_as_it_is_passed_on(no_gc: None) -> None:
    alive = _probe_chain(200, keep=None)
    assert alive == [0] * 201


def test_the_freed_gradient_check_sees_a_leak(no_gc: None) -> None:
    alive = _probe_chain(200, keep=[])
    assert alive == list(range(201))


def test_backward_frees_the_activations_its_graph_saved(
    no_gc: None,
) -> None:
    w = Tensor(V, requires_grad=True)
    hs = [w.tanh()]
    ts = [hs[0]._data]  # tanh's outputs: its rule reads them (1 - ans²), so they are kept
    for _ in range(10):
        t = hs[-1].tanh()
        ts.append(t._data)
        hs.append(t * 0.5)  # mul keeps t (it reads it); tanh reads only its own output
    kept = [weakref.ref(a) for a in ts]
    unread = [weakref.ref(h._data) for h in hs[1:-1]]  # mul's outputs: no rule reads them
    out = hs[-1].sum()
    del hs, ts, t
    assert all(r() is None for r in unread)  # freed as soon as the user dropped them
    assert all(r() is not None for r in kept)  # the graph holds them for backward
    out.backward()
    assert all(r() is None for r in kept)


# -- no_grad keeps no graph ------------------------------------------------------------------


def _intermediates(w: Tensor) -> tuple[Tensor, list[weakref.ref[Tensor]]]:
    h1 = w * 2.0
    h2 = h1.tanh()
    h3 = h2 @ h2
    return h3 * 1.0, [weakref.ref(h1), weakref.ref(h2), weakref.ref(h3)]


def test_no_grad_keeps_no_intermediate_alive(no_gc: None) -> None:
    w = Tensor(V, requires_grad=True)
    with no_grad():
        out, refs = _intermediates(w)
    assert not out.requires_grad and out.is_leaf
    assert all(r() is None for r in refs)


def test_with_grad_the_graph_keeps_intermediates_until_it_is_dropped(no_gc: None) -> None:
    w = Tensor(V, requires_grad=True)
    out, (h1, h2, h3) = _intermediates(w)
    assert out.requires_grad
    assert h1() is None  # w * 2: only tanh reads it, and tanh's rule reads only its output
    assert h2() is not None and h3() is not None  # read by h2 @ h2 and h3 * 1.0
    del out
    assert h2() is None and h3() is None  # no reference cycle: freed without the collector


# -- a very deep graph -----------------------------------------------------------------------


def test_chain_of_100000_ops_backpropagates_with_the_default_recursion_limit() -> None:
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # Python's default, whatever the test runner set
    try:
        x = Tensor(np.array([0.5, -1.0]), requires_grad=True)
        y = x
        for _ in range(50_000):
            y = y * 1.00001 + 0.5  # two ops per step
        y.sum().backward()
    finally:
        sys.setrecursionlimit(previous)
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), np.full(2, 1.00001**50_000), rtol=1e-9)
