"""The transforms: grad, value_and_grad, vjp, jvp, hvp, jacobian, hessian."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.func.call import (
    Argnums,
    Call,
    Fn,
    check_argnums,
    pack,
    pairing,
    resolve,
    seed_like,
    tracked,
    with_tangents,
)
from chainrule.tensor import grad_mode, ops
from chainrule.tensor.tensor import Tensor


def _value_and_grad(f: Fn, argnums: Argnums, op: str) -> Fn:
    check_argnums(op, argnums)

    def value_and_grad_f(*args: Any) -> tuple[Any, Any]:
        call = Call(op, args, resolve(op, argnums, len(args)))
        out = call.output(call.run(f), scalar=True)
        # A graph that others can still reach (linked inputs, tensors from outside) must
        # survive this pass; a private one is freed as the pass goes, as backward() does.
        grads = call.backward(
            out, np.ones_like(out._data), create_graph=call.create_graph, retain=call.outside
        )
        return call.export(out), pack([call.export(g) for g in grads], argnums)

    return value_and_grad_f


def _grad(f: Fn, argnums: Argnums, op: str) -> Fn:
    vg = _value_and_grad(f, argnums, op)
    return lambda *args: vg(*args)[1]


def value_and_grad(f: Fn, argnums: Argnums = 0) -> Fn:
    """``(f(*args), ∇f)``: the value of a scalar function and its gradient(s), in one pass.

    Args:
        f: a function of Tensors returning a one-element Tensor.
        argnums: the position (int) or positions (tuple) of the arguments to differentiate.

    Returns:
        A function of ``f``'s arguments returning ``(value, gradient)``; the gradient has
        the shape of its argument, and is a tuple when ``argnums`` is a tuple.

    Example:
        >>> import numpy as np
        >>> from chainrule import func
        >>> func.value_and_grad(lambda w, x: (w * x).sum(), argnums=(0, 1))(
        ...     np.array([1.0, 2.0]), np.array([3.0, 4.0]))
        (np.float64(11.0), (array([3., 4.]), array([1., 2.])))
    """
    return _value_and_grad(f, argnums, "value_and_grad")


def grad(f: Fn, argnums: Argnums = 0) -> Fn:
    """∇f: the gradient of a scalar function with respect to the chosen arguments.

    ``grad(f)(x)[i] = ∂f/∂x_i``, the shape of ``x``. Nest it for higher derivatives:
    ``grad(grad(f))`` for scalar ``x``. See ``value_and_grad`` for the arguments.
    """
    return _grad(f, argnums, "grad")


def vjp(f: Fn, *primals: Any) -> tuple[Any, Callable[[Any], tuple[Any, ...]]]:
    """Vector-Jacobian product: ``(f(*primals), vjp_fn)`` with ``vjp_fn(u) = uᵀ J``.

    ``vjp_fn(cotangent)`` takes ∂ℓ/∂out (the shape of ``out``) and returns a tuple with
    ∂ℓ/∂primal_i = Σ_k u_k ∂out_k/∂primal_i for every primal: one backward pass. It may be
    called several times. This is what ``backward()`` computes for a non-scalar output.
    """
    op = "vjp"
    call = Call(op, primals, tuple(range(len(primals))))
    out = call.output(call.run(f))

    def vjp_fn(cotangent: Any) -> tuple[Any, ...]:
        u = seed_like(out, cotangent, op, "the cotangent")
        cg = call.grad_on and grad_mode.is_grad_enabled() and (call.outside or tracked(u))
        call.create_graph = cg
        return tuple(call.export(g) for g in call.backward(out, u, create_graph=cg))

    return call.export(out), vjp_fn


def jvp(f: Fn, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """Jacobian-vector product: ``(f(*primals), J v)``, exact, by reverse mode twice.

    ``J v = Σ_i ∂out/∂primal_i · v_i``, the change of ``out`` along the tangents. The
    engine is reverse mode only, so this uses the double-VJP trick: ``g(u) = uᵀ J`` is
    linear in a dummy cotangent ``u``; its VJP with ``v`` is ``(vᵀ Jᵀ)ᵀ = J v``.

    Args:
        f: a function of Tensors returning one Tensor.
        primals: a tuple with every argument of ``f`` (all are differentiated).
        tangents: a tuple of directions, one per primal, each of the primal's shape.
    """
    call, out, vs = with_tangents("jvp", f, primals, tangents, scalar=False)
    u = Tensor._wrap(np.zeros_like(out._data))
    u._requires_grad = True
    with grad_mode.enable_grad():
        gs = call.backward(out, u, create_graph=True)  # uᵀJ, recorded as a function of u
        root, seed = pairing(gs, vs)
    if root is None:
        return call.export(out), call.export(np.zeros_like(out._data))
    (jv,) = call.backward(root, seed, create_graph=call.create_graph, xs=[u])
    return call.export(out), call.export(jv)


def hvp(f: Fn, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """Hessian-vector product of a scalar function: ``(f(*primals), H v)``, exact.

    ``(H v)_i = Σ_j ∂²f/∂primal_i∂primal_j · v_j``: the gradient of ``<∇f, v>``, by
    differentiating the backward pass (``create_graph=True``); the Hessian is never formed.
    Returns a tuple with one entry per primal (``torch.autograd.functional.hvp``).
    """
    call, out, vs = with_tangents("hvp", f, primals, tangents, scalar=True)
    with grad_mode.enable_grad():
        gs = call.backward(out, np.ones_like(out._data), create_graph=True)
        root, seed = pairing(gs, vs)
    if root is None:
        hv = [np.zeros_like(x._data) for x in call.xs]
    else:
        hv = call.backward(root, seed, create_graph=call.create_graph)
    return call.export(out), tuple(call.export(h) for h in hv)


def jacobian(f: Fn, argnums: Argnums = 0) -> Fn:
    """The Jacobian ``J[i..., j...] = ∂out[i...]/∂x[j...]``, of shape ``out.shape + x.shape``.

    Rows index the outputs and columns the inputs (numerator layout, as ``torch.func.jacrev``
    and JAX). The lecture writes ∂f/∂h = Ωᵀ for ``f = Ω h`` (denominator layout, the shape
    of the gradient): that is the *transpose* of ``jacobian(f)(h)``, which returns Ω.
    Computed by reverse mode, one backward pass per output element.

    Args:
        f: a function of Tensors returning a Tensor, or a tuple of Tensors.
        argnums: the position (int) or positions (tuple) of the arguments.

    Returns:
        A function of ``f``'s arguments. With several outputs, a tuple over the outputs;
        with a tuple ``argnums``, each entry is a tuple over those arguments.

    Example:
        >>> import numpy as np
        >>> from chainrule import func
        >>> W = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        >>> func.jacobian(lambda h: W @ h)(np.ones(3))   # ∂f_i/∂h_j = Ω_ij
        array([[1., 2., 3.],
               [4., 5., 6.]])
    """
    return _jacobian(f, argnums, "jacobian")


def _jacobian(f: Fn, argnums: Argnums, op: str) -> Fn:
    check_argnums(op, argnums)

    def jacobian_f(*args: Any) -> Any:
        call = Call(op, args, resolve(op, argnums, len(args)))
        result = call.run(f)
        several = isinstance(result, tuple | list)
        values = list(result) if several else [result]
        outs = [call.output(v, what=f"output {k} of f") for k, v in enumerate(values)]
        call.create_graph = call.grad_on and call.outside
        jacs = [pack([call.export(j) for j in _rows(call, out)], argnums) for out in outs]
        return tuple(jacs) if several else jacs[0]

    return jacobian_f


def _rows(call: Call, out: Tensor) -> list[Any]:
    """The Jacobian of ``out`` with respect to each input: one backward pass per element."""
    cg = call.create_graph
    rows: list[list[Any]] = [[] for _ in call.xs]
    for k in range(out.numel()):
        seed = np.zeros(out.numel(), out.dtype)
        seed[k] = 1
        grads = call.backward(out, seed.reshape(out.shape), create_graph=cg)
        for row, g in zip(rows, grads, strict=True):
            row.append(g)
    jacs = []
    for x, row in zip(call.xs, rows, strict=True):
        if cg and any(map(tracked, row)):
            with grad_mode.enable_grad():  # stack is recorded, so the Jacobian has a graph
                jacs.append(ops.stack(*row).reshape(out.shape + x.shape))
        else:
            data = [r._data if isinstance(r, Tensor) else r for r in row]
            jacs.append(np.stack(data).reshape(out.shape + x.shape))
    return jacs


def hessian(f: Fn, argnums: Argnums = 0) -> Fn:
    """The Hessian ``H[i..., j...] = ∂²f/∂x[i...]∂x[j...]`` of a scalar function.

    ``hessian(f) = jacobian(grad(f))``: reverse mode over reverse mode. The shape is
    ``x.shape + x.shape``; with a tuple ``argnums``, ``H[a][b]`` is the block
    ∂²f/∂x_a∂x_b (a tuple of tuples, as ``torch.func.hessian``).

    Example:
        >>> import numpy as np
        >>> from chainrule import func
        >>> func.hessian(lambda x: (x[0] ** 2) * x[1])(np.array([1.0, 3.0]))
        array([[6., 2.],
               [2., 0.]])
    """
    check_argnums("hessian", argnums)
    return _jacobian(_grad(f, argnums, "hessian"), argnums, "hessian")
