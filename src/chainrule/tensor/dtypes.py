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
