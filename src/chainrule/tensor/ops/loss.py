"""Fused losses: one primitive each, so the backward pass is one simple formula.

Cross-entropy from logits z and class indices t, for row i:
``ℓ_i = logsumexp(z_i) - z_i[t_i]`` and ``∂ℓ_i/∂z_i = softmax(z_i) - onehot(t_i)``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from chainrule.tensor import backend
from chainrule.tensor.ops.reduce import softmax
from chainrule.tensor.primitive import defvjp, primitive_with_residual


def _target_positions(logits: np.ndarray, target: Any) -> tuple[np.ndarray, np.ndarray]:
    """The targets as an array, and where each one sits in the (classes, batch) transpose
    of the logits, flattened; with the checks that make those positions valid."""
    t = target if isinstance(target, np.ndarray) else np.asarray(target)
    if logits.ndim != 2 or t.shape != logits.shape[:1]:
        raise ValueError(
            f"cross_entropy: logits must be (batch, classes) and targets (batch,) class "
            f"indices; got logits {logits.shape} and targets {t.shape}."
        )
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"cross_entropy: targets must be integer class indices, got dtype {t.dtype}; "
            "convert with .astype(np.int64) (one-hot targets: take argmax first)."
        )
    classes, n = logits.shape[1], t.shape[0]
    if n == 0:
        return t, np.zeros(0, np.intp)
    try:
        # One call computes t * n + column and rejects any t outside [0, classes).
        where = np.ravel_multi_index((t.astype(np.intp, copy=False), _columns(n)), (classes, n))
    except ValueError:
        raise ValueError(
            f"cross_entropy: class indices must lie in [0, {classes - 1}] for {classes} "
            f"classes; got values from {t.min()} to {t.max()}."
        ) from None
    return t, where


@functools.lru_cache(maxsize=64)
def _columns(n: int) -> np.ndarray:
    """0, 1, ..., n-1 (read-only, shared): the batch positions, for every step's batch."""
    r = np.arange(n)
    r.flags.writeable = False
    return r


def _cross_entropy(
    logits: np.ndarray, target: Any, reduction: str = "mean"
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The loss, and what the backward pass reuses: softmax(logits) and where the targets
    sit in it."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(
            f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}"
        )
    _, where = _target_positions(logits, target)
    out = _cross_entropy_arrays(logits, where, reduction, guard=False)
    loss = out[0]
    finite = np.isfinite(loss).all() if reduction == "none" else math.isfinite(loss)
    if not finite:
        # Some row holds inf or nan: redo it with a shift that keeps such rows apart.
        out = _cross_entropy_arrays(logits, where, reduction, guard=True)
    return out


def _cross_entropy_arrays(
    logits: np.ndarray, where: np.ndarray, reduction: str, guard: bool
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    # Work on the transpose, one class per row (the lecture's layout): NumPy reduces over
    # a short last axis one row at a time, 5-15x slower than down contiguous columns.
    # Linear's outputs are stored that way already, so zt is usually contiguous.
    n = where.shape[0]
    zt = logits.T
    if not zt.flags.c_contiguous:
        zt = np.ascontiguousarray(zt)
    m = np.maximum.reduce(zt, axis=0) if n else np.zeros(0, zt.dtype)
    if guard:
        m = np.where(np.isfinite(m), m, 0)  # a row of -inf: NumPy gives inf/nan, as torch
    z = zt - m  # a new array: the logits are not touched
    e = np.exp(z)
    total = np.add.reduce(e, axis=0)
    per_row = np.log(total)
    per_row -= z.reshape(-1).take(where)
    e /= total  # softmax, (classes, batch): reused by the backward pass
    if reduction == "none":
        return per_row, (e, where)
    loss = np.add.reduce(per_row)
    if reduction == "mean":
        loss = loss / n if n else np.mean(per_row)  # empty batch: nan, as torch
    return loss, (e, where)


def _cross_entropy_any(
    xp: Any, logits: Any, target: Any, reduction: str = "mean"
) -> tuple[Any, None]:
    """``_cross_entropy`` on any array library; no residual (the rule recomputes softmax)."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(
            f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}"
        )
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise ValueError(
            f"cross_entropy: logits must be (batch, classes) and targets (batch,) class "
            f"indices; got logits {logits.shape} and targets {target.shape}."
        )
    if not xp.isdtype(target.dtype, "integral"):
        raise TypeError(
            f"cross_entropy: targets must be integer class indices, got dtype {target.dtype}; "
            "convert with xp.astype(t, xp.int64) (one-hot targets: take argmax first)."
        )
    n, classes = logits.shape
    if n and bool(xp.any((target < 0) | (target >= classes))):
        raise ValueError(
            f"cross_entropy: class indices must lie in [0, {classes - 1}] for {classes} "
            f"classes; got values from {int(xp.min(target))} to {int(xp.max(target))}."
        )
    m = (
        xp.max(logits, axis=1, keepdims=True)
        if n
        else xp.zeros((0, 1), dtype=logits.dtype, **backend.on(logits))
    )
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))  # a row of -inf: as torch
    z = logits - m
    picked = xp.take_along_axis(z, xp.reshape(target, (-1, 1)), axis=1)
    per_row = xp.log(xp.sum(xp.exp(z), axis=1)) - xp.reshape(picked, (-1,))
    if reduction == "none":
        return per_row, None
    loss = xp.sum(per_row)
    return (loss / n if n else xp.mean(per_row)) if reduction == "mean" else loss, None


def _cross_entropy_rule(
    g: Any,
    ans: Any,
    logits: Any,
    target: Any,
    reduction: str = "mean",
    residual: tuple[np.ndarray, np.ndarray] | None = None,
) -> Any:
    n = logits.shape[0]  # (the forward checked that the targets match)
    if reduction == "none":
        xp = backend.namespace(g)
        scale = xp.reshape(g, (1, -1) if residual is not None else (-1, 1))
    elif reduction == "mean":
        scale = g / max(n, 1)
    else:
        scale = g
    if residual is not None:
        # NumPy arrays (a normal backward pass): (softmax - onehot) * scale from the
        # forward's softmax (classes × batch), in one new buffer, handed back as
        # batch × classes. (Only NumPy's forward keeps a residual: in-place NumPy writes.)
        e, where = residual
        d = e * scale
        flat = d.reshape(-1)  # a view: d is contiguous
        flat[where] -= scale.reshape(-1) if reduction == "none" else scale
        return d.T
    # Tensors (create_graph), or another library's arrays: recorded, differentiable.
    t = np.asarray(target) if isinstance(target, list) else getattr(target, "_data", target)
    xp = backend.array_namespace(t)  # the targets' library makes the constant one-hot
    classes = xp.reshape(xp.arange(logits.shape[1], dtype=t.dtype, **backend.on(t)), (1, -1))
    onehot = xp.astype(xp.reshape(t, (-1, 1)) == classes, logits.dtype)
    return (softmax(logits, axis=1) - onehot) * scale


cross_entropy = primitive_with_residual(_cross_entropy, "cross_entropy", _cross_entropy_any)
# A normal pass reads the residual (the softmax); with create_graph the logits and target.
defvjp(cross_entropy, _cross_entropy_rule, None, retain_inputs=(0, 1), retain_output=False)
cross_entropy.quiet = False  # (softmax - onehot) * scale: finite for finite g
