"""The one graph walk both engines share: an iterative topological order.

A computation graph is a DAG whose nodes expose ``_prev``, the tuple of nodes they were
computed from (their parents). Backpropagation visits the nodes in *reverse* topological
order so that each node's gradient is complete before it is passed on to its parents.

The walk is iterative (an explicit stack), so a chain of a million nodes needs no
recursion: Python's default recursion limit (1000) is never touched.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Protocol, TypeVar


class GraphNode(Hashable, Protocol):
    """Anything with a tuple of parent nodes; hashed by identity."""

    @property
    def _prev(self) -> Sequence[GraphNode]: ...


N = TypeVar("N", bound=GraphNode)


def toposort(root: N) -> list[N]:
    """Return every node reachable from ``root``, each after all of its parents.

    Depth-first search with an explicit stack. A node is pushed when it is met; when it
    is expanded, it is pushed again under the marker ``_EMIT`` and then its parents, so
    that it is emitted once they all are (no tuple per entry: this loop runs once per node
    of graphs with 10^5..10^6 nodes, and on every backward pass). A node reached twice (a
    shared sub-expression such as ``a + a``) is emitted once; a node without parents (a
    leaf) is emitted as soon as it is expanded.

    Example:
        >>> from chainrule import Value
        >>> a = Value(2.0, label="a")
        >>> b = a * a + a
        >>> [n.label or n._op for n in toposort(b)]
        ['a', '*', '+']
    """
    order: list[N] = []
    seen: set[N] = set()
    stack: list[Any] = [root]
    # Local aliases: the loop's every step is one of these calls.
    push, pop, emit, mark = stack.append, stack.pop, order.append, seen.add
    while stack:
        node = pop()
        if node is _EMIT:
            emit(pop())
            continue
        if node in seen:
            continue
        mark(node)
        parents = node._prev
        if not parents:
            emit(node)
            continue
        push(node)
        push(_EMIT)
        for parent in parents:
            if parent not in seen:
                push(parent)
    return order


# On the stack, above a node whose parents are being visited: emit that node next.
_EMIT: Any = object()
