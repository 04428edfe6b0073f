"""The few tensor-engine internals that ``chainrule.compile`` touches, in one place.

The tracer works at the level of NumPy calls, so it needs almost nothing from the engine:
a Tensor's array (read and replaced while tracing), a way to make a result Tensor around an
array without copying, the in-place version bump, and whether a tensor carries hooks.
When the engine changes, this file is the one to adapt.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.tensor import anomaly, grad_mode
from chainrule.tensor.primitive import mark_modified
from chainrule.tensor.tensor import Tensor

__all__ = [
    "Tensor",
    "anomaly_enabled",
    "get_array",
    "grad_enabled",
    "has_hooks",
    "mark_modified",
    "set_array",
    "wrap",
]


def get_array(t: Tensor) -> np.ndarray:
    """The tensor's array, without marking it as handed out (``.data`` would)."""
    return t._data


def set_array(t: Tensor, a: Any) -> None:
    """Replace the tensor's array (tracing swaps tracer arrays in and the real ones back)."""
    t._data = a


def wrap(a: np.ndarray) -> Tensor:
    """A Tensor around ``a``, no copy, no graph: what the engine makes for a result."""
    return Tensor._wrap(a)


def has_hooks(t: Tensor) -> bool:
    """Hooks or retain_grad on the tensor (a leaf's are on it, a non-leaf's on its node)."""
    node = t._node
    return bool(t._hooks) or (node is not None and (bool(node._hooks) or node.retained is not None))


def grad_enabled() -> bool:
    return grad_mode.is_grad_enabled()


def anomaly_enabled() -> bool:
    return anomaly.is_anomaly_enabled()
