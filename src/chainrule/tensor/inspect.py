"""Look inside a recorded graph: which operations it holds and what they saved for backward.

Backprop is "memory hungry": every operation keeps its inputs (and its output) until the
backward pass reaches it. ``saved_tensors(loss)`` lists exactly what this engine keeps,
so the lecture's prediction (the sum of the activation sizes) can be checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass

from chainrule.graph import toposort
from chainrule.tensor.primitive import Context
from chainrule.tensor.tensor import Tensor


@dataclass(frozen=True)
class SavedTensor:
    """One array that the graph keeps alive for the backward pass."""

    op: str  # the operation that saved it (first one, if several share it)
    role: str  # "input 0", "input 1", ... or "output"
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    is_leaf: bool  # a parameter or an input the user made (kept anyway, not by backprop)


def saved_tensors(root: Tensor) -> list[SavedTensor]:
    """Every distinct array the graph behind ``root`` holds for its backward pass.

    Counts each array once (by identity), in the order the forward pass made them. The
    output of each recorded operation is included: it is the node of the graph, and rules
    such as ``exp``'s and ``relu``'s reuse it. Scalars passed as constants are not arrays
    and are not counted.
    """
    seen: dict[int, SavedTensor] = {}
    for node in toposort(root):
        ctx = node._ctx
        if not isinstance(ctx, Context) or ctx.released:
            continue
        for i, arg in enumerate(ctx.args):
            if isinstance(arg, Tensor):
                _add(seen, arg, ctx.prim.name, f"input {i}")
        _add(seen, node, ctx.prim.name, "output")
    return list(seen.values())


def _add(seen: dict[int, SavedTensor], t: Tensor, op: str, role: str) -> None:
    key = id(t._data)
    if key not in seen:
        a = t._data
        seen[key] = SavedTensor(op, role, a.shape, str(a.dtype), int(a.nbytes), t._ctx is None)


def saved_bytes(root: Tensor, include_leaves: bool = False) -> int:
    """Total bytes of ``saved_tensors(root)``; leaves (parameters, data) excluded by default."""
    return sum(s.nbytes for s in saved_tensors(root) if include_leaves or not s.is_leaf)


def op_counts(root: Tensor) -> dict[str, int]:
    """How many times each operation appears in the graph behind ``root``."""
    counts: dict[str, int] = {}
    for node in toposort(root):
        if isinstance(node._ctx, Context):
            name = node._ctx.prim.name
            counts[name] = counts.get(name, 0) + 1
    return counts
