"""Matrix products with NumPy's ``matmul`` semantics (1-D, 2-D and batched), and their VJPs.

For 2-D operands (the lecture's layers) with ``ans = x @ y``:
``∂ℓ/∂x = g @ yᵀ`` and ``∂ℓ/∂y = xᵀ @ g``. A 1-D operand is treated as a row (on the left)
or a column (on the right), as ``matmul`` does; batch axes broadcast, and the engine sums
the gradient of a broadcast operand back to its shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.tensor.primitive import defvjp, primitive


def _matmul_x_rule(g: Any, ans: Any, x: Any, y: Any) -> Any:
    if x.ndim == 1 and y.ndim == 1:  # inner product: ans = Σ x_i y_i
        return g * y
    if y.ndim == 1:  # (..., m, k) @ (k,) -> (..., m): outer product of g with y
        return g.reshape((*g.shape, 1)) * y
    if x.ndim == 1:  # (k,) @ (..., k, n) -> (..., n)
        return matmul(y, g.reshape((*g.shape, 1))).reshape((*g.shape[:-1], y.shape[-2]))
    return matmul(g, y.mT)


def _matmul_y_rule(g: Any, ans: Any, x: Any, y: Any) -> Any:
    if x.ndim == 1 and y.ndim == 1:
        return g * x
    if x.ndim == 1:  # (k,) @ (..., k, n): outer product of x with g
        return x.reshape((x.shape[0], 1)) * g.reshape((*g.shape[:-1], 1, g.shape[-1]))
    if y.ndim == 1:  # (..., m, k) @ (k,) -> (..., m)
        return matmul(x.mT, g.reshape((*g.shape, 1))).reshape((*g.shape[:-1], x.shape[-1]))
    return matmul(x.mT, g)


matmul = primitive(np.matmul, "matmul")
defvjp(matmul, _matmul_x_rule, _matmul_y_rule)


def _linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    # A batch of rows is computed as (Ω xᵀ)ᵀ, the lecture's column layout: BLAS runs it
    # 10-20% faster here, and the result is stored one input per column (Fortran order),
    # so the next layer's product is again in that layout. _linear_input_rule keeps the
    # gradients in the same layout, so elementwise rules never mix the two.
    out = (weight @ x.T).T if x.ndim == 2 else x @ weight.T
    if bias is not None:
        fits = bias.shape == out.shape[-1:]  # the usual (out_features,): no check needed
        if not fits:
            try:
                fits = np.broadcast_shapes(out.shape, bias.shape) == out.shape
            except ValueError:
                fits = False
        if not fits:
            # As PyTorch: a bias must add to every row without widening the output (a wider
            # output would also break the weight's gradient, a sum over x's rows).
            raise ValueError(
                f"bias of shape {bias.shape} does not fit the output {out.shape}; "
                f"give bias shape ({weight.shape[0]},)"
            )
        if bias.dtype == out.dtype:
            out += bias  # in place: saves one temporary of the output's size
        else:
            out = out + bias
    return out


def _linear_weight_rule(g: Any, ans: Any, x: Any, weight: Any, bias: Any = None) -> Any:
    # ∂ℓ/∂Ω = Σ_batch ∂ℓ/∂f hᵀ: one matrix product over all leading (batch) axes.
    if g.ndim != 2:
        g = g.reshape((-1, g.shape[-1]))
        x = x.reshape((-1, x.shape[-1]))
    return g.T @ x  # the operator: NumPy's on arrays, recorded on Tensors (create_graph)


def _linear_input_rule(g: Any, ans: Any, x: Any, weight: Any, bias: Any = None) -> Any:
    # ∂ℓ/∂h = Ωᵀ ∂ℓ/∂f, one input per column, handed back as rows (see _linear).
    if g.ndim == 2 and isinstance(g, np.ndarray):
        return (weight.T @ g.T).T
    return matmul(g, weight)


linear = primitive(_linear, "linear")
defvjp(
    linear,
    _linear_input_rule,
    _linear_weight_rule,
    lambda g, ans, x, weight, bias=None: g,  # ∂ℓ/∂β = ∂ℓ/∂f, summed over the batch
)
