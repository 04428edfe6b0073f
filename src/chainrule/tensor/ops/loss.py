"""Fused losses: one primitive each, so the backward pass is one simple formula.

Cross-entropy from logits z and class indices t, for row i:
``ℓ_i = logsumexp(z_i) - z_i[t_i]`` and ``∂ℓ_i/∂z_i = softmax(z_i) - onehot(t_i)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.tensor.ops.reduce import _logsumexp, _softmax, softmax
from chainrule.tensor.primitive import defvjp, primitive


def _check_targets(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    t = np.asarray(target)
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
    if t.size and (t.min() < 0 or t.max() >= logits.shape[1]):
        raise ValueError(
            f"cross_entropy: class indices must lie in [0, {logits.shape[1] - 1}] for "
            f"{logits.shape[1]} classes; got values from {t.min()} to {t.max()}."
        )
    return t


def _cross_entropy(logits: np.ndarray, target: Any, reduction: str = "mean") -> np.ndarray:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(
            f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}"
        )
    t = _check_targets(logits, target)
    per_row = _logsumexp(logits, axis=1) - logits[np.arange(t.shape[0]), t]
    if reduction == "none":
        return per_row
    total = np.add.reduce(per_row)
    if reduction == "sum" or t.shape[0] == 0:
        return total if reduction == "sum" else np.mean(per_row)  # empty mean: nan, as torch
    return total / t.shape[0]


def _cross_entropy_rule(g: Any, ans: Any, logits: Any, target: Any, reduction: str = "mean") -> Any:
    t = np.asarray(target)
    rows = np.arange(t.shape[0])
    if reduction == "none":
        scale = g.reshape((-1, 1))
    elif reduction == "mean":
        scale = g / max(t.shape[0], 1)
    else:
        scale = g
    if isinstance(logits, np.ndarray):
        # Arrays (a normal backward pass): softmax - onehot, formed in place in one buffer.
        p = _softmax(logits, axis=1)
        p[rows, t] -= 1
        p *= scale
        return p
    onehot = np.zeros(logits.shape, dtype=logits.dtype)  # Tensors (create_graph): recorded
    onehot[rows, t] = 1
    return (softmax(logits, axis=1) - onehot) * scale


cross_entropy = primitive(_cross_entropy, "cross_entropy")
defvjp(cross_entropy, _cross_entropy_rule, None)
