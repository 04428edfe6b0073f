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

Threads: ``set_default_dtype`` sets the process-wide default (as PyTorch's does), read by
every thread; ``default_dtype(...)`` overrides it only for the running thread or asyncio
task (a ContextVar), so a block that asks for float64 never changes what another thread
makes meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

_default: np.dtype[Any] = np.dtype(np.float32)  # process-wide (set_default_dtype)
# This thread's or task's override (default_dtype blocks); None: use the process default.
_override: ContextVar[np.dtype[Any] | None] = ContextVar("chainrule.default_dtype", default=None)


def get_default_dtype() -> np.dtype[Any]:
    """The float dtype given to tensors made from Python data (float32 unless changed)."""
    override = _override.get()
    return _default if override is None else override


def _float_dtype(dtype: Any, op: str) -> np.dtype[Any]:
    dt: np.dtype[Any] = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(
            f"{op}: the default must be a floating dtype (float16/32/64), got "
            f"{dt}; integer tensors are made from Python ints automatically."
        )
    return dt


def set_default_dtype(dtype: Any) -> None:
    """Set the float dtype for tensors made from Python data: float16, float32 or float64.

    Process-wide, as in PyTorch: every thread without a ``default_dtype`` block sees it.
    """
    global _default
    _default = _float_dtype(dtype, "set_default_dtype")


@contextmanager
def default_dtype(dtype: Any) -> Iterator[None]:
    """Use another default float dtype inside a ``with`` block (this thread/task only)."""
    token = _override.set(_float_dtype(dtype, "default_dtype"))
    try:
        yield
    finally:
        _override.reset(token)


def is_differentiable(dtype: np.dtype[Any]) -> bool:
    """Only floating-point tensors can carry gradients."""
    return dtype.kind == "f"
