"""Tracing a training step and generating its straight-line NumPy source.

``chainrule.compile(step)`` runs ``step`` once with tracer arrays in place of the arrays it
reads, writes down every NumPy call (forward, the backward pass's VJP rules, the update)
as one line of Python, and runs those lines on later calls: the same calls in the same
order as eager mode, without the engine's bookkeeping. ``step.source`` shows them.
"""

from chainrule.compile.api import Compiled, compile
from chainrule.compile.stmt import TraceError

__all__ = ["Compiled", "TraceError", "compile"]
