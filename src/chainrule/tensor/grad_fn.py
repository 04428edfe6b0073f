"""``tensor.grad_fn``: the backward node of the operation that made a tensor, as PyTorch
shows it, so a learner can walk the graph back from the loss::

    >>> import numpy as np
    >>> from chainrule import Tensor
    >>> w = Tensor(np.ones(2), requires_grad=True)
    >>> loss = (w * 3.0).sum()
    >>> loss.grad_fn.name()
    'SumBackward0'
    >>> mul = loss.grad_fn.next_functions[0][0]
    >>> mul.name(), mul.next_functions
    ('MulBackward0', ((<AccumulateGrad>, 0), (None, 0)))
    >>> mul.next_functions[0][0].variable is w
    True

In chainrule a non-leaf tensor is itself the graph node (its operation's saved inputs
hang off it), so a ``GradFn`` is a view of that node: it keeps its tensor alive while you
hold it, and two views of the same node compare equal. After a backward pass without
``retain_graph`` has freed the graph, ``next_functions`` is empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chainrule.tensor.tensor import Tensor


def backward_name(op: str) -> str:
    """PyTorch's node name for an operation: ``mul`` -> ``MulBackward0``."""
    return "".join(part.capitalize() for part in op.split("_")) + "Backward0"


class GradFn:
    """The backward node of the operation that computed ``tensor``."""

    __slots__ = ("_tensor",)

    def __init__(self, tensor: Tensor) -> None:
        self._tensor = tensor

    @property
    def op(self) -> str:
        """chainrule's name of the operation (its primitive): ``'mul'``, ``'linear'``..."""
        return str(self._tensor._ctx.prim.name)

    def name(self) -> str:
        """PyTorch's name of the node: ``'MulBackward0'``, ``'LinearBackward0'``..."""
        return backward_name(self.op)

    @property
    def next_functions(self) -> tuple[tuple[GradFn | AccumulateGrad | None, int], ...]:
        """One ``(node, 0)`` per input of the operation, in order: the input's ``grad_fn``,
        an ``AccumulateGrad`` for a leaf that requires grad, None for a constant."""
        return tuple((_node_of(a), 0) for a in self._tensor._ctx.args)

    @property
    def metadata(self) -> dict[str, Any]:
        return {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GradFn) and other._tensor is self._tensor

    def __hash__(self) -> int:
        return id(self._tensor)

    def __repr__(self) -> str:
        return f"<{self.name()}>"


class AccumulateGrad:
    """Where the gradient of a leaf tensor is added to its ``.grad`` (``.variable``)."""

    __slots__ = ("variable",)
    next_functions: tuple[()] = ()

    def __init__(self, variable: Tensor) -> None:
        self.variable = variable

    def name(self) -> str:
        return "AccumulateGrad"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AccumulateGrad) and other.variable is self.variable

    def __hash__(self) -> int:
        return id(self.variable)

    def __repr__(self) -> str:
        return "<AccumulateGrad>"


def _node_of(a: Any) -> GradFn | AccumulateGrad | None:
    from chainrule.tensor.tensor import Tensor

    if not isinstance(a, Tensor) or not a._requires_grad:
        return None
    return AccumulateGrad(a) if a._ctx is None else GradFn(a)


def grad_fn_of(t: Tensor) -> GradFn | None:
    return None if t._ctx is None else GradFn(t)
