"""Gradient checking: the engine's derivatives against central finite differences.

For a function ``f`` of one or more tensors, ``gradcheck`` reduces the output to a scalar
``φ(x) = <w, f(x)>`` with a random cotangent ``w`` (``w = 1`` for one-element outputs) and
compares, along random unit directions ``d`` of each input:

- first order: the analytic ``<∇φ, d>`` (one backward pass) with
  ``(φ(x + εd) - φ(x - εd)) / 2ε``;
- second order: the analytic Hessian-vector product ``H d`` (the backward pass
  differentiated, ``create_graph=True``) with ``(∇φ(x + εd) - ∇φ(x - εd)) / 2ε``.

Central differences err by O(ε²) from truncation and by about ``machine epsilon · |φ| / ε``
from rounding: with ε = 1e-6 that is ~1e-10 in float64 but ~0.1 in float32, too coarse to
tell a right gradient from a wrong one. So every checked input must be float64.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule import func
from chainrule.tensor import grad_mode
from chainrule.tensor.tensor import Tensor


class GradcheckError(RuntimeError):
    """Raised by ``gradcheck`` when an analytic derivative disagrees with finite differences."""


def gradcheck(
    fn: Callable[..., Any],
    *inputs: Any,
    order: int = 1,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    n_directions: int = 3,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Check ``fn``'s gradients (and, with ``order=2``, second derivatives) numerically.

    Args:
        fn: a function of the inputs returning a float64 Tensor (any shape).
        *inputs: the arguments of ``fn``. Floating-point Tensors and NumPy arrays are
            checked and must be float64; anything else (integer labels, Python numbers,
            None) is passed through unchanged.
        order: 1 checks first derivatives; 2 checks first and second derivatives.
        eps: the finite-difference step along each unit direction.
        atol, rtol: a derivative passes when ``|analytic - numeric| <= atol + rtol·|numeric|``.
        n_directions: random directions tried per input.
        seed: seeds the random directions and cotangent (the check is reproducible).
        raise_exception: raise ``GradcheckError`` on failure (else return False).

    Returns:
        True when every check passes.

    Example:
        >>> import numpy as np
        >>> from chainrule import gradcheck
        >>> x = np.array([[0.1, -0.2], [0.3, 0.4]])
        >>> gradcheck(lambda x: (x @ x).tanh(), x, order=2)
        True
    """
    if order not in (1, 2):
        raise ValueError(f"gradcheck: order must be 1 or 2, got {order!r}.")
    if n_directions < 1 or eps <= 0:
        raise ValueError(
            f"gradcheck: need n_directions >= 1 and eps > 0, got {n_directions} and {eps}."
        )
    args = list(inputs)
    checked = [i for i, a in enumerate(args) if _is_float(a)]
    if not checked:
        raise ValueError(
            "gradcheck: no floating-point input to check; pass float64 Tensors or NumPy "
            "arrays (integer inputs and Python numbers are passed through as constants)."
        )
    xs = [_float64(args[i], i) for i in checked]
    names = [_name(args[i], i) for i in checked]
    rng = np.random.default_rng(seed)

    def f_of(*vals: Any) -> Tensor:
        full = list(args)
        for i, v in zip(checked, vals, strict=True):
            full[i] = v
        out = fn(*full)
        if not isinstance(out, Tensor) or out.dtype != np.float64:
            what = f"dtype {out.dtype}" if isinstance(out, Tensor) else type(out).__name__
            raise TypeError(
                f"gradcheck: fn must return a float64 Tensor, got {what}; compute in float64 "
                "(float64 inputs, no .float() inside fn)."
            )
        return out

    with grad_mode.no_grad():
        shape = f_of(*[Tensor._wrap(x) for x in xs]).shape
    w = np.ones(shape) if int(np.prod(shape)) == 1 else rng.standard_normal(shape)

    def phi(*vals: Any) -> Tensor:  # the scalar <w, f(x)>
        return (f_of(*vals) * w).sum()

    def phi_value(vals: list[np.ndarray]) -> float:
        with grad_mode.no_grad():
            return float(phi(*[Tensor._wrap(v) for v in vals]).item())

    everything = tuple(range(len(xs)))
    grads = func.grad(phi, argnums=everything)(*xs)
    directions = [[_unit(rng, x.shape) for _ in range(n_directions)] for x in xs]

    for k, g in enumerate(grads):
        for n, d in enumerate(directions[k]):
            numeric = (phi_value(_moved(xs, k, eps * d)) - phi_value(_moved(xs, k, -eps * d))) / (
                2 * eps
            )
            analytic = float(np.vdot(g, d))
            if not _close(analytic, numeric, atol, rtol):
                return _fail(
                    raise_exception,
                    f"gradcheck: the gradient of {names[k]} disagrees with central differences:"
                    f" along random direction {n + 1} of {n_directions}, the analytic "
                    f"directional derivative is {analytic:.8g} but the numeric one is "
                    f"{numeric:.8g} (error {abs(analytic - numeric):.3g}, allowed "
                    f"{atol + rtol * abs(numeric):.3g} = atol + rtol·|numeric|). A VJP rule of "
                    f"an operation that {names[k]} flows into is wrong; check the ops one by "
                    "one on a smaller function.",
                )
    if order == 1:
        return True

    grad_of = func.grad(phi, argnums=everything)
    for k in everything:
        for n, d in enumerate(directions[k]):
            tangents = [d if j == k else np.zeros_like(xs[j]) for j in everything]
            _, hd = func.hvp(phi, xs, tangents)
            plus, minus = grad_of(*_moved(xs, k, eps * d)), grad_of(*_moved(xs, k, -eps * d))
            for j in everything:
                numeric_j = (plus[j] - minus[j]) / (2 * eps)
                err = np.abs(hd[j] - numeric_j) - (atol + rtol * np.abs(numeric_j))
                if err.size and err.max() > 0:
                    at = np.unravel_index(int(np.argmax(err)), err.shape)
                    a, b = float(hd[j][at]), float(numeric_j[at])
                    where = f" at index {tuple(int(i) for i in at)}" if err.ndim else ""
                    return _fail(
                        raise_exception,
                        f"gradcheck: second derivatives disagree: the gradient of {names[j]}, "
                        f"differentiated along random direction {n + 1} of {names[k]}, is "
                        f"{a:.8g}{where} by the Hessian-vector product (create_graph=True) "
                        f"but {b:.8g} by central differences of the gradient (error "
                        f"{abs(a - b):.3g}, allowed {atol + rtol * abs(b):.3g}). A VJP rule "
                        "on the path is not differentiable as written: rules must use "
                        "recorded operations, which they do when they run on Tensors.",
                    )
    return True


