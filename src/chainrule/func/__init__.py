"""Function transforms: ``grad``, ``value_and_grad``, ``vjp``, ``jvp``, ``jacobian``,
``hessian`` and ``hvp``, in the manner of HIPS autograd and ``torch.func``.

A transform takes a function ``f`` written with Tensor operations and returns a function
that computes derivatives of ``f``::

    >>> import numpy as np
    >>> from chainrule import func
    >>> f = lambda x: (x ** 3).sum()
    >>> func.grad(f)(np.array([1.0, 2.0]))               # ∇f = 3x²
    array([ 3., 12.])
    >>> func.grad(func.grad(lambda x: x ** 3))(np.float64(2.0))   # f'' = 6x
    np.float64(12.0)

**Inputs.** The differentiated arguments (``argnums``) may be Tensors, NumPy arrays or
Python floats (which get the engine's default dtype, float32 unless changed); ``f``
receives them as Tensors. They must be floating point: an integer-valued function is
piecewise constant. Of the other arguments, NumPy arrays reach ``f`` as constant Tensors
and everything else (Tensors, numbers, labels, options) unchanged.

**Outputs.** NumPy in, NumPy out: when no argument is a Tensor, results are NumPy arrays
(0-d results as NumPy scalars), handy to print and to compare. When an argument is a
Tensor, results are Tensors. A result that must carry a graph is always a Tensor.

**Nesting (higher order).** Each call differentiates with respect to its *own* copy of
each input: a fresh leaf or, when the argument already carries a graph (an outer
transform, or ``requires_grad=True``), an identity node linked to it. A gradient with
respect to that node counts only the paths through this argument; HIPS autograd gets the
same from a new trace per call, and without it ``d/dx [x · d/dy (x + y)]`` would come out
as 2 instead of 1 ("perturbation confusion"). When the output's graph reaches a tensor
that requires a gradient and was not made by this call, the backward pass runs with
``create_graph=True``: the result is a Tensor whose graph leads back to that tensor, so an
outer transform (or your own ``backward()``) can differentiate it. ``grad(grad(f))``,
``jacobian(grad(f))`` and a gradient penalty ``(grad(loss)(x) ** 2).sum().backward()``
all work this way. Inside ``no_grad()`` no result carries a graph.
"""

from chainrule.func.transforms import grad, hessian, hvp, jacobian, jvp, value_and_grad, vjp

__all__ = ["grad", "hessian", "hvp", "jacobian", "jvp", "value_and_grad", "vjp"]
