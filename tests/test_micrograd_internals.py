"""micrograd's internals, as its lecture notebooks use them, on chainrule's Value."""

from __future__ import annotations

import gc
import math
import random
import weakref

import micrograd.engine
import micrograd.nn

import chainrule.scalar as cs
from chainrule import Value, to_dot


def _lecture_graph(V: type) -> tuple:  # type: ignore[type-arg]
    """The lecture's neuron: o = tanh(x1 w1 + x2 w2 + b), labelled."""
    x1, x2 = V(2.0, label="x1"), V(0.0, label="x2")
    w1, w2 = V(-3.0, label="w1"), V(1.0, label="w2")
    b = V(6.8813735870195432, label="b")
    n = x1 * w1 + x2 * w2 + b
    o = n.tanh()
    return o, n, (x1, x2, w1, w2, b)


def test_stepping_backward_by_hand_with_backward_methods() -> None:
    # micrograd's Value takes label= too; step node by node in reverse order, as the lecture.
    o, n, leaves = _lecture_graph(Value)
    o.grad = 1.0
    o._backward()
    assert math.isclose(n.grad, 1 - o.data**2)
    for node in reversed(cs.engine.toposort(o)[:-1]):
        node._backward()
    x1, _, w1, _, b = leaves
    assert math.isclose(w1.grad, x1.data * (1 - o.data**2))
    assert math.isclose(x1.grad, w1.data * (1 - o.data**2))
    assert math.isclose(b.grad, 1 - o.data**2)
    ref = _lecture_graph(Value)
    ref[0].backward()
    assert [v.grad for v in leaves] == [v.grad for v in ref[2]]


def test_constructor_prev_and_op_as_micrograd() -> None:
    a, b = Value(2.0), Value(3.0)
    c = Value(a.data * b.data, (a, b), "*")
    assert c._op == "*" and set(c._prev) == {a, b} and c.data == 6.0
    d = a * b
    assert d._op == "*" and set(d._prev) == {a, b}
    assert Value(1.0, "lbl").label == "lbl" and Value(1.0, label="x").label == "x"


class MyValue(Value):
    """A course's subclass: an extra method and attribute, ops stay in the subclass."""

    def zero_grad(self) -> None:
        for node in cs.engine.toposort(self):
            node.grad = 0.0

    def double(self) -> MyValue:
        out = MyValue(self.data * 2, (self,), "x2")

        def _backward() -> None:
            self.grad += 2 * out.grad

        out._backward = _backward  # type: ignore[method-assign]
        return out


def test_a_subclass_keeps_its_class_attributes_and_closures() -> None:
    x = MyValue(3.0)
    x.note = "mine"  # type: ignore[attr-defined]
    y = (x * x + 1).double() * 2
    assert isinstance(y, MyValue) and isinstance(2 * x, MyValue) and isinstance(x.tanh(), MyValue)
    y.backward()  # d/dx 2·2(x²+1) = 8x
    assert x.grad == 24.0 and x.note == "mine"  # type: ignore[attr-defined]
    y.zero_grad()
    assert x.grad == 0.0
    # micrograd's own engine gives the same numbers for the same subclass code
    m = micrograd.engine.Value(3.0)
    my = ((m * m + 1) * 2) * 2
    my.backward()
    assert m.grad == 24.0


def test_no_reference_cycles_without_hand_made_closures() -> None:
    random.seed(0)
    model = cs.MLP(2, [4, 1])
    out = model([Value(1.0), Value(-2.0)])
    out.backward()
    probe = weakref.ref(out)
    gc.disable()
    try:
        del out
        assert probe() is None  # freed by reference counting: no cycle
    finally:
        gc.enable()


def test_unfused_neuron_and_unfused_picture_match_micrograd() -> None:
    random.seed(1)
    ours = cs.MLP(3, [2, 1], fused=False)
    random.seed(1)
    theirs = micrograd.nn.MLP(3, [2, 1])
    x = [1.0, -0.5, 2.0]
    a, b = ours(x), theirs(x)
    a.backward()
    b.backward()
    assert a.data == b.data
    assert [p.grad for p in ours.parameters()] == [p.grad for p in theirs.parameters()]
    ops = [n._op for n in cs.engine.toposort(a)]
    assert "*" in ops and "+" in ops and "w·x+b" not in ops
    random.seed(1)
    fused = cs.MLP(3, [2, 1])
    f = fused([1.0, -0.5, 2.0])
    f.backward()
    picture = to_dot(f, unfuse=True)
    real = to_dot(a)
    # The same number of op nodes of each kind and the same data/grad records.
    for op in ('label="*"', 'label="+"', "label=ReLU"):
        assert picture.count(op) == real.count(op)
    assert "w·x+b" not in picture and "w·x+b" in to_dot(f)
    records = sorted(line.split("label=")[1] for line in picture.splitlines() if "record" in line)
    real_records = sorted(line.split("label=")[1] for line in real.splitlines() if "record" in line)
    assert records == real_records
