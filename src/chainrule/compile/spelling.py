"""How a recorded NumPy call is spelled in the generated source.

Two-input ufuncs are written as their operators (``a @ b`` calls ``np.matmul(a, b)``, so
the line computes exactly what the traced call did), in-place ones as ``a += b``; NumPy's
Python wrappers around reductions (``np.sum``, ``x.max()``) as the ufunc reductions they
call, without the wrapper's ~1-2 µs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from chainrule.compile.tracer import Recorder

# Operators the source shows for two-input ufuncs (``a @ b`` calls np.matmul(a, b)).
_BINARY = {
    "add": "+", "subtract": "-", "multiply": "*", "divide": "/", "matmul": "@", "power": "**",
    "greater": ">", "less": "<", "greater_equal": ">=", "less_equal": "<=", "equal": "==",
    "not_equal": "!=", "bitwise_and": "&", "bitwise_or": "|",
}  # fmt: skip
# Short names for the variables a call makes (the op is in the name: ``mm4 = x @ W``).
SHORT_NAMES = {"matmul": "mm", "multiply": "mul", "subtract": "sub", "divide": "div",
          "greater": "gt", "maximum": "max", "negative": "neg", "true_divide": "div"}  # fmt: skip
# np.sum(x, axis, keepdims) is np.add.reduce(x, axis, keepdims=...) behind a Python wrapper
# (~1-2 µs a call); the same for max and min. The program calls the ufunc's reduce itself.
_REDUCTIONS = {np.sum: "np.add", np.max: "np.maximum", np.min: "np.minimum"}


def as_reduce(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str] | None:
    ufunc = _REDUCTIONS.get(func)
    if (
        ufunc is None
        or not args
        or getattr(args[0], "_rec", None) is None
        or set(kwargs) - {"axis", "keepdims"}
    ):
        return None
    if len(args) > 2 or args[0]._scalar:
        return None
    axis = args[1] if len(args) > 1 else kwargs.get("axis")
    if not (axis is None or isinstance(axis, int | tuple)):
        return None
    rec = args[0]._rec
    keep = bool(kwargs.get("keepdims", False))
    extra = ", keepdims=True" if keep else ""
    return ufunc, f"{ufunc}.reduce({rec.fmt(args[0])}, axis={rec.fmt(axis)}{extra})"


def ufunc_code(rec: Recorder, ufunc: Any, method: str, inputs: Any, kwargs: Any) -> str:
    name = ufunc.__name__
    fn = f"np.{name}" if getattr(np, name, None) is ufunc else rec.const(ufunc, "f")
    out = kwargs.get("out")
    if method == "__call__" and len(inputs) == 2 and name in _BINARY:
        op = _BINARY[name]
        rest = {k: v for k, v in kwargs.items() if k != "out"}
        if not rest and out is None:
            return f"{rec.fmt(inputs[0])} {op} {rec.fmt(inputs[1])}"
        if not rest and len(out) == 1 and out[0] is inputs[0]:
            return f"{rec.fmt(inputs[0])} {op}= {rec.fmt(inputs[1])}"
    if method == "__call__" and len(inputs) == 1 and name == "negative" and not kwargs:
        return f"-{rec.fmt(inputs[0])}"
    if out is not None:
        kwargs = {**kwargs, "out": out[0] if len(out) == 1 else out}
    call = fn if method == "__call__" else f"{fn}.{method}"
    return f"{call}({rec.fmt_call(tuple(inputs), kwargs)})"
