"""The tensor engine: NumPy arrays with reverse-mode automatic differentiation."""

from chainrule.tensor.tensor import Tensor  # noqa: I001  (Tensor first: ops need it)
from chainrule.tensor import ops
from chainrule.tensor.anomaly import AnomalyError, detect_anomaly
from chainrule.tensor.dtypes import default_dtype, get_default_dtype, set_default_dtype
from chainrule.tensor.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from chainrule.tensor.primitive import (
    Primitive,
    defvjp,
    defvjp_argnum,
    defvjp_argnums,
    primitive,
)

__all__ = [
    "AnomalyError",
    "Primitive",
    "Tensor",
    "default_dtype",
    "defvjp",
    "defvjp_argnum",
    "defvjp_argnums",
    "detect_anomaly",
    "enable_grad",
    "get_default_dtype",
    "is_grad_enabled",
    "no_grad",
    "ops",
    "primitive",
    "set_default_dtype",
    "set_grad_enabled",
]
