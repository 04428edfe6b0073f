"""Fused losses: one primitive each, so the backward pass is one simple formula.

Cross-entropy from logits z and class indices t, for row i:
``ℓ_i = logsumexp(z_i) - z_i[t_i]`` and ``∂ℓ_i/∂z_i = softmax(z_i) - onehot(t_i)``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

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


def _cross_entropy_rule(
    g: Any,
    ans: Any,
    logits: Any,
    target: Any,
    reduction: str = "mean",
    residual: tuple[np.ndarray, np.ndarray] | None = None,
) -> Any:
    n = np.shape(target)[0]
    if reduction == "none":
        scale = g.reshape((1, -1)) if residual is not None else g.reshape((-1, 1))
    elif reduction == "mean":
        scale = g / max(n, 1)
    else:
        scale = g
    if residual is not None:
        # Arrays (a normal backward pass): (softmax - onehot) * scale from the forward's
        # softmax (classes × batch), in one new buffer, handed back as batch × classes.
        e, where = residual
        d = e * scale
        flat = d.reshape(-1)  # a view: d is contiguous
        flat[where] -= scale.reshape(-1) if reduction == "none" else scale
        return d.T
    t = np.asarray(target)  # Tensors (create_graph): recorded, differentiable
    onehot = np.zeros(logits.shape, dtype=logits.dtype)
    onehot[_columns(n), t] = 1
    return (softmax(logits, axis=1) - onehot) * scale


cross_entropy = primitive_with_residual(_cross_entropy, "cross_entropy")
# A normal pass reads the residual (the softmax); with create_graph the logits and target.
defvjp(cross_entropy, _cross_entropy_rule, None, retain_inputs=(0, 1), retain_output=False)
cross_entropy.quiet = False  # (softmax - onehot) * scale: finite for finite g
