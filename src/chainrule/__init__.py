"""chainrule: backpropagation made visible and fast."""

from chainrule.draw import draw_dot, to_dot
from chainrule.graph import toposort
from chainrule.scalar import Value

__version__ = "0.1.0"

__all__ = ["Value", "__version__", "draw_dot", "to_dot", "toposort"]
