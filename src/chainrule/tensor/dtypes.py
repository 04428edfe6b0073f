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


def is_differentiable(dtype: Any) -> bool:
    """Only floating-point tensors can carry gradients (dtypes of any array library)."""
    from chainrule.tensor.backend import is_floating

    return is_floating(dtype)


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
