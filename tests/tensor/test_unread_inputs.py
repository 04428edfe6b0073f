"""What the engine keeps for an input that no rule reads, and the direct call of a lone rule.

``defvjp`` reads the rules' code: a declared-unkept input (``retain_inputs=``) that no rule
loads at all, not even for its shape, is kept as ``UNREAD`` (no ``NotSaved``), and when
that is every input, the nodes share one row of UNREADs. Anything the code reading cannot
see through must count as a read. Backward calls the rule of a lone input that needs a
gradient directly (not through ``Primitive._per_input``): the same gradients, the same
error for an input without a rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from chainrule import Tensor
from chainrule.tensor.node import UNREAD, NotSaved
from chainrule.tensor.ops import elementwise
from chainrule.tensor.primitive import _unread_inputs, defvjp, primitive

RNG = np.random.default_rng(5)


def _pass(g: Any, ans: Any, x: Any, y: Any) -> Any:
    return g


def _reads_y(g: Any, ans: Any, x: Any, y: Any) -> Any:
    return g * y


def _shape_of_x(g: Any, ans: Any, x: Any, y: Any) -> Any:
    return np.broadcast_to(g, x.shape)


def _captures_x(g: Any, ans: Any, x: Any, y: Any) -> Any:
    def inner() -> Any:
        return x

    return g + 0 * inner()


def _looks_at_locals(g: Any, ans: Any, x: Any, y: Any) -> Any:
    return g * locals()["y"]


def _varargs(g: Any, ans: Any, *inputs: Any) -> Any:
    return g


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ((_pass, _pass), (2, {0, 1})),
        ((_pass, _reads_y), (2, {0})),  # (an input is unread only if no rule reads it)
        ((_reads_y, None), (2, {0})),
        ((_shape_of_x, _pass), (2, {1})),  # a shape read is a read
        ((_captures_x, _pass), (2, {1})),  # an inner function's capture is a read
        ((_looks_at_locals, _pass), (0, set())),  # locals(): everything may be read
        ((_varargs,), (0, set())),
        ((_pass, lambda g, ans, x: g), (0, set())),  # arities that disagree
        ((np.negative,), (0, set())),  # no Python code to read
        ((None, None), (0, set())),
    ],
    ids=["none", "one", "with-none", "shape", "closure", "locals", "varargs", "arity", "c", "no"],
)
def test_unread_inputs_counts_every_way_a_rule_can_read(
    rules: tuple[Any, ...], expected: tuple[int, set[int]]
) -> None:
    assert _unread_inputs(rules) == expected


def _pair(fn: Any, name: str, *rules: Any, retain: tuple[int, ...] | None = ()) -> Any:
    prim = primitive(fn, name)
    defvjp(prim, *rules, retain_inputs=retain)
    return prim


def test_an_input_no_rule_reads_is_kept_as_unread_and_the_gradient_fits_from_the_edge() -> None:
    add = _pair(np.add, "my_add", _pass, _pass)
    assert add.blank == (UNREAD, UNREAD)
    x = Tensor(RNG.standard_normal((3, 4)), requires_grad=True)
    y = Tensor(RNG.standard_normal(4), requires_grad=True)  # broadcast: fitted by the engine
    out1, out2 = add(x, y), add(y, x)
    n1, n2 = out1.grad_fn, out2.grad_fn
    assert n1 is not None and n2 is not None
    assert n1.saved is n2.saved is add.blank  # one row shared by the nodes
    (out1.sum() + out2.sum()).backward()
    assert x.grad is not None and y.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 4), 2.0))
    np.testing.assert_array_equal(y.grad.numpy(), np.full(4, 6.0))


def test_a_partly_read_call_keeps_unread_notsaved_and_tensor_each_where_it_belongs() -> None:
    # Input 0 is read for its shape only (not retained: a NotSaved), input 1 is read and
    # retained, input 2 is read by no rule (UNREAD).
    def fn(x: Any, y: Any, z: Any) -> Any:
        return x * y + z

    prim = _pair(
        fn,
        "mixed",
        lambda g, ans, x, y, z: np.broadcast_to(g * y, x.shape),
        None,
        lambda g, ans, x, y, z: g,
        retain=(1,),
    )
    assert prim.unread == {2} and prim.blank is None
    x = Tensor(RNG.standard_normal((2, 3)), requires_grad=True)
    y = Tensor(RNG.standard_normal((2, 3)))
    z = Tensor(RNG.standard_normal((2, 3)), requires_grad=True)
    out = prim(x, y, z)
    node = out.grad_fn
    assert node is not None and node.saved is not None
    assert isinstance(node.saved[0], NotSaved) and node.saved[0].shape == (2, 3)
    assert node.args[1] is y and node.saved[2] is UNREAD and node.args[2] is UNREAD
    out.backward(np.ones((2, 3)))
    assert x.grad is not None and z.grad is not None
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())
    np.testing.assert_array_equal(z.grad.numpy(), np.ones((2, 3)))


@pytest.mark.parametrize("create_graph", [False, True])
def test_built_in_add_and_exp_keep_nothing_and_agree_with_torch(create_graph: bool) -> None:
    assert elementwise.add.blank is not None and elementwise.exp.blank is not None
    a, b = RNG.standard_normal((3, 4)), RNG.standard_normal((1, 4))
    x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    out = (x + y).exp()
    node = out.grad_fn
    assert node is not None and node.saved is not None
    assert all(s is UNREAD for s in node.saved) and node.ans is not None
    out.sum().backward(create_graph=create_graph)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    (ta + tb).exp().sum().backward()
    assert x.grad is not None and y.grad is not None and ta.grad is not None
    assert tb.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), ta.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(y.grad.numpy(), tb.grad.numpy(), rtol=1e-13)


def test_the_lone_needed_input_gets_its_own_rule_only() -> None:
    calls: list[int] = []

    def rule_x(g: Any, ans: Any, x: Any, y: Any, *, scale: float) -> Any:
        calls.append(0)
        return g * y * scale

    def rule_y(g: Any, ans: Any, x: Any, y: Any, *, scale: float) -> Any:
        calls.append(1)
        return g * x * scale

    def fn(x: Any, y: Any, *, scale: float) -> Any:
        return x * y * scale

    prim = _pair(fn, "scaled", rule_x, rule_y, retain=None)
    a, b = RNG.standard_normal(5), RNG.standard_normal(5)
    y = Tensor(b, requires_grad=True)
    prim(a, y, scale=3.0).backward(np.ones(5))  # only y needs a gradient
    assert calls == [1] and y.grad is not None
    np.testing.assert_allclose(y.grad.numpy(), 3.0 * a, rtol=1e-15)
    x = Tensor(a, requires_grad=True)
    y.grad = None
    prim(x, y, scale=2.0).backward(np.ones(5))  # both: through the dispatch
    assert calls == [1, 0, 1] and x.grad is not None and y.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), 2.0 * b, rtol=1e-15)


def test_the_lone_needed_input_without_a_rule_raises_naming_the_op() -> None:
    prim = _pair(np.multiply, "ruleless", None, lambda g, ans, x, y: g * x, retain=None)
    x = Tensor(RNG.standard_normal(3), requires_grad=True)
    with pytest.raises(TypeError, match="ruleless: input 0 is not differentiable"):
        prim(x, np.ones(3)).backward(np.ones(3))
