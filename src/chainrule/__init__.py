"""chainrule: backpropagation made visible and fast.

- ``Value``: the scalar engine (micrograd-compatible), ``chainrule.scalar``.
- ``Tensor``: the NumPy-backed tensor engine, ``chainrule.tensor`` (with ``concatenate``,
  ``stack``, ``where``, ``maximum``, ``minimum`` here for convenience).
- ``draw_dot`` / ``to_dot``: pictures of computation graphs.
- ``func``: grad, vjp, jvp, jacobian, hessian, hvp; ``gradcheck``: finite differences.
- ``save`` / ``load``: model files (state dicts with JSON metadata), ``chainrule.io``.
"""

from chainrule import func, nn, optim
from chainrule.compile import compile as compile
from chainrule.draw import draw_dot, to_dot
from chainrule.gradcheck import gradcheck
from chainrule.graph import toposort
from chainrule.io import load, save
from chainrule.scalar import Value
from chainrule.tensor import (
    AnomalyError,
    Tensor,
    default_dtype,
    detect_anomaly,
    enable_grad,
    get_default_dtype,
    is_grad_enabled,
    no_grad,
    set_default_dtype,
    set_grad_enabled,
)
from chainrule.tensor.join import cat, concatenate, stack
from chainrule.tensor.ops import maximum, minimum, where

__version__ = "0.1.0"

__all__ = [
    "AnomalyError",
    "Tensor",
    "Value",
    "__version__",
    "cat",
    "concatenate",
    "default_dtype",
    "detect_anomaly",
    "draw_dot",
    "enable_grad",
    "func",
    "get_default_dtype",
    "gradcheck",
    "is_grad_enabled",
    "load",
    "maximum",
    "minimum",
    "nn",
    "no_grad",
    "optim",
    "save",
    "set_default_dtype",
    "set_grad_enabled",
    "stack",
    "to_dot",
    "toposort",
    "where",
]
