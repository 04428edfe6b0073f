"""chainrule as an array API library: the namespace of Tensors (``Tensor.__array_namespace__``).

A VJP rule asks ``xp = namespace(g, x)`` for its functions. In a normal backward pass that is
the arrays' own library (NumPy, CuPy, array-api-strict); with ``create_graph=True`` the
rule runs on Tensors and gets this module, whose functions are chainrule's primitives under
the standard's names, so the same rule is recorded and can be differentiated again.

Only the part of the standard that rules and the engine use is here: elementwise arithmetic,
the functions of ``ops``, reductions, shape functions, and creation functions that make
constants (no gradient) in the library of a Tensor's data.
"""

from __future__ import annotations

from typing import Any

from chainrule.tensor import backend, ops

# The standard's names for chainrule's primitives.
abs = ops.absolute
pow = ops.power
permute_dims = ops.transpose
add = ops.add
astype = ops.astype
broadcast_to = ops.broadcast_to
clip = ops.clip
cos = ops.cos
divide = ops.divide
equal = ops.equal
exp = ops.exp
expand_dims = ops.expand_dims
greater = ops.greater
greater_equal = ops.greater_equal
less = ops.less
less_equal = ops.less_equal
log = ops.log
logical_and = ops.logical_and
logical_not = ops.logical_not
logical_or = ops.logical_or
matmul = ops.matmul
max = ops.max
maximum = ops.maximum
mean = ops.mean
min = ops.min
minimum = ops.minimum
multiply = ops.multiply
negative = ops.negative
not_equal = ops.not_equal
reshape = ops.reshape
sign = ops.sign
sin = ops.sin
sqrt = ops.sqrt
squeeze = ops.squeeze
subtract = ops.subtract
sum = ops.sum
tanh = ops.tanh
var = ops.var
where = ops.where

__array_api_version__ = "2024.12"

__all__ = [
    "abs", "add", "asarray", "astype", "broadcast_to", "clip", "concat", "cos", "divide",
    "equal", "exp", "expand_dims", "full_like", "greater", "greater_equal", "isdtype", "less",
    "less_equal", "log", "logical_and", "logical_not", "logical_or", "matmul",
    "matrix_transpose", "max", "maximum", "mean", "min", "minimum", "multiply", "negative",
    "not_equal", "ones_like", "permute_dims", "pow", "reshape", "sign", "sin", "sqrt",
    "squeeze", "stack", "subtract", "sum", "tanh", "var", "where", "zeros_like",
]  # fmt: skip


def concat(arrays: Any, /, *, axis: int = 0) -> Any:
    """The standard's ``concat`` (a sequence of arrays) as chainrule's ``concatenate``."""
    return ops.concatenate(*arrays, axis=axis)


def stack(arrays: Any, /, *, axis: int = 0) -> Any:
    return ops.stack(*arrays, axis=axis)


def matrix_transpose(x: Any, /) -> Any:
    """Swap the last two axes."""
    axes = list(range(x.ndim))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    return permute_dims(x, tuple(axes))


def _wrap(data: Any) -> Any:
    from chainrule.tensor.tensor import Tensor

    return Tensor._wrap(data)


def _library(x: Any) -> Any:
    return backend.array_namespace(x)


def zeros_like(x: Any, /, *, dtype: Any = None) -> Any:
    """A constant Tensor of zeros in ``x``'s library (no gradient)."""
    data = getattr(x, "_data", x)
    return _wrap(_library(data).zeros_like(data, dtype=dtype))


def full_like(x: Any, /, fill_value: Any, *, dtype: Any = None) -> Any:
    data = getattr(x, "_data", x)
    return _wrap(_library(data).full_like(data, fill_value, dtype=dtype))


def ones_like(x: Any, /, *, dtype: Any = None) -> Any:
    data = getattr(x, "_data", x)
    return _wrap(_library(data).ones_like(data, dtype=dtype))


def asarray(obj: Any, /, *, dtype: Any = None, like: Any = None) -> Any:
    """A constant Tensor (in ``like``'s library when given, else NumPy's)."""
    if hasattr(obj, "_data"):
        return obj if dtype is None else astype(obj, dtype)
    xp = _library(like) if like is not None else _library(obj)
    return _wrap(xp.asarray(obj, dtype=backend.convert_dtype(xp, dtype)))


def isdtype(dtype: Any, kind: Any) -> bool:
    """The standard's ``isdtype`` for the dtypes of any library a Tensor may hold."""
    import numpy as np

    if not isinstance(dtype, np.dtype):  # another library's dtype: the same name in NumPy
        dtype = np.dtype(str(dtype).rsplit(".", 1)[-1])
    return bool(np.isdtype(dtype, kind))
