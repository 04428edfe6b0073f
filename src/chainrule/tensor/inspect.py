"""Look inside a recorded graph: which operations it holds and what they saved for backward.

Backprop is "memory hungry": operations keep what their rules read (inputs, outputs) until
the backward pass reaches them. ``saved_tensors(loss)`` lists exactly what this engine keeps,
so the lecture's prediction (the sum of the activation sizes) can be checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule.graph import toposort
from chainrule.tensor.backward import edge_of
from chainrule.tensor.node import Node
from chainrule.tensor.tensor import Tensor


@dataclass(frozen=True)
class SavedTensor:
    """One array that the graph keeps alive for the backward pass."""

    op: str  # the operation that saved it (first one, if several share it)
    role: str  # "input 0", "input 1", ..., "output" or "residual"
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    is_leaf: bool  # a parameter or an input the user made (kept anyway, not by backprop)


def saved_tensors(root: Tensor) -> list[SavedTensor]:
    """Every distinct array the graph behind ``root`` holds for its backward pass.

    Counts each array once (by identity), in the order the forward pass made them: the
    inputs and outputs that each operation's rules read (what its primitive declares:
    ``retain_inputs``, ``retain_output``) and the residuals some keep (the softmax of a
    cross-entropy). Inputs that a rule reads only the shape of (``add``'s, ``reshape``'s, a
    linear layer's output before its ReLU) are not kept, and not counted. Scalars passed
    as constants are not arrays and are not counted.
    """
    return list(saved_by_id(root).values())


def saved_by_id(root: Tensor) -> dict[int, SavedTensor]:
    """``saved_tensors(root)`` keyed by the ``id`` of each array (to ask whether the graph
    holds a given array)."""
    seen: dict[int, SavedTensor] = {}
    for node in toposort(edge_of(root)):
        if type(node) is not Node or node.saved is None:
            continue
        op = node.prim.name
        for i, arg in enumerate(node.args):
            if isinstance(arg, Tensor):
                _add(seen, arg._data, op, f"input {i}", arg.is_leaf)
        if isinstance(node.ans, np.ndarray):
            _add(seen, node.ans, op, "output", False)
        if node.prim.residual:
            residual = node.residual
            for part in residual if isinstance(residual, tuple) else (residual,):
                if isinstance(part, np.ndarray):
                    _add(seen, part, op, "residual", False)
    return seen


def _add(seen: dict[int, SavedTensor], a: np.ndarray, op: str, role: str, leaf: bool) -> None:
    key = id(a)
    if key not in seen:
        seen[key] = SavedTensor(op, role, a.shape, str(a.dtype), int(a.nbytes), leaf)


def saved_bytes(root: Tensor, include_leaves: bool = False) -> int:
    """Total bytes of ``saved_tensors(root)``; leaves (parameters, data) excluded by default."""
    return sum(s.nbytes for s in saved_tensors(root) if include_leaves or not s.is_leaf)


def op_counts(root: Tensor) -> dict[str, int]:
    """How many times each operation appears in the graph behind ``root``."""
    counts: dict[str, int] = {}
    for node in toposort(edge_of(root)):
        if type(node) is Node:
            name = node.prim.name
            counts[name] = counts.get(name, 0) + 1
    return counts
