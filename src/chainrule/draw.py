"""Pictures of computation graphs, laid out by Graphviz.

``draw_dot(root)`` returns a ``graphviz.Digraph``: one record node per Value showing
``label | data | grad``, one small oval per operation, and edges operand -> op -> result,
the picture the lecture's notebook draws. In Jupyter it displays inline as SVG.
``to_dot(root)`` gives the DOT text, which needs no Graphviz binary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chainrule.graph import toposort

if TYPE_CHECKING:
    from chainrule.scalar.engine import Value

INSTALL_HINT = (
    "the Graphviz program 'dot' is needed to render pictures and was not found on PATH. "
    "Install it: Debian/Ubuntu 'sudo apt-get install graphviz', macOS 'brew install "
    "graphviz', conda 'conda install -c conda-forge graphviz', Windows "
    "'winget install graphviz'. to_dot(root) gives the DOT text without it."
)


class GraphvizNotFoundError(RuntimeError):
    """Rendering a picture needs the Graphviz ``dot`` program, which is not installed."""


def _graphviz() -> Any:
    try:
        import graphviz
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "draw_dot needs the 'graphviz' Python package: pip install 'chainrule[viz]'"
        ) from exc
    return graphviz


def _picture_class() -> type:
    """A ``graphviz.Digraph`` whose rendering errors say how to install Graphviz."""
    graphviz = _graphviz()

    class GraphPicture(graphviz.Digraph):  # type: ignore[misc, name-defined]
        def _wrap(self, method: str, *args: Any, **kwargs: Any) -> Any:
            try:
                return getattr(super(), method)(*args, **kwargs)
            except graphviz.ExecutableNotFound as exc:
                raise GraphvizNotFoundError(f"{method}: {INSTALL_HINT}") from exc

        def render(self, *args: Any, **kwargs: Any) -> Any:
            return self._wrap("render", *args, **kwargs)

        def pipe(self, *args: Any, **kwargs: Any) -> Any:
            return self._wrap("pipe", *args, **kwargs)

        def _repr_mimebundle_(self, *args: Any, **kwargs: Any) -> Any:
            return self._wrap("_repr_mimebundle_", *args, **kwargs)

    return GraphPicture


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def _escape(text: str) -> str:
    # Record labels give {, }, |, < and > a meaning; a user's label may contain them.
    for ch in "\\{}|<>":
        text = text.replace(ch, "\\" + ch)
    return text


def _record(dot: Any, uid: str, label: str, data: float, grad: float) -> None:
    text = f"{_escape(label)} | data {_fmt(data)} | grad {_fmt(grad)}"
    dot.node(name=uid, label="{ " + text + " }", shape="record")


def _draw_unfused(dot: Any, node: Value, uid: str) -> None:
    """A one-node neuron ``b + Σ w_i x_i`` drawn as micrograd builds it: a ``*`` node per
    product and a chain of ``+`` nodes, summed left to right from b (``sum(w*x, b)``).

    Every product and partial sum gets ∂/∂ = the neuron's gradient (``+`` passes it on)."""
    b, rest = node._prev[0], node._prev[1:]
    acc_id, acc = str(id(b)), b.data
    n = len(rest) // 2
    for i in range(n):
        w, x = rest[2 * i], rest[2 * i + 1]
        prod_id = f"{uid}_mul{i}"
        _record(dot, prod_id, "", w.data * x.data, node.grad)
        dot.node(name=prod_id + "*", label="*")
        dot.edge(prod_id + "*", prod_id)
        dot.edge(str(id(w)), prod_id + "*")
        dot.edge(str(id(x)), prod_id + "*")
        acc = acc + w.data * x.data
        sum_id = uid if i == n - 1 else f"{uid}_add{i}"
        if sum_id != uid:
            _record(dot, sum_id, "", acc, node.grad)
        dot.node(name=sum_id + "+", label="+")
        dot.edge(sum_id + "+", sum_id)
        dot.edge(acc_id, sum_id + "+")
        dot.edge(prod_id, sum_id + "+")
        acc_id = sum_id


def draw_dot(root: Value, rankdir: str = "LR", fmt: str = "svg", unfuse: bool = False) -> Any:
    """Draw the computation graph that produced ``root``.

    Args:
        root: the Value whose history to draw (usually the loss).
        rankdir: ``'LR'`` (left to right, the lecture's layout) or ``'TB'`` (top down).
        fmt: the format used when the picture is rendered or shown (``'svg'``, ``'png'``).
        unfuse: draw each one-node neuron (``w·x+b``, see ``linear_combination``) as
            micrograd's graph of ``*`` and ``+`` nodes, with the same data and gradients
            micrograd would show; the picture of the lecture's notebooks.

    Returns:
        A ``graphviz.Digraph``. ``.render('graph', format='svg')`` writes a file;
        ``.source`` is the DOT text; in Jupyter it displays inline.

    Example:
        >>> from chainrule import Value
        >>> a, b = Value(2.0, label="a"), Value(-3.0, label="b")
        >>> c = a * b; c.label = "c"
        >>> c.backward()
        >>> "a | data 2.0000 | grad -3.0000" in draw_dot(c).source
        True
    """
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"draw_dot: rankdir must be 'LR', 'TB', 'RL' or 'BT', got {rankdir!r}")
    dot = _picture_class()(format=fmt, graph_attr={"rankdir": rankdir})
    for node in toposort(root):
        uid = str(id(node))
        _record(dot, uid, node.label, node.data, node.grad)
        if unfuse and node._op == "w·x+b" and len(node._prev) > 1:
            _draw_unfused(dot, node, uid)
            continue
        if node._op:
            dot.node(name=uid + node._op, label=node._op)
            dot.edge(uid + node._op, uid)
        for parent in node._prev:  # a + a draws two edges: a is used twice
            dot.edge(str(id(parent)), uid + node._op)
    return dot


def to_dot(root: Value, rankdir: str = "LR", unfuse: bool = False) -> str:
    """The DOT text of ``draw_dot(root)``; needs no Graphviz binary."""
    return str(draw_dot(root, rankdir=rankdir, unfuse=unfuse).source)
