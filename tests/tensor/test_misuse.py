"""Bad input and misuse: each error names the operation, the shapes or type, and the fix.

In-place changes of tensors saved for backward are in ``test_misuse_inplace.py``; NaN/inf
detection and failed backward passes in ``test_misuse_anomaly.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from chainrule import Tensor, no_grad
from chainrule.tensor import ops


def _t(*shape: int, grad: bool = False) -> Tensor:
    return Tensor(np.ones(shape), requires_grad=grad)


def _shape(shape: tuple[int, ...]) -> str:
    return re.escape(str(shape))


# -- shape mismatches ------------------------------------------------------------------------

SHAPE_ERRORS: list[tuple[str, Callable[[], Any], str, list[tuple[int, ...]]]] = [
    ("add", lambda: _t(2, 3) + _t(4), "add", [(2, 3), (4,)]),
    ("sub", lambda: _t(2, 3, grad=True) - _t(3, 2), "sub", [(2, 3), (3, 2)]),
    ("mul", lambda: _t(5) * _t(2, 4), "mul", [(5,), (2, 4)]),
    ("div", lambda: _t(2, 1, 3) / _t(4, 2), "div", [(2, 1, 3), (4, 2)]),
    ("matmul", lambda: _t(2, 3) @ _t(4, 5), "matmul", [(2, 3), (4, 5)]),
    ("matmul-1d", lambda: _t(3) @ _t(4), "matmul", [(3,), (4,)]),
    ("linear", lambda: ops.linear(_t(4, 3), _t(5, 2), _t(5)), "linear", [(4, 3), (5, 2)]),
    ("reshape", lambda: _t(2, 3).reshape(4, 2), "reshape", [(2, 3), (4, 2)]),
]


@pytest.mark.parametrize(
    ("make", "op", "shapes"), [c[1:] for c in SHAPE_ERRORS], ids=[c[0] for c in SHAPE_ERRORS]
)
def test_shape_mismatch_names_the_op_and_both_shapes(
    make: Callable[[], Any], op: str, shapes: list[tuple[int, ...]]
) -> None:
    with pytest.raises(ValueError) as info:
        make()
    message = str(info.value)
    assert message.startswith(f"{op}:"), message
    for shape in shapes:
        # NumPy spells shapes without spaces in its own text: accept both spellings.
        spelled = [str(shape), str(shape).replace(" ", "")]
        assert any(s in message for s in spelled), f"{shape} missing from: {message}"


def test_broadcast_error_explains_the_broadcasting_rule() -> None:
    with pytest.raises(ValueError, match="broadcastable"):
        _t(2, 3) + _t(4)


def test_matmul_error_says_which_axes_must_agree() -> None:
    with pytest.raises(ValueError, match=re.escape("x.shape[-1] == y.shape[-2]")):
        _t(2, 3) @ _t(4, 5)


def test_index_out_of_range_names_getitem_and_the_shape() -> None:
    with pytest.raises(IndexError, match=r"getitem: .*\(2, 3\).*index 5"):
        _t(2, 3)[5]


def test_linear_with_a_wrong_bias_says_which_bias_shape_to_give() -> None:
    with pytest.raises(ValueError, match=r"linear: .*bias.*give bias shape \(5,\)"):
        ops.linear(_t(4, 3), _t(5, 3), _t(4))


# -- inputs that are not numbers -------------------------------------------------------------

BAD_DATA: list[tuple[str, Any, str]] = [
    ("object", object(), "object"),
    ("None", None, "NoneType"),
    ("str", "abc", "str"),
    ("dict", {"a": 1.0}, "dict"),
    ("object-array", np.array([1.0, "a"], dtype=object), "dtype object"),
    ("ragged-list", [[1.0, 2.0], [3.0]], "list"),
]


@pytest.mark.parametrize(("data", "named"), [c[1:] for c in BAD_DATA], ids=[c[0] for c in BAD_DATA])
def test_non_numeric_data_names_its_type(data: Any, named: str) -> None:
    with pytest.raises(TypeError, match=rf"Tensor\(\): .*{re.escape(named)}.*NumPy array"):
        Tensor(data)


@pytest.mark.parametrize(
    ("operand", "named"),
    [("x", "str"), ([1.0, 2.0], "list"), (np.array([1, None], dtype=object), "dtype object")],
    ids=["str", "list", "object-array"],
)
def test_non_numeric_operand_names_the_op_and_its_type(operand: Any, named: str) -> None:
    with pytest.raises(TypeError, match=rf"add: unsupported operand of type .*{named}"):
        _t(2) + operand
    with pytest.raises(TypeError, match=rf"mul: unsupported operand of type .*{named}"):
        operand * _t(2)


# -- integer tensors cannot require grad -----------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Tensor([1, 2], requires_grad=True),
        lambda: Tensor(np.array([True, False])).requires_grad_(),
        lambda: Tensor.from_numpy(np.arange(3), requires_grad=True),
    ],
    ids=["int-list", "bool-array", "from-numpy"],
)
def test_integer_tensors_cannot_require_grad_and_the_error_says_why(
    make: Callable[[], Any],
) -> None:
    with pytest.raises(TypeError) as info:
        make()
    message = str(info.value)
    assert "only floating-point tensors can require gradients" in message
    assert "piecewise constant" in message  # the reason
    assert "t.float()" in message  # the fix


def test_integer_and_comparison_results_do_not_require_grad() -> None:
    w = _t(3, grad=True)
    assert not (w > 0.5).requires_grad
    assert not w.astype(np.int64).requires_grad


# -- in-place ops on tensors that require grad while recording -------------------------------

INPLACE: list[tuple[str, Callable[[Tensor], Any]]] = [
    ("__iadd__", lambda t: t.__iadd__(1.0)),
    ("__isub__", lambda t: t.__isub__(1.0)),
    ("__imul__", lambda t: t.__imul__(2.0)),
    ("__itruediv__", lambda t: t.__itruediv__(2.0)),
    ("__setitem__", lambda t: t.__setitem__(0, 5.0)),
    ("zero_", lambda t: t.zero_()),
    ("fill_", lambda t: t.fill_(3.0)),
    ("copy_", lambda t: t.copy_(np.zeros(3))),
]


@pytest.mark.parametrize(("op", "change"), INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_change_of_a_leaf_that_requires_grad_raises(
    op: str, change: Callable[[Tensor], Any]
) -> None:
    w = Tensor(np.arange(3.0), requires_grad=True)
    with pytest.raises(RuntimeError, match=rf"{re.escape(op)}: .*requires grad.*no_grad\(\)"):
        change(w)
    np.testing.assert_array_equal(w.numpy(), [0.0, 1.0, 2.0])  # and nothing was written


@pytest.mark.parametrize(("op", "change"), INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_change_of_a_computed_tensor_raises(
    op: str, change: Callable[[Tensor], Any]
) -> None:
    h = Tensor(np.arange(3.0), requires_grad=True) * 1.0
    with pytest.raises(RuntimeError, match=re.escape(op)):
        change(h)


@pytest.mark.parametrize(("op", "change"), INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_change_is_allowed_under_no_grad_and_on_constants(
    op: str, change: Callable[[Tensor], Any]
) -> None:
    w, c = Tensor(np.arange(3.0), requires_grad=True), Tensor(np.arange(3.0))
    with no_grad():
        change(w)
    change(c)
    np.testing.assert_array_equal(w.numpy(), c.numpy())
    assert not np.array_equal(c.numpy(), [0.0, 1.0, 2.0])


def test_inplace_error_suggests_the_out_of_place_operator() -> None:
    w = _t(3, grad=True)
    with pytest.raises(RuntimeError, match=re.escape("x = x + y")):
        w += 1.0


def test_inplace_into_a_read_only_broadcast_view_says_to_copy() -> None:
    view = _t(3).broadcast_to(2, 3)
    with pytest.raises(ValueError, match="read-only"):
        view += 1.0


def test_cross_entropy_leaves_its_logits_unchanged_in_either_memory_order() -> None:
    from chainrule.tensor.ops.loss import cross_entropy

    for logits in (np.arange(12.0).reshape(4, 3), np.asfortranarray(np.arange(12.0).reshape(4, 3))):
        before = logits.copy()
        t = Tensor(logits, requires_grad=True)
        cross_entropy(t, np.array([0, 1, 2, 0])).backward()
        np.testing.assert_array_equal(t.numpy(), before)
