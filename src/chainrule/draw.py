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


def draw_dot(root: Value, rankdir: str = "LR", fmt: str = "svg") -> Any:
    """Draw the computation graph that produced ``root``.

    Args:
        root: the Value whose history to draw (usually the loss).
        rankdir: ``'LR'`` (left to right, the lecture's layout) or ``'TB'`` (top down).
        fmt: the format used when the picture is rendered or shown (``'svg'``, ``'png'``).

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
        text = f"{_escape(node.label)} | data {_fmt(node.data)} | grad {_fmt(node.grad)}"
        dot.node(name=uid, label="{ " + text + " }", shape="record")
        if node._op:
            dot.node(name=uid + node._op, label=node._op)
            dot.edge(uid + node._op, uid)
        for parent in node._prev:  # a + a draws two edges: a is used twice
            dot.edge(str(id(parent)), uid + node._op)
    return dot


def to_dot(root: Value, rankdir: str = "LR") -> str:
    """The DOT text of ``draw_dot(root)``; needs no Graphviz binary."""
    return str(draw_dot(root, rankdir=rankdir).source)
