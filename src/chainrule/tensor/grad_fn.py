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

A non-leaf tensor's ``grad_fn`` is its graph node itself (``chainrule.tensor.node.Node``),
which holds what its operation's rules read, not the tensor: holding a node does not keep
its tensor alive. After a backward pass without ``retain_graph`` has freed the graph,
``next_functions`` is empty. A leaf's edge in the graph is the leaf tensor itself, shown as
an ``AccumulateGrad`` (made on access; two of the same leaf compare equal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chainrule.tensor.tensor import Tensor


def backward_name(op: str) -> str:
    """PyTorch's node name for an operation: ``mul`` -> ``MulBackward0``."""
    return "".join(part.capitalize() for part in op.split("_")) + "Backward0"


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
