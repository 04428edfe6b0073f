"""Shape operations: reshape, transpose, broadcasting, indexing, joining; and their VJPs.

Broadcasting is an explicit operation whose transpose is a sum: ``broadcast_to``'s VJP is
``sum_to`` and ``sum_to``'s is ``broadcast_to``. The engine calls ``sum_to`` once for every
gradient whose input was broadcast, so no other rule has to think about it.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from chainrule.tensor import backend
from chainrule.tensor.primitive import defvjp, defvjp_argnum, primitive

Shape = tuple[int, ...]
_add: Any = np.add  # (typed loosely: NumPy's stubs overload reduce's keepdims on Literal values)


@functools.lru_cache(maxsize=512)
def _reduction(src: Shape, dst: Shape) -> tuple[tuple[int, ...], bool]:
    """The axes that sum ``src`` down to ``dst``, and whether a reshape follows."""
    lead = len(src) - len(dst)
    if lead < 0 or any(n not in (1, src[lead + i]) for i, n in enumerate(dst)):
        # Not a broadcast of `dst`: a reshape would silently scramble the elements.
        raise ValueError(f"sum_to: shape {src} is not a broadcast of {dst}")
    kept = tuple(lead + i for i, n in enumerate(dst) if n == 1 and src[lead + i] != 1)
    # keepdims + reshape also when dst is () : a full reduction would give a NumPy scalar.
    return tuple(range(lead)) + kept, bool(kept) or not dst


@functools.lru_cache(maxsize=512)
def _reduction_np(src: Shape, dst: Shape) -> tuple[int | tuple[int, ...], bool, bool]:
    """``_reduction`` for np.add.reduce: the axes (one as an int), keepdims, and whether a
    reshape must follow (not when the kept axes already give ``dst``: no leading axes)."""
    axes, keep = _reduction(src, dst)
    reshape = keep and (len(src) != len(dst) or not dst)
    return (axes[0] if len(axes) == 1 else axes), keep, reshape


def _sum_to(x: np.ndarray, shape: Shape) -> np.ndarray:
    """Sum ``x`` down to ``shape``, undoing NumPy broadcasting (leading axes, size-1 axes)."""
    if x.shape == shape:
        return x
    axes, keep, reshape = _reduction_np(x.shape, shape if type(shape) is tuple else tuple(shape))
    # np.add.reduce: the ufunc itself, without np.sum's Python wrapper; the axes are
    # cached per pair of shapes. A hot path: every broadcast gradient (every bias) is here.
    if reshape:
        return np.add.reduce(x, axis=axes, keepdims=True).reshape(shape)
    return _add.reduce(x, axis=axes, keepdims=keep)


def sum_to_any(xp: Any, x: Any, shape: Shape) -> Any:
    """``_sum_to`` on any array library ``xp``."""
    if x.shape == tuple(shape):
        return x
    axes, keep = _reduction(x.shape, tuple(shape))
    if keep:
        return xp.reshape(xp.sum(x, axis=axes, keepdims=True), tuple(shape))
    return xp.sum(x, axis=axes)


def _shape(shape: Any) -> Shape:
    return (shape,) if isinstance(shape, int) else tuple(shape)


sum_to = primitive(_sum_to, "sum_to", sum_to_any)
broadcast_to = primitive(
    np.broadcast_to, "broadcast_to", lambda xp, x, shape: xp.broadcast_to(x, _shape(shape))
)
# Shape operations read shapes only: they keep no array for backward.
defvjp(
    sum_to,
    lambda g, ans, x, shape: broadcast_to(g, x.shape),
    retain_inputs=(),
    retain_output=False,
)
# The engine sums g back to x's shape:
defvjp(broadcast_to, lambda g, ans, x, shape: g, retain_inputs=(), retain_output=False)

reshape = primitive(np.reshape, "reshape", lambda xp, x, shape: xp.reshape(x, _shape(shape)))
defvjp(reshape, lambda g, ans, x, shape: reshape(g, x.shape), retain_inputs=(), retain_output=False)


def _transpose(x: np.ndarray, axes: tuple[int, ...] | None = None) -> np.ndarray:
    return np.transpose(x, axes)


def _transpose_rule(g: Any, ans: Any, x: Any, axes: tuple[int, ...] | None = None) -> Any:
    # Normalise negative axes first: argsort of (-1, 0) would be the identity, not (1, 0).
    ndim = x.ndim
    inverse = None if axes is None else tuple(sorted(range(ndim), key=lambda k: axes[k] % ndim))
    return transpose(g, inverse)


def _transpose_any(xp: Any, x: Any, axes: tuple[int, ...] | None = None) -> Any:
    return xp.permute_dims(x, tuple(range(x.ndim))[::-1] if axes is None else tuple(axes))


transpose = primitive(_transpose, "transpose", _transpose_any)
defvjp(transpose, _transpose_rule, retain_inputs=(), retain_output=False)


def _squeeze(x: np.ndarray, axis: int | tuple[int, ...] | None = None) -> np.ndarray:
    return np.squeeze(x, axis=axis)


def _squeeze_any(xp: Any, x: Any, axis: int | tuple[int, ...] | None = None) -> Any:
    if axis is None:  # the standard needs the axes: every axis of size 1
        axis = tuple(k for k, n in enumerate(x.shape) if n == 1)
    return xp.squeeze(x, axis=axis)


def _expand_dims_any(xp: Any, x: Any, axis: int | tuple[int, ...]) -> Any:
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    ndim = x.ndim + len(axes)
    for a in sorted(a % ndim for a in axes):  # as NumPy: positions in the result
        x = xp.expand_dims(x, axis=a)
    return x


squeeze = primitive(_squeeze, "squeeze", _squeeze_any)
defvjp(
    squeeze,
    lambda g, ans, x, axis=None: reshape(g, x.shape),
    retain_inputs=(),
    retain_output=False,
)

expand_dims = primitive(np.expand_dims, "unsqueeze", _expand_dims_any)
defvjp(
    expand_dims,
    lambda g, ans, x, axis: reshape(g, x.shape),
    retain_inputs=(),
    retain_output=False,
)


def _astype(x: np.ndarray, dtype: Any) -> np.ndarray:
    return x.astype(dtype, copy=False)


astype = primitive(
    _astype, "astype", lambda xp, x, dtype: xp.astype(x, backend.convert_dtype(xp, dtype))
)
# The engine casts g back to x's dtype:
defvjp(astype, lambda g, ans, x, dtype: g, retain_inputs=(), retain_output=False)

# -- indexing -----------------------------------------------------------------------------


def _is_basic(index: Any) -> bool:
    """True when ``index`` selects each element at most once (no integer arrays)."""
    items = index if isinstance(index, tuple) else (index,)
    for item in items:
        if isinstance(item, np.ndarray) and item.dtype != np.bool_:
            return False
        if isinstance(item, list):
            return False
    return True


def _getitem(x: np.ndarray, index: Any) -> np.ndarray:
    return x[index]


def _index_add(g: np.ndarray, shape: Shape, index: Any) -> np.ndarray:
    """zeros(shape) with ``g`` added at ``index``; repeated indices add up (scatter-add)."""
    out = np.zeros(shape, dtype=g.dtype)
    if _is_basic(index):
        out[index] = g  # each element at most once: plain assignment is enough
    else:
        np.add.at(out, index, g)
    return out


getitem = primitive(_getitem, "getitem", backend.getitem)
index_add = primitive(_index_add, "index_add", backend.index_add)
defvjp(
    getitem,
    lambda g, ans, x, index: index_add(g, x.shape, index),
    retain_inputs=(1,),  # the index (if a tensor), not x
    retain_output=False,
)
defvjp(
    index_add,
    lambda g, ans, x, shape, index: getitem(g, index),
    retain_inputs=(2,),
    retain_output=False,
)

# -- joining ------------------------------------------------------------------------------


def _concatenate(*xs: np.ndarray, axis: int = 0) -> np.ndarray:
    return np.concatenate(xs, axis=axis)


def _concatenate_rule(i: int, g: Any, ans: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    axis = kwargs.get("axis", 0) % len(g.shape)
    start = sum(a.shape[axis] for a in args[:i])
    index = [slice(None)] * len(g.shape)
    index[axis] = slice(start, start + args[i].shape[axis])
    return g[tuple(index)]


concatenate = primitive(
    _concatenate, "concatenate", lambda xp, *xs, axis=0: xp.concat(xs, axis=axis)
)
defvjp_argnum(concatenate, _concatenate_rule, retain_inputs=(), retain_output=False)


def _stack(*xs: np.ndarray, axis: int = 0) -> np.ndarray:
    return np.stack(xs, axis=axis)


def _stack_rule(i: int, g: Any, ans: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    axis = kwargs.get("axis", 0) % len(g.shape)
    index: list[Any] = [slice(None)] * len(g.shape)
    index[axis] = i
    return g[tuple(index)]


stack = primitive(_stack, "stack", lambda xp, *xs, axis=0: xp.stack(xs, axis=axis))
defvjp_argnum(stack, _stack_rule, retain_inputs=(), retain_output=False)
