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

# A parameter of at least BLOCKED_BYTES is updated in blocks of rows of about BLOCK_BYTES
# (see descend); chainrule.compile's programs do the same (compile/blocks.py). Measured
# on a Xeon with 2 MB of L2 a core (float32, blocks against whole arrays): 256 x 784
# 1.23x slower (it fits in cache as it is), 1024 x 1024 0.97x, 2048 x 2048 0.89x, 4096 x
# 4096 0.88x. Blocks of 64 KB pay for their Python loop; of 1 MB, fall out of L2.
BLOCKED_BYTES = 8 * 1024 * 1024
BLOCK_BYTES = 256 * 1024  # a block of the gradient, tmp and parameter


def descend(xp: Any, p: Any, d: Any, lr: Any, tmp: Any) -> None:
    """``p -= lr * d`` as two rounded steps through ``tmp``: ``tmp = d * lr``, ``p -= tmp``.

    On a large NumPy parameter, a block of rows at a time: each element is computed
    exactly as before (the same two roundings), while the block of ``tmp`` stays in cache
    between the two, which saves a pass over memory (on a 4096 x 4096 weight, 64 MB of
    ``tmp`` written and read back). ``d`` may be ``tmp`` itself (elementwise: safe).
    """
    if (
        type(p) is np.ndarray  # (not a tracer of chainrule.compile: its pass does this)
        and p.nbytes >= BLOCKED_BYTES
        and p.ndim >= 2
        and type(d) is np.ndarray
        and type(tmp) is np.ndarray
        and d.shape == p.shape == tmp.shape
        and not np.may_share_memory(d, p)
        and (d is tmp or not np.may_share_memory(d, tmp))
    ):
        n = p.shape[0]
        rows = max(1, BLOCK_BYTES * n // p.nbytes)
        for i in range(0, n, rows):
            block = tmp[i : i + rows]
            np.multiply(d[i : i + rows], lr, out=block)
            rows_of_p = p[i : i + rows]
            rows_of_p -= block
        return
    xp.multiply(d, lr, out=tmp)
    p -= tmp


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
