"""Reductions (sum, mean, max, min, var) and the stable softmax family, with their VJPs.

A reduction's gradient has the reduced shape; ``_unreduce`` puts the reduced axes back
(size 1) so that it broadcasts against the input.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.tensor import backend
from chainrule.tensor.backend import namespace
from chainrule.tensor.ops.elementwise import exp, where
from chainrule.tensor.ops.shape import broadcast_to
from chainrule.tensor.primitive import defvjp, primitive, standard

Axis = int | tuple[int, ...] | None

# The ufuncs whose reduce the NumPy fast paths call (typed loosely: NumPy's stubs overload
# keepdims on Literal values, and these pass it through).
_add: Any = np.add
_maximum: Any = np.maximum
_minimum: Any = np.minimum
_NUMPY = (np.ndarray, np.generic)  # NumPy arrays (and subclasses: compile's tracers), scalars


def _axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim if ndim else 0 for a in axes))


def _unreduce(g: Any, x: Any, axis: Axis, keepdims: bool) -> Any:
    """Reshape a reduced gradient so that it broadcasts against ``x`` (keepdims form)."""
    if keepdims or x.ndim == 0:
        return g
    shape = list(x.shape)
    for a in _axes(axis, len(shape)):
        shape[a] = 1
    return namespace(g).reshape(g, tuple(shape))


def _count(x: Any, axis: Axis) -> int:
    shape = x.shape
    return math.prod(shape[a] for a in _axes(axis, len(shape)))


def _sum(x: np.ndarray, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
    if type(x) is np.ndarray:  # the ufunc itself: np.sum's Python wrapper costs ~2 µs a call
        return _add.reduce(x, axis=axis, keepdims=keepdims)
    return np.sum(x, axis=axis, keepdims=keepdims)


# Gradients of at most this many elements are written out by the reductions' rules rather
# than handed on as a broadcast view: np.broadcast_to is a Python function (~5 µs a call),
# np.empty plus a broadcasting copy ~1.5 µs. Above it the copy's memory and time would
# matter more than the call.
_MATERIALIZE = 1 << 15


def _numpy(g: Any) -> bool:
    """True for a plain NumPy array or scalar (a normal backward pass), where a rule may
    take a NumPy-only fast path; False for Tensors (create_graph), other libraries' arrays,
    and ndarray subclasses (chainrule.compile's tracers record only what they see)."""
    return type(g) is np.ndarray or isinstance(g, np.generic)


def _spread(g: Any, shape: tuple[int, ...]) -> Any:
    """``g`` (a NumPy array in keepdims form, or a scalar) broadcast to ``shape``."""
    if math.prod(shape) > _MATERIALIZE:
        return np.broadcast_to(g, shape)  # (read-only view: no memory)
    out = np.empty(shape, dtype=g.dtype)
    out[...] = g  # the same values as the view, in memory of its own (writable)
    return out


def _sum_rule(g: Any, ans: Any, x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    # d/dx_i Σ x = 1: the gradient is copied to every summed element.
    if _numpy(g):
        return _spread(g if axis is None else _unreduce(g, x, axis, keepdims), x.shape)
    return broadcast_to(_unreduce(g, x, axis, keepdims), x.shape)


sum = primitive(_sum, "sum", standard("sum"))
defvjp(sum, _sum_rule, retain_inputs=(), retain_output=False)  # only x's shape


def _mean(x: np.ndarray, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
    return np.mean(x, axis=axis, keepdims=keepdims)


def _mean_rule(g: Any, ans: Any, x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    # d/dx_i (1/n) Σ x = 1/n
    share = _unreduce(g, x, axis, keepdims) / (_count(x, axis) or 1)
    return _spread(share, x.shape) if _numpy(share) else broadcast_to(share, x.shape)


mean = primitive(_mean, "mean", standard("mean"))
defvjp(mean, _mean_rule, retain_inputs=(), retain_output=False)


def _extremum_rule(g: Any, ans: Any, x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    # Ties share the gradient equally (PyTorch's amax/amin): each of k maxima gets g/k.
    hit = x == _unreduce(ans, x, axis, keepdims)
    if isinstance(g, _NUMPY) and isinstance(hit, np.ndarray):
        # NumPy: the count in g's dtype from the ufunc itself, and np.where, not the
        # primitive (4 calls, ~1.5 µs each, in place of ~8); the same values. (isinstance:
        # chainrule.compile's tracers record these calls too.)
        count = _add.reduce(hit, axis=axis, keepdims=True, dtype=g.dtype)
        return np.where(hit, _unreduce(g, x, axis, keepdims) / count, 0.0)
    xp = namespace(g, x)
    count = xp.sum(xp.astype(hit, g.dtype), axis=axis, keepdims=True)
    return where(hit, _unreduce(g, x, axis, keepdims) / count, 0.0)


def _max(x: np.ndarray, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
    if type(x) is np.ndarray:  # the ufunc itself, without np.max's Python wrapper
        return _maximum.reduce(x, axis=axis, keepdims=keepdims)
    return np.max(x, axis=axis, keepdims=keepdims)


def _min(x: np.ndarray, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
    if type(x) is np.ndarray:
        return _minimum.reduce(x, axis=axis, keepdims=keepdims)
    return np.min(x, axis=axis, keepdims=keepdims)


max = primitive(_max, "max", standard("max"))
defvjp(max, _extremum_rule)
min = primitive(_min, "min", standard("min"))
defvjp(min, _extremum_rule)


def _var(x: np.ndarray, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> np.ndarray:
    return np.var(x, axis=axis, keepdims=keepdims, ddof=ddof)


def _var_rule(
    g: Any, ans: Any, x: Any, axis: Axis = None, keepdims: bool = False, ddof: int = 0
) -> Any:
    # d/dx_i (1/(n-ddof)) Σ (x_j - mean)^2 = 2 (x_i - mean) / (n - ddof)
    centered = x - namespace(x).mean(x, axis=axis, keepdims=True)
    dof = _count(x, axis) - ddof
    # n <= ddof: the forward divides by 0 (NumPy gives inf/nan); so does the gradient.
    scale = 2.0 / dof if dof > 0 else math.inf
    return _unreduce(g, x, axis, keepdims) * centered * scale


var = primitive(
    _var,
    "var",
    lambda xp, x, axis=None, keepdims=False, ddof=0: xp.var(
        x, axis=axis, keepdims=keepdims, correction=ddof
    ),
)
defvjp(var, _var_rule, retain_output=False)


def _kept_sum(g: Any, axis: int) -> Any:
    """Σ g over ``axis``, kept as a size-1 axis (in the library of g: arrays or Tensors)."""
    return namespace(g).sum(g, axis=axis, keepdims=True)


# -- the softmax family, computed stably --------------------------------------------------


def _logsumexp(x: np.ndarray, axis: Axis = None, keepdims: bool = False) -> np.ndarray:
    # log Σ e^x = m + log Σ e^(x - m) with m = max x: no overflow, and exact for one-hot x.
    if x.size == 0:  # an empty sum is 0, so log of it is -inf (max has no identity)
        return np.full(np.shape(np.sum(x, axis=axis, keepdims=keepdims)), -np.inf, x.dtype)
    m = np.maximum.reduce(x, axis=axis, keepdims=True)
    if not np.isfinite(m).all():
        m = np.where(np.isfinite(m), m, 0)  # all -inf (or inf) slices: NumPy gives -inf/inf
    e = np.asarray(x - m)  # (0-d arithmetic gives a NumPy scalar)
    np.exp(e, out=e)  # in place: e is ours
    out = np.log(np.add.reduce(e, axis=axis, keepdims=True))
    out += m
    return out if keepdims else np.squeeze(out, axis=axis)


def _logsumexp_any(xp: Any, x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    if x.ndim == 0:
        axis = None  # (NumPy's reductions take axis 0 or -1 of a 0-d array; the standard not)
    if math.prod(x.shape) == 0:
        shape = xp.sum(x, axis=axis, keepdims=keepdims).shape
        return xp.full(shape, -math.inf, dtype=x.dtype, **backend.on(x))
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else xp.squeeze(out, axis=_axes(axis, x.ndim))


logsumexp = primitive(_logsumexp, "logsumexp", _logsumexp_any)
# d/dx_i log Σ e^x = e^(x_i - logsumexp x) = softmax(x)_i
defvjp(
    logsumexp,
    lambda g, ans, x, axis=None, keepdims=False: (
        _unreduce(g, x, axis, keepdims) * exp(x - _unreduce(ans, x, axis, keepdims))
    ),
)  # reads x and ans: keeps both


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    if x.size == 0:  # nothing to normalise (and max of an empty axis would raise)
        return x.copy()
    e = np.asarray(x - np.maximum.reduce(x, axis=axis, keepdims=True))
    np.exp(e, out=e)  # in place: e is ours
    e /= np.add.reduce(e, axis=axis, keepdims=True)
    return e


def _softmax_any(xp: Any, x: Any, axis: int = -1) -> Any:
    if math.prod(x.shape) == 0:
        return xp.asarray(x, copy=True)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


softmax = primitive(_softmax, "softmax", _softmax_any)
# J = diag(s) - s sᵀ, so gᵀJ = s ⊙ (g - Σ g s)
defvjp(
    softmax,
    lambda g, ans, x, axis=-1: ans * (g - _kept_sum(g * ans, axis)),
    retain_inputs=(),
)


def _log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    if x.size == 0:
        return x.copy()
    shifted = np.asarray(x - np.maximum.reduce(x, axis=axis, keepdims=True))
    shifted -= np.log(np.add.reduce(np.exp(shifted), axis=axis, keepdims=True))
    return shifted


def _log_softmax_any(xp: Any, x: Any, axis: int = -1) -> Any:
    if math.prod(x.shape) == 0:
        return xp.asarray(x, copy=True)
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


log_softmax = primitive(_log_softmax, "log_softmax", _log_softmax_any)
# d/dx (x - logsumexp x) = I - 1 softmaxᵀ, so gᵀJ = g - softmax ⊙ Σ g
defvjp(
    log_softmax,
    lambda g, ans, x, axis=-1: g - exp(ans) * _kept_sum(g, axis),
    retain_inputs=(),
)
