"""The graph walk and its memory behaviour: deep chains, shared nodes, no cycles, accumulation."""

from __future__ import annotations

import gc
import random
import sys
import weakref

from chainrule import Value, toposort
from chainrule.scalar import MLP


def test_toposort_puts_every_node_after_its_parents_once() -> None:
    a, b = Value(1.0), Value(2.0)
    c = a * b
    d = c + a
    e = d * c + c
    order = toposort(e)
    assert len(order) == len(set(order)) == 2 + 4  # leaves a, b; ops c, d, d*c, e
    position = {node: i for i, node in enumerate(order)}
    for node in order:
        for parent in node._prev:
            assert position[parent] < position[node]
    assert order[-1] is e


def test_backward_through_a_million_node_chain_with_default_recursion_limit() -> None:
    limit = sys.getrecursionlimit()
    assert limit < 1_000_000  # the default (1000): a recursive walk would fail
    x = Value(1.0)
    y = x
    for _ in range(1_000_000):
        y = -y  # one node per step, no constants: a chain of a million nodes
    y = y * 2.0
    y.backward()
    assert sys.getrecursionlimit() == limit
    assert x.grad == 2.0  # (-1)^1_000_000 * 2
    del y  # freeing the chain must not overflow the C stack either
    gc.collect()


def test_node_used_many_times_sums_every_path() -> None:
    a = Value(3.0)
    total = a
    for _ in range(99):
        total = total + a  # a appears 100 times
    (total * a).backward()  # d/da (100 a * a) = 200 a
    assert a.grad == 600.0

    b = Value(2.0)
    (b + b).backward()
    assert b.grad == 2.0


def test_dropped_graph_is_freed_at_once_without_the_cycle_collector() -> None:
    gc.collect()
    gc.disable()
    try:
        random.seed(0)
        model = MLP(3, [8, 8, 1])
        x = [Value(0.5), Value(-1.0), Value(2.0)]
        out = model(x)
        assert isinstance(out, Value)
        loss = out * out + sum(p * p for p in model.parameters())
        loss.backward()
        refs = [weakref.ref(node) for node in toposort(loss)]
        assert len(refs) > 100
        del loss, out, x, model
        alive = sum(r() is not None for r in refs)
        assert alive == 0, f"{alive} nodes survive without the garbage collector"
    finally:
        gc.enable()


def test_no_node_is_part_of_a_reference_cycle() -> None:
    gc.collect()
    gc.disable()
    try:
        a = Value(1.5)
        y = ((a * 2).exp() + a.tanh() - a / 3 + a**2 + (2**a).sigmoid()).relu()
        y.backward()
        refs = [weakref.ref(n) for n in toposort(y)]
        del a, y
        assert gc.collect() == 0  # nothing that only the cycle collector could free
        assert all(r() is None for r in refs)
    finally:
        gc.enable()


def test_grad_accumulates_across_backward_calls_and_zero_grad_resets() -> None:
    random.seed(1)
    model = MLP(2, [4, 1])
    x = [Value(0.3), Value(-0.8)]
    loss = model(x)
    assert isinstance(loss, Value)
    loss.backward()
    first = [p.grad for p in model.parameters()]
    loss.backward()
    second = [p.grad for p in model.parameters()]
    assert any(g != 0 for g in first)
    assert second == [2 * g for g in first]  # exact: each pass adds the same numbers
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


def test_repeated_backward_doubles_intermediate_grads_instead_of_compounding() -> None:
    # micrograd re-seeds an intermediate's grad with what it already holds, so a second
    # backward gives 3x at the leaves; chainrule's passes are independent.
    x = Value(2.0)
    h = x * 3.0
    y = h * h
    y.backward()
    y.backward()
    assert h.grad == 2 * (2 * h.data)
    assert x.grad == 2 * (18.0 * x.data)
