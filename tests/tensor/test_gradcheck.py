"""gradcheck: passes on the engine's ops, and catches wrong VJP rules, naming the input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from chainrule import Tensor, gradcheck
from chainrule.gradcheck import GradcheckError
from chainrule.tensor import ops
from chainrule.tensor.ops.loss import cross_entropy
from chainrule.tensor.primitive import defvjp, primitive

RNG = np.random.default_rng(3)
X = RNG.standard_normal((4, 3))
W = RNG.standard_normal((5, 3))
B = RNG.standard_normal(5)
V = RNG.standard_normal(3)

# A primitive with a wrong first-order rule: d/dx x² = 2x, but the rule says x.
bad_square = primitive(np.square, "bad_square")
defvjp(bad_square, lambda g, ans, x: g * x)

# Right at first order, wrong at second: np.asarray drops the graph when the rule runs on
# Tensors (create_graph=True), so the second derivative of x³ comes out as 0, not 6x.
flat_cube = primitive(lambda x: x**3, "flat_cube")
defvjp(flat_cube, lambda g, ans, x: g * (3 * np.asarray(x) ** 2))

# Wrong only in a cross term: d/dx (x·y) = y is right, d/dy uses the data of x, so
# ∂²/∂x∂y is lost.
mul_flat_y = primitive(np.multiply, "mul_flat_y")
defvjp(mul_flat_y, lambda g, ans, x, y: g * y, lambda g, ans, x, y: g * np.asarray(x))


@pytest.mark.parametrize(
    ("fn", "inputs"),
    [
        (lambda x, w, b: ops.linear(x, w, b).tanh(), (X, W, B)),
        (lambda x: x.softmax(-1), (X,)),
        (lambda x, v: (x * v).logsumexp(1), (X, V)),  # broadcasting: v is summed back
        (lambda x, w: (x @ w.T).sigmoid().sum(), (X, W)),
        (lambda x: (x.exp() / (1 + x**2)).log_softmax(0), (X,)),
        (lambda x, w, y: cross_entropy(x @ w.T, y), (X, W, np.array([0, 4, 2, 1]))),
    ],
)
@pytest.mark.parametrize("order", [1, 2])
def test_correct_ops_pass(fn: Any, inputs: tuple[Any, ...], order: int) -> None:
    assert gradcheck(fn, *inputs, order=order) is True


def test_tensor_inputs_pass_and_are_left_alone() -> None:
    x = Tensor(X.copy(), requires_grad=True)
    assert gradcheck(lambda x: (x @ x.T).tanh(), x, order=2)
    np.testing.assert_array_equal(x.numpy(), X)
    assert x.grad is None


def test_wrong_first_order_rule_fails_naming_the_input() -> None:
    def fn(a: Any, b: Any) -> Any:
        return a.tanh() * bad_square(b)

    with pytest.raises(GradcheckError, match=r"gradient of input 1 \(shape \(4, 3\)\)") as info:
        gradcheck(fn, X, X + 1)
    message = str(info.value)
    assert "analytic directional derivative is" in message and "numeric one is" in message
    assert gradcheck(fn, X, X + 1, raise_exception=False) is False


def test_wrong_rule_on_the_first_input_and_a_tensor_name() -> None:
    b = Tensor(X + 1, name="weights")
    with pytest.raises(GradcheckError, match=r"gradient of input 0 'weights' \(shape \(4, 3\)\)"):
        gradcheck(lambda b, a: (bad_square(b) @ a.T).sum(), b, X)


def test_wrong_rule_found_through_a_non_scalar_output() -> None:
    with pytest.raises(GradcheckError, match="gradient of input 0"):
        gradcheck(lambda x: bad_square(x).softmax(-1), X)


def test_rule_that_is_not_differentiable_fails_only_at_second_order() -> None:
    fn = lambda x: flat_cube(x).sum()  # noqa: E731
    assert gradcheck(fn, X, order=1)
    with pytest.raises(GradcheckError, match=r"second derivatives disagree.*gradient of input 0"):
        gradcheck(fn, X, order=2)
    assert gradcheck(fn, X, order=2, raise_exception=False) is False


def test_second_order_failure_names_both_inputs_of_a_cross_term() -> None:
    fn = lambda x, y: mul_flat_y(x, y).sum()  # noqa: E731
    assert gradcheck(fn, X, X - 1, order=1)
    with pytest.raises(GradcheckError, match=r"gradient of input (0|1) .*direction \d of input"):
        gradcheck(fn, X, X - 1, order=2)


def test_inputs_must_be_float64_and_the_error_says_why() -> None:
    with pytest.raises(TypeError, match=r"input 0 \(shape \(4, 3\)\) is float32.*float64.*1e-0"):
        gradcheck(lambda x: x.tanh(), X.astype(np.float32))
    with pytest.raises(TypeError, match="fn must return a float64 Tensor, got dtype float32"):
        gradcheck(lambda x: x.astype(np.float32), X)


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match="order must be 1 or 2, got 3"):
        gradcheck(lambda x: x, X, order=3)
    with pytest.raises(ValueError, match="no floating-point input"):
        gradcheck(lambda k: Tensor(np.ones(2)) * k, 3)
    with pytest.raises(ValueError, match="n_directions >= 1"):
        gradcheck(lambda x: x, X, n_directions=0)
