"""``defvjp_argnums``: one rule that gives the gradients of several inputs at once.

The built-in ``linear`` uses it (∂ℓ/∂h, ∂ℓ/∂Ω and ∂ℓ/∂β from one call); it is checked
against PyTorch with the other ops. Here a primitive registered in the test checks the
contract itself: the rule is asked only for the inputs that need a gradient, in order,
in every kind of backward pass (arrays, recorded with create_graph, and with ``inputs``
as ``func.grad`` uses), and its gradients are fitted to the inputs like any other rule's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from chainrule import Tensor, func, gradcheck
from chainrule.tensor import defvjp_argnums, primitive

RNG = np.random.default_rng(5)


def _scaled_sum() -> tuple[Any, list[tuple[int, ...]]]:
    """f(x, y, s) = s * (x + y), y broadcast against x; records the argnums it was asked for."""
    asked: list[tuple[int, ...]] = []

    def rule(argnums: Sequence[int], g: Any, ans: Any, x: Any, y: Any, s: Any) -> list[Any]:
        asked.append(tuple(argnums))
        grads = {0: g * s, 1: g * s, 2: (g * (x + y)).sum()}
        return [grads[i] for i in argnums]  # y's is left at x's shape: the engine sums it

    prim = primitive(lambda x, y, s: s * (x + y), "scaled_sum")
    defvjp_argnums(prim, rule)
    return prim, asked


def test_the_rule_is_asked_only_for_inputs_that_need_a_gradient() -> None:
    f, asked = _scaled_sum()
    x = Tensor(RNG.standard_normal((3, 4)), requires_grad=True)
    y = Tensor(RNG.standard_normal(4))  # data: no gradient wanted
    s = Tensor(np.array(1.5), requires_grad=True)
    f(x, y, s).sum().backward()
    assert asked == [(0, 2)]
    np.testing.assert_allclose(x.grad.numpy(), np.full((3, 4), 1.5))
    np.testing.assert_allclose(s.grad.numpy(), (x.numpy() + y.numpy()).sum())
    assert y.grad is None


def test_a_broadcast_input_gets_its_gradient_summed_back_to_its_shape() -> None:
    f, _ = _scaled_sum()
    x = Tensor(RNG.standard_normal((3, 4)), requires_grad=True)
    y = Tensor(RNG.standard_normal(4), requires_grad=True)
    s = Tensor(np.array(-0.5), requires_grad=True)
    f(x, y, s).sum().backward()
    assert y.grad is not None and y.grad.shape == (4,)
    np.testing.assert_allclose(y.grad.numpy(), np.full(4, -0.5 * 3))


def test_first_and_second_order_gradients_pass_gradcheck() -> None:
    f, asked = _scaled_sum()
    x = Tensor(RNG.standard_normal((2, 3)), requires_grad=True)
    y = Tensor(RNG.standard_normal(3), requires_grad=True)
    s = Tensor(np.array(0.7), requires_grad=True)
    assert gradcheck(lambda a, b, c: (f(a, b, c) ** 2).sum(), x, y, s, order=2)
    assert (0, 1, 2) in asked


@pytest.mark.parametrize("argnums", [0, 2, (0, 2)])
def test_func_grad_asks_only_for_the_requested_inputs(argnums: int | tuple[int, ...]) -> None:
    f, asked = _scaled_sum()
    x, y, s = RNG.standard_normal((2, 3)), RNG.standard_normal(3), np.array(2.0)
    grads = func.grad(lambda a, b, c: f(a, b, c).sum(), argnums=argnums)(x, y, s)
    wanted = (argnums,) if isinstance(argnums, int) else argnums
    assert asked == [wanted]
    expected = {0: np.full((2, 3), 2.0), 2: (x + y).sum()}
    got = (grads,) if isinstance(argnums, int) else grads
    for i, g in zip(wanted, got, strict=True):
        np.testing.assert_allclose(np.asarray(g), expected[i])
