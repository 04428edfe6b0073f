"""Bad input to the scalar engine: errors that name the op, the values, and the fix."""

from __future__ import annotations

import pytest

from chainrule import Value


@pytest.mark.parametrize("bad", ["1.0", None, [1.0], complex(1, 2), object()])
@pytest.mark.parametrize(
    ("symbol", "apply"),
    [
        ("add", lambda v, o: v + o),
        ("add", lambda v, o: o + v),
        ("mul", lambda v, o: v * o),
        ("mul", lambda v, o: o * v),
        ("sub", lambda v, o: v - o),
        ("div", lambda v, o: v / o),
        ("pow", lambda v, o: v**o),
    ],
)
def test_non_numeric_operand_raises_type_error_naming_op_and_type(
    symbol: str, apply: object, bad: object
) -> None:
    with pytest.raises(TypeError) as info:
        apply(Value(1.0), bad)  # type: ignore[operator]
    message = str(info.value)
    # Python's own error for str * Value ("can't multiply sequence") also names the types.
    assert type(bad).__name__ in message
    if not isinstance(bad, str | list):
        assert symbol in message


def test_value_of_a_value_says_to_use_data() -> None:
    with pytest.raises(TypeError, match=r"Value\(\).*got Value.*\.data"):
        Value(Value(1.0))  # type: ignore[arg-type]


@pytest.mark.parametrize("x", [0.0, -1.0, -1e-300])
def test_log_of_non_positive_names_op_and_value(x: float) -> None:
    with pytest.raises(ValueError, match=rf"Value\.log.*non-positive.*\({x!r}\)"):
        Value(x).log()


def test_sqrt_of_negative_names_op_and_value() -> None:
    with pytest.raises(ValueError, match=r"Value\.sqrt.*\(-4\.0\)"):
        Value(-4.0).sqrt()


@pytest.mark.parametrize("denominator", [Value(0.0), 0.0, 0])
def test_division_by_zero_names_op_and_values(denominator: object) -> None:
    with pytest.raises(ZeroDivisionError, match=r"div.*division by zero: 3\.0 / 0\.0"):
        Value(3.0) / denominator  # type: ignore[operator]


def test_reverse_division_by_zero_value() -> None:
    with pytest.raises(ZeroDivisionError, match=r"div.*2\.0 / 0\.0"):
        2.0 / Value(0.0)


@pytest.mark.parametrize("exponent", [0.5, Value(0.5), 1.0 / 3.0])
def test_negative_base_with_fractional_exponent_names_op_and_values(exponent: object) -> None:
    with pytest.raises(ValueError, match=r"pow.*\(-8\.0\) \*\* 0\.(5|333).*not a real number"):
        Value(-8.0) ** exponent  # type: ignore[operator]


def test_zero_to_a_negative_power_is_a_division_by_zero() -> None:
    with pytest.raises(ZeroDivisionError, match=r"pow.*0\.0 \*\* -1"):
        Value(0.0) ** -1


def test_errors_leave_the_operands_untouched() -> None:
    a = Value(-2.0)
    with pytest.raises(ValueError):
        a.log()
    assert a.data == -2.0 and a.grad == 0.0 and a._prev == ()
