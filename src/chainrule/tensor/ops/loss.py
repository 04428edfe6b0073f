"""Fused losses: one primitive each, so the backward pass is one simple formula.

Cross-entropy from logits z and class indices t, for row i:
``ℓ_i = logsumexp(z_i) - z_i[t_i]`` and ``∂ℓ_i/∂z_i = softmax(z_i) - onehot(t_i)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.tensor.ops.reduce import softmax
from chainrule.tensor.primitive import defvjp, primitive_with_residual


def _check_targets(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
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
    if t.size and t.view(np.dtype(f"u{t.itemsize}")).max() >= logits.shape[1]:
        raise ValueError(
            f"cross_entropy: class indices must lie in [0, {logits.shape[1] - 1}] for "
            f"{logits.shape[1]} classes; got values from {t.min()} to {t.max()}."
        )
    return t


def _cross_entropy(
    logits: np.ndarray, target: Any, reduction: str = "mean"
) -> tuple[np.ndarray, np.ndarray]:
    """The loss, and softmax(logits) kept as the residual for the backward pass."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(
            f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}"
        )
    t = _check_targets(logits, target)
    # Work on the transpose, one class per row (the lecture's layout): NumPy reduces over
    # a short last axis one row at a time, 5-15x slower than down contiguous columns.
    z = np.array(logits.T, order="C")  # a copy, always: it is shifted in place below
    m = np.maximum.reduce(z, axis=0)
    if not np.isfinite(m).all():
        m = np.where(np.isfinite(m), m, 0)  # a row of -inf: NumPy gives inf/nan, as torch
    z -= m
    total = np.add.reduce(e := np.exp(z), axis=0)
    per_row = np.log(total) - z[t, np.arange(t.shape[0])]
    e /= total  # softmax, (classes, batch): reused by the backward pass
    if reduction == "none":
        return per_row, e
    loss = np.add.reduce(per_row)
    if reduction == "mean":
        loss = loss / t.shape[0] if t.shape[0] else np.mean(per_row)  # empty: nan, as torch
    return loss, e


def _cross_entropy_rule(
    g: Any,
    ans: Any,
    logits: Any,
    target: Any,
    reduction: str = "mean",
    residual: np.ndarray | None = None,
) -> Any:
    t = np.asarray(target)
    rows = np.arange(t.shape[0])
    if reduction == "none":
        scale = g.reshape((-1, 1))
    elif reduction == "mean":
        scale = g / max(t.shape[0], 1)
    else:
        scale = g
    if residual is not None:
        # Arrays (a normal backward pass): (softmax - onehot) * scale from the forward's
        # softmax (classes × batch), in one new buffer, handed back as batch × classes.
        col = scale.reshape(-1) if reduction == "none" else scale
        d = residual * col
        d[t, rows] -= col
        return d.T
    onehot = np.zeros(logits.shape, dtype=logits.dtype)  # Tensors (create_graph): recorded
    onehot[rows, t] = 1
    return (softmax(logits, axis=1) - onehot) * scale


cross_entropy = primitive_with_residual(_cross_entropy, "cross_entropy")
defvjp(cross_entropy, _cross_entropy_rule, None)
