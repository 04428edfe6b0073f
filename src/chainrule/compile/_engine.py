"""The few tensor-engine internals that ``chainrule.compile`` touches, in one place.

The tracer works at the level of NumPy calls, so it needs almost nothing from the engine:
a Tensor's array (read and replaced while tracing), a way to make a result Tensor around an
array without copying, the in-place version bump, and whether a tensor carries hooks.
When the engine changes, this file is the one to adapt.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from chainrule.tensor import anomaly, grad_mode
from chainrule.tensor.tensor import Tensor
from chainrule.tensor.versions import _clock as clock
from chainrule.tensor.versions import _clock_lock as clock_lock
from chainrule.tensor.versions import mark_modified_source

__all__ = [
    "Tensor",
    "anomaly_enabled",
    "array_expr",
    "cache_key",
    "clock",
    "clock_lock",
    "get_array",
    "grad_enabled",
    "has_hooks",
    "mark_modified_source",
    "set_array",
    "store_grad_lines",
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
    """Hooks or retain_grad on the tensor (a leaf's are on it, a non-leaf's on its node)."""
    node = t._node
    return bool(t._hooks) or (node is not None and (bool(node._hooks) or node.retained is not None))


# Read on every call of a compiled step: the ContextVars' bound get (one C call each).
grad_enabled = grad_mode._enabled.get
anomaly_enabled = anomaly._enabled.get


def cache_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What selects a compiled program: grad mode, and each argument's shape and dtype
    (tensors: and requires_grad), or its value (Python scalars), or its identity.

    Computed on every call, so written for speed (exact type tests first, slots read
    directly): it is a good part of the cost of a call on a small network.
    """
    parts: list[Any] = [grad_enabled()]
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


def store_grad_lines(param: str, array: str) -> list[str]:
    """Program lines for ``param.grad = Tensor(array)``, as backward stores a gradient.

    A new Tensor per parameter per call (building it, freeing the previous one) costs
    more than the NumPy call that made a small gradient. When nothing but the parameter
    holds the previous ``.grad`` (its reference count says so, and it has no weak
    references) and that Tensor is in the
    state of a fresh one (no graph, hooks, name, ``requires_grad``), no one can tell it
    from a new Tensor: the program puts the array into it instead. Otherwise (the caller
    kept the old ``.grad``, or changed it) the line makes a new one, as eager mode does.
    """
    g = "_g"
    return [
        f"if (_rc({g} := {param}.grad) == {_UNHELD} and not _wrc({g})"
        f" and {g}.__class__ is _Tensor"
        f" and {g}._node is None"
        f" and {g}._hooks is None and {g}.grad is None"
        f" and not ({g}._requires_grad or {g}.name)):",
        f"    {g}._data, {g}._version, {g}._fp = {array}, [0, 0], None  # as a fresh Tensor",
        "else:",
        f"    {param}.grad = _wrap({array})",
    ]


# Every slot of a Tensor: store_grad_lines tests or resets each one (a test checks the list).
REUSE_COVERS = frozenset(
    {"_data", "_version", "_fp", "_node", "_hooks", "grad", "_requires_grad", "name",
     "__weakref__"}
)  # fmt: skip


def _unheld_count() -> int:
    """The reference count that ``store_grad_lines``'s test sees for a ``.grad`` that only
    its parameter holds: measured once on the same code, as it differs between Pythons."""
    ns: dict[str, Any] = {"_rc": sys.getrefcount}
    exec("def probe(p):\n    return _rc(_g := p.grad)\n", ns)
    p = Tensor._wrap(np.zeros(1))
    p.grad = Tensor._wrap(np.zeros(1))
    count: int = ns["probe"](p)
    return count


_UNHELD = _unheld_count()
