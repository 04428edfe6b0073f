"""The array functions of an optimiser's update, for the arrays of the parameter at hand.

Updates are written with NumPy's ufuncs and ``out=`` (no temporaries in a step). NumPy's
arrays and CuPy's use ``numpy`` itself: CuPy implements NumPy's dispatch protocols, so
``np.multiply(a, b, out=c)`` on GPU arrays runs on the GPU. Arrays of libraries that
have only the array API standard (array-api-strict: the tests' stand-in GPU) get
``Standard``: the same names, computed with the standard's operators and functions and
written into ``out`` (``out[...] = ...``), so one update serves every library.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def ufuncs(a: Any) -> Any:
    """``numpy`` for NumPy and CuPy arrays (and any array with NumPy's ufunc protocol),
    else a ``Standard`` over the array's own namespace."""
    if type(a) is np.ndarray or hasattr(a, "__array_ufunc__"):
        return np
    return Standard(a.__array_namespace__())


class Standard:
    """NumPy's names for what an update uses, on a standard-only array library ``xp``."""

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    def multiply(self, a: Any, b: Any, out: Any) -> Any:
        out[...] = a * b
        return out

    def subtract(self, a: Any, b: Any, out: Any) -> Any:
        out[...] = a - b
        return out

    def divide(self, a: Any, b: Any, out: Any) -> Any:
        out[...] = a / b
        return out

    def maximum(self, a: Any, b: Any, out: Any) -> Any:
        out[...] = self.xp.maximum(a, b)
        return out

    def sqrt(self, a: Any, out: Any) -> Any:
        out[...] = self.xp.sqrt(a)
        return out

    def zeros_like(self, a: Any) -> Any:
        return self.xp.zeros_like(a)

    def empty_like(self, a: Any) -> Any:
        return self.xp.empty_like(a)

    def full_like(self, a: Any, value: Any) -> Any:
        return self.xp.full_like(a, value)

    def copy(self, a: Any) -> Any:
        return self.xp.asarray(a, copy=True)
