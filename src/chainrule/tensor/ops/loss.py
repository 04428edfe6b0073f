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

_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _check_targets(logits: np.ndarray, target: Any) -> np.ndarray:
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
    # One reduction instead of min and max: as unsigned, a negative index is huge.
    if t.size and np.maximum.reduce(t.view(_UNSIGNED[t.itemsize])) >= logits.shape[1]:
        raise ValueError(
            f"cross_entropy: class indices must lie in [0, {logits.shape[1] - 1}] for "
            f"{logits.shape[1]} classes; got values from {t.min()} to {t.max()}."
        )
    return t


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
    t = _check_targets(logits, target)
    out = _cross_entropy_arrays(logits, t, reduction, guard=False)
    loss = out[0]
    finite = np.isfinite(loss).all() if reduction == "none" else math.isfinite(loss)
    if not finite:
        # Some row holds inf or nan: redo it with a shift that keeps such rows apart.
        out = _cross_entropy_arrays(logits, t, reduction, guard=True)
    return out


def _cross_entropy_arrays(
    logits: np.ndarray, t: np.ndarray, reduction: str, guard: bool
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    # Work on the transpose, one class per row (the lecture's layout): NumPy reduces over
    # a short last axis one row at a time, 5-15x slower than down contiguous columns.
    # Linear's outputs are stored that way already, so zt is usually contiguous.
    n = t.shape[0]
    zt = logits.T
    if not zt.flags.c_contiguous:
        zt = np.ascontiguousarray(zt)
    m = np.maximum.reduce(zt, axis=0) if n else np.zeros(0, zt.dtype)
    if guard:
        m = np.where(np.isfinite(m), m, 0)  # a row of -inf: NumPy gives inf/nan, as torch
    z = zt - m  # a new array: the logits are not touched
    # Position of each target in the (classes, batch) array, flattened.
    where = t * n
    where += _columns(n)
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
defvjp(cross_entropy, _cross_entropy_rule, None)
