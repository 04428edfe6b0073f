"""The dtype policy of the tensor engine.

- A tensor made from Python data (floats, lists of floats) gets the *default float dtype*,
  float32 unless changed, as in PyTorch: half the memory and twice the BLAS speed of
  float64, and enough precision for training.
- A tensor made from a NumPy array keeps the array's dtype: float64 stays float64 (the
  tests and gradient checks rely on it), float32 stays float32.
- Python ints give int64 and bools give bool; such tensors cannot require gradients.
- Operations follow NumPy's promotion rules; a Python number operand does not change the
  dtype (``float32_tensor * 2.0`` is float32).

Change the default with ``set_default_dtype(np.float64)`` or, for a block of code,
``with default_dtype(np.float64): ...``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

_default: np.dtype[Any] = np.dtype(np.float32)


def get_default_dtype() -> np.dtype[Any]:
    """The float dtype given to tensors made from Python data (float32 unless changed)."""
    return _default


def set_default_dtype(dtype: Any) -> None:
    """Set the float dtype for tensors made from Python data: float16, float32 or float64."""
    global _default
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(
            f"set_default_dtype: the default must be a floating dtype (float16/32/64), got "
            f"{dt}; integer tensors are made from Python ints automatically."
        )
    _default = dt


@contextmanager
def default_dtype(dtype: Any) -> Iterator[None]:
    """Use another default float dtype inside a ``with`` block."""
    previous = _default
    set_default_dtype(dtype)
    try:
        yield
    finally:
        set_default_dtype(previous)


def is_differentiable(dtype: np.dtype[Any]) -> bool:
    """Only floating-point tensors can carry gradients."""
    return dtype.kind == "f"


# -- PyTorch's names for the dtypes (chainrule.float32, chainrule.long, ...) -------------
# A dtype here is a NumPy dtype, so `dtype=chainrule.float64` works wherever NumPy's does
# and `t.dtype == chainrule.float32` compares as expected.
float16 = half = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
int8 = np.dtype(np.int8)
int16 = short = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)

# PyTorch's promotion: a category (bool < integer < float) is decided by all operands, the
# width within it by the most "dimensioned" operands that have that category: tensors with
# dimensions first, then 0-d tensors, then Python numbers (which give the default dtype).
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}
_SCALAR_DTYPE = {0: bool_, 1: int64}


def _group(x: Any) -> tuple[np.dtype[Any], int]:
    """(dtype, priority) of an operand: 2 tensor/array with axes, 1 0-d, 0 a number."""
    data = getattr(x, "_data", x)
    if isinstance(data, np.ndarray):
        return data.dtype, 2 if data.ndim else 1
    if isinstance(data, bool | np.bool_):
        return bool_, 0
    if isinstance(data, int | np.integer):
        return int64, 0
    return _default, 0


def result_type(*operands: Any) -> np.dtype[Any]:
    """The dtype PyTorch gives ``a op b``: float32 tensor * int64 tensor is float32, int
    tensor * 2.5 is the default float dtype, float32 * 0-d float64 stays float32."""
    groups = [_group(x) for x in operands]
    category = max(_CATEGORY[dt.kind] for dt, _ in groups)
    for priority in (2, 1):
        found = [dt for dt, p in groups if p == priority and _CATEGORY[dt.kind] == category]
        if found:
            return np.result_type(*found)
    return _default if category == 2 else _SCALAR_DTYPE[category]