def _is_float(a: Any) -> bool:
    if isinstance(a, Tensor):
        return a.dtype.kind == "f"
    return isinstance(a, np.ndarray | np.floating) and a.dtype.kind == "f"


def _float64(a: Any, i: int) -> np.ndarray:
    data = a._data if isinstance(a, Tensor) else np.asarray(a)
    if data.dtype != np.float64:
        raise TypeError(
            f"gradcheck: {_name(a, i)} is {data.dtype}; finite differences need float64. "
            f"In {data.dtype} rounding alone moves (f(x+ε) - f(x-ε)) / 2ε by about "
            f"{np.finfo(data.dtype).eps:.0e}/ε ≈ {np.finfo(data.dtype).eps / 1e-6:.0e} for "
            "ε = 1e-6, which hides wrong gradients. Pass x.astype(np.float64) (or "
            "t.double()); integer inputs are passed through unchecked."
        )
    return data.copy()


def _name(a: Any, i: int) -> str:
    shape = np.shape(a._data if isinstance(a, Tensor) else a)
    label = f" '{a.name}'" if isinstance(a, Tensor) and a.name else ""
    return f"input {i}{label} (shape {shape})"


def _unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    d = rng.standard_normal(shape)
    norm = float(np.linalg.norm(d))
    return d / norm if norm > 0 else d


def _moved(xs: list[np.ndarray], k: int, step: np.ndarray) -> list[np.ndarray]:
    return [x + step if j == k else x for j, x in enumerate(xs)]


def _close(a: float, b: float, atol: float, rtol: float) -> bool:
    return abs(a - b) <= atol + rtol * abs(b)


def _fail(raise_exception: bool, message: str) -> bool:
    if raise_exception:
        raise GradcheckError(message)
    return False
