"""PyTorch's ``torch.autograd`` surface: ``Function``, ``grad``, ``backward``, ``Variable``.

- ``Function``: an operation with a hand-written backward (``ctx.save_for_backward``,
  ``ctx.saved_tensors``, ``ctx.needs_input_grad``, ``MyFn.apply(x)``), recorded by the
  tensor engine as one primitive.
- ``grad(outputs, inputs, ...)``: the gradients of outputs with respect to inputs,
  returned instead of accumulated into ``.grad``.
- ``Variable``: the legacy name of ``Tensor`` (``Variable(t, requires_grad=True)``).
"""

from chainrule.autograd.function import Function, FunctionCtx
from chainrule.autograd.grad import Variable, backward, grad
from chainrule.tensor.grad_mode import enable_grad, no_grad, set_grad_enabled

__all__ = [
    "Function",
    "FunctionCtx",
    "Variable",
    "backward",
    "enable_grad",
    "grad",
    "no_grad",
    "set_grad_enabled",
]
