"""Matrix products with NumPy's ``matmul`` semantics (1-D, 2-D and batched), and their VJPs.

For 2-D operands (the lecture's layers) with ``ans = x @ y``:
``∂ℓ/∂x = g @ yᵀ`` and ``∂ℓ/∂y = xᵀ @ g``. A 1-D operand is treated as a row (on the left)
or a column (on the right), as ``matmul`` does; batch axes broadcast, and the engine sums
the gradient of a broadcast operand back to its shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.tensor.backend import namespace
from chainrule.tensor.primitive import defvjp, defvjp_argnums, primitive, standard


def _matmul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.ndim == y.ndim == 2:
        # (yᵀ xᵀ)ᵀ: OpenBLAS then runs the batch (x's rows) along its column-major rows, the
        # lecture's layout (as _linear): the plain MLP step of benchmarks/compile.py is ~10%
        # faster at 784-256-256-10. The result is stored one row of x per column (Fortran
        # order); elementwise ops keep that order, and _matmul_x_rule hands gradients back
        # in it. (isinstance: chainrule.compile's tracers record the same calls.)
        return (y.T @ x.T).T
    return np.matmul(x, y)


def _matmul_x_rule(g: Any, ans: Any, x: Any, y: Any) -> Any:
    if x.ndim > 1 and y.ndim > 1:  # (matrices: the common case first)
        if isinstance(g, np.ndarray) and isinstance(y, np.ndarray):  # NumPy: no primitive
            # g yᵀ as (y gᵀ)ᵀ, in the layout of _matmul's results (see there)
            return (y @ g.T).T if g.ndim == y.ndim == 2 else g @ y.mT
        return matmul(g, y.mT)
    if x.ndim == 1 and y.ndim == 1:  # inner product: ans = Σ x_i y_i
        return g * y
    xp = namespace(g)
    if y.ndim == 1:  # (..., m, k) @ (k,) -> (..., m): outer product of g with y
        return xp.reshape(g, (*g.shape, 1)) * y
    # x.ndim == 1: (k,) @ (..., k, n) -> (..., n)
    column = matmul(y, xp.reshape(g, (*g.shape, 1)))
    return xp.reshape(column, (*g.shape[:-1], y.shape[-2]))


def _matmul_y_rule(g: Any, ans: Any, x: Any, y: Any) -> Any:
    if x.ndim > 1 and y.ndim > 1:
        if isinstance(g, np.ndarray) and isinstance(x, np.ndarray):
            return x.mT @ g  # (a weight's layout: as x's columns, C order for h @ W)
        return matmul(x.mT, g)
    if x.ndim == 1 and y.ndim == 1:
        return g * x
    xp = namespace(g)
    if x.ndim == 1:  # (k,) @ (..., k, n): outer product of x with g
        return namespace(x).reshape(x, (x.shape[0], 1)) * xp.reshape(
            g, (*g.shape[:-1], 1, g.shape[-1])
        )
    # y.ndim == 1: (..., m, k) @ (k,) -> (..., m)
    column = matmul(x.mT, xp.reshape(g, (*g.shape, 1)))
    return xp.reshape(column, (*g.shape[:-1], x.shape[-1]))


matmul = primitive(_matmul, "matmul", standard("matmul"))
defvjp(matmul, _matmul_x_rule, _matmul_y_rule, retain_output=False)


def _linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    # A batch of rows is computed as (Ω xᵀ)ᵀ, the lecture's column layout: BLAS runs it
    # 10-20% faster here, and the result is stored one input per column (Fortran order),
    # so the next layer's product is again in that layout. _linear_input_rule keeps the
    # gradients in the same layout, so elementwise rules never mix the two.
    out = (weight @ x.T).T if x.ndim == 2 else x @ weight.T
    if bias is not None:
        if bias.shape != out.shape[-1:]:  # (the usual (out_features,) needs no check)
            _check_bias(bias.shape, out.shape, weight.shape)
        if bias.dtype == out.dtype:
            out += bias  # in place: saves one temporary of the output's size
        else:
            out = out + bias
    return out


def _check_bias(bias: tuple[int, ...], out: tuple[int, ...], weight: tuple[int, ...]) -> None:
    fits = bias == out[-1:]  # the usual (out_features,): no check needed
    if not fits:
        try:
            fits = np.broadcast_shapes(out, bias) == out  # (shapes only: no arrays)
        except ValueError:
            fits = False
    if not fits:
        # As PyTorch: a bias must add to every row without widening the output (a wider
        # output would also break the weight's gradient, a sum over x's rows).
        raise ValueError(
            f"bias of shape {bias} does not fit the output {out}; give bias shape ({weight[0]},)"
        )


def _linear_any(xp: Any, x: Any, weight: Any, bias: Any = None) -> Any:
    """``_linear`` on any array library: x Ωᵀ + β."""
    out = xp.matmul(x, xp.matrix_transpose(weight))
    if bias is None:
        return out
    _check_bias(bias.shape, out.shape, weight.shape)
    return out + bias


def _linear_rule(
    argnums: Sequence[int], g: Any, ans: Any, x: Any, weight: Any, bias: Any = None
) -> list[Any]:
    """The lecture's three equations for f = β + Ω h, for the inputs that need them:
    ∂ℓ/∂h = Ωᵀ ∂ℓ/∂f, ∂ℓ/∂Ω = ∂ℓ/∂f hᵀ and ∂ℓ/∂β = ∂ℓ/∂f, each summed over the batch."""
    rows = g.ndim == 2 and isinstance(g, np.ndarray)  # NumPy rows: the hot path, fast paths
    xp = None if rows else namespace(g)
    grads = []
    for i in argnums:
        if i == 0:
            # One input per column, handed back as rows (see _linear): (Ωᵀ gᵀ)ᵀ.
            grads.append((weight.T @ g.T).T if rows else matmul(g, weight))
        elif i == 1:
            if g.ndim == 2:  # one matrix product over all leading (batch) axes
                grads.append(g.T @ x)
            else:
                assert xp is not None
                flat_g = xp.reshape(g, (-1, g.shape[-1]))
                grads.append(flat_g.T @ namespace(x).reshape(x, (-1, x.shape[-1])))
        elif rows and bias.shape == g.shape[1:]:
            grads.append(np.add.reduce(g, axis=0))  # NumPy only: the ufunc, no np.sum wrapper
        else:
            grads.append(g)  # the engine sums it back to the bias's shape (sum_to)
    return grads


linear = primitive(_linear, "linear", _linear_any)
# Keeps h and Ω; of β only its shape is read.
defvjp_argnums(linear, _linear_rule, retain_inputs=(0, 1), retain_output=False)
linear.quiet = False  # products and sums: no np.errstate needed (see Primitive)
