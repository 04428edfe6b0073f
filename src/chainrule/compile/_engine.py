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
    "array_expr",
    "cache_key",
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


def array_expr(name: str) -> str:
    """Source that reads the array of the tensor named ``name``: ``get_array`` inlined, as
    the program fetches a dozen arrays per call and a function call costs more than that."""
    return f"{name}._data"


def set_array(t: Tensor, a: Any) -> None:
    """Replace the tensor's array (tracing swaps tracer arrays in and the real ones back)."""
    t._data = a


def wrap(a: np.ndarray) -> Tensor:
    """A Tensor around ``a``, no copy, no graph: what the engine makes for a result."""
    return Tensor._wrap(a)


def has_hooks(t: Tensor) -> bool:
    return bool(t._hooks) or t._retains_grad


def grad_enabled() -> bool:
    return grad_mode.is_grad_enabled()


def anomaly_enabled() -> bool:
    return anomaly.is_anomaly_enabled()


def cache_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What selects a compiled program: grad mode, and each argument's shape and dtype
    (tensors: and requires_grad), or its value (Python scalars), or its identity.

    Computed on every call, so written for speed (exact type tests first, slots read
    directly): it is a good part of the cost of a call on a small network.
    """
    parts: list[Any] = [grad_mode.is_grad_enabled()]
    for a in args:
        cls = type(a)
        if cls is Tensor or (cls is not np.ndarray and isinstance(a, Tensor)):
            arr = a._data
            parts.append((arr.shape, arr.dtype, a._requires_grad))
        elif cls is np.ndarray or isinstance(a, np.ndarray):
            parts.append((a.shape, a.dtype))
        elif a is None or isinstance(a, bool | int | float | str):
            parts.append((cls, a))
        else:
            parts.append(id(a))
    if kwargs:
        parts.append(tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
    return tuple(parts)
