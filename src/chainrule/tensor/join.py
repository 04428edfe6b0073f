"""Joining tensors, with NumPy's and PyTorch's signature: a sequence of tensors and an axis.

(The primitives ``ops.concatenate`` / ``ops.stack`` take the tensors as separate
arguments, so that the engine sees each one as an input.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chainrule.tensor import ops
from chainrule.tensor.tensor import Tensor


def _inputs(tensors: Any, op: str) -> Sequence[Any]:
    if isinstance(tensors, Tensor) or not isinstance(tensors, Sequence) or not tensors:
        raise TypeError(
            f"{op}: expected a non-empty list or tuple of tensors, got "
            f"{type(tensors).__name__}; write {op}([a, b], axis=0)."
        )
    return tensors


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (NumPy's ``concatenate``, PyTorch's ``cat``);
    the gradient is split back into the pieces."""
    return ops.concatenate(*_inputs(tensors, "concatenate"), axis=axis)  # type: ignore[no-any-return]


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors of the same shape along a new axis; the gradient is sliced back."""
    return ops.stack(*_inputs(tensors, "stack"), axis=axis)  # type: ignore[no-any-return]


cat = concatenate
