"""Functional forms of the layers and losses of ``chainrule.nn``, and the primitives they need.

New primitives here (each with its VJP next to it, like the ops of the tensor engine):

- ``erf`` / ``erfc``: the error function, ``d/dx erf x = 2/√π · e^(-x²)``;
- ``gelu``: ``x Φ(x)`` with Φ the standard normal CDF, ``d/dx = Φ(x) + x φ(x)``;
- ``bce_with_logits``: binary cross-entropy from a logit z and a target y,
  ``softplus(z) - y z``, ``∂/∂z = σ(z) - y``.

The VJPs are written with primitives, so they also work under ``create_graph=True``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from chainrule.nn.rng import RNG, as_generator
from chainrule.tensor import backend, ops
from chainrule.tensor.ops.loss import cross_entropy as _cross_entropy
from chainrule.tensor.primitive import defvjp, primitive
from chainrule.tensor.tensor import Tensor

Reduction = Literal["mean", "sum", "none"]

linear = ops.linear
relu = ops.relu
leaky_relu = ops.leaky_relu
tanh = ops.tanh
sigmoid = ops.sigmoid


def softmax(input: Any, dim: int = -1) -> Any:
    """``e^x / Σ e^x`` along ``dim``;  ∂s_i/∂x_j = s_i (𝕀[i = j] - s_j)."""
    return ops.softmax(input, axis=dim)


def log_softmax(input: Any, dim: int = -1) -> Any:
    """``x - logsumexp(x)`` along ``dim``;  ∂/∂x_j = 𝕀[i = j] - softmax(x)_j."""
    return ops.log_softmax(input, axis=dim)


def nll_loss(input: Any, target: Any, reduction: Reduction = "mean") -> Any:
    """Negative log-likelihood from log-probabilities (batch, classes) and class indices:
    ``ℓ_i = -input[i, t_i]``;  ∂ℓ_i/∂input[i, j] = -𝕀[j = t_i]."""
    t = np.asarray(_raw(target))
    shape = np.shape(_raw(input))
    if len(shape) != 2 or t.shape != shape[:1] or t.dtype.kind not in "iu":
        raise ValueError(
            f"nll_loss: expected input (batch, classes) and integer targets (batch,), got "
            f"shapes {shape} and {t.shape} ({t.dtype})."
        )
    if t.size and (t.min() < 0 or t.max() >= shape[1]):
        raise ValueError(
            f"nll_loss: targets must be class indices in [0, {shape[1]}), got values from "
            f"{t.min()} to {t.max()}."
        )
    picked = input[np.arange(shape[0]), t]
    return _reduce(-picked, reduction, "nll_loss")


def flatten(input: Any, start_dim: int = 0, end_dim: int = -1) -> Any:
    return input.flatten(start_dim, end_dim)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# -- the error function -------------------------------------------------------------------

_erf_object = np.frompyfunc(math.erf, 1, 1)
_erfc_object = np.frompyfunc(math.erfc, 1, 1)


def _math_erf(x: np.ndarray) -> np.ndarray:
    """erf through the C library's ``math.erf`` (~1 ulp, ~50 ns per element)."""
    return np.asarray(_erf_object(x), dtype=np.result_type(x, np.float32))


def _math_erfc(x: np.ndarray) -> np.ndarray:
    return np.asarray(_erfc_object(x), dtype=np.result_type(x, np.float32))


def _scipy_or_math(name: str) -> Any:
    """SciPy's vectorised erf/erfc (~30x faster) if installed (an optional dependency,
    chainrule[data]), else the math module's. Looked up on first use: importing
    scipy.special takes ~0.25 s, which `import chainrule` should not pay."""
    try:
        import scipy.special

        return getattr(scipy.special, name)
    except ImportError:  # pragma: no cover - exercised by calling _math_erf directly in tests
        return _math_erf if name == "erf" else _math_erfc


def _erf_np(x: np.ndarray) -> np.ndarray:
    global _erf_impl
    if _erf_impl is None:
        _erf_impl = _scipy_or_math("erf")
    return _erf_impl(x)  # type: ignore[no-any-return]


def _erfc_np(x: np.ndarray) -> np.ndarray:
    global _erfc_impl
    if _erfc_impl is None:
        _erfc_impl = _scipy_or_math("erfc")
    return _erfc_impl(x)  # type: ignore[no-any-return]


_erf_impl: Any = None
_erfc_impl: Any = None

erf = primitive(_erf_np, "erf", backend.erf)
erfc = primitive(_erfc_np, "erfc", backend.erfc)
defvjp(erf, lambda g, ans, x: g * (_TWO_OVER_SQRT_PI * ops.exp(-(x * x))), retain_output=False)
defvjp(erfc, lambda g, ans, x: g * (-_TWO_OVER_SQRT_PI * ops.exp(-(x * x))), retain_output=False)


def _gelu(x: np.ndarray) -> np.ndarray:
    # Φ(x) = erfc(-x/√2)/2 rather than (1 + erf(x/√2))/2: for x << 0 the sum 1 + erf
    # cancels to a few correct digits, erfc keeps them all.
    phi: np.ndarray = 0.5 * _erfc_np(x * -_INV_SQRT2)
    out: np.ndarray = x * phi
    return out


_gelu_primitive = primitive(
    _gelu, "gelu", lambda xp, x: x * (0.5 * backend.erfc(xp, x * -_INV_SQRT2))
)
defvjp(
    _gelu_primitive,
    # d/dx x Φ(x) = Φ(x) + x φ(x), φ(x) = e^(-x²/2) / √(2π)
    lambda g, ans, x: (
        g * (0.5 * erfc(x * -_INV_SQRT2) + x * ops.exp(-0.5 * (x * x)) * _INV_SQRT_2PI)
    ),
    retain_output=False,
)


def gelu(x: Any, approximate: Literal["none", "tanh"] = "none") -> Any:
    """GELU(x) = x Φ(x), Φ the standard normal CDF (PyTorch's default, exact form).

    ``approximate='tanh'``: ``x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³)))``, built from
    existing primitives.
    """
    if approximate == "none":
        return _gelu_primitive(x)
    if approximate == "tanh":
        inner = (x + 0.044715 * (x * x * x)) * math.sqrt(2.0 / math.pi)
        return 0.5 * x * (1.0 + ops.tanh(inner))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}.")


# -- dropout ------------------------------------------------------------------------------


def dropout(x: Any, p: float = 0.5, training: bool = True, rng: RNG = None) -> Any:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p).

    The scaling keeps E[output] = x, so evaluation (``training=False``) is the identity.
    The gradient flows through the kept elements, times the same 1/(1-p).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p is a probability and must lie in [0, 1], got {p}.")
    if not training or p == 0.0:
        return x
    shape = np.shape(x._data if isinstance(x, Tensor) else x)
    dtype = np.result_type(x.dtype if hasattr(x, "dtype") else np.float64, np.float32)
    if p == 1.0:
        return x * np.zeros(shape, dtype=dtype)
    keep = as_generator(rng).random(shape) >= p
    scale = keep.astype(dtype)
    scale *= 1.0 / (1.0 - p)  # in place: one array, the mask and the scale at once
    return x * scale


# -- losses -------------------------------------------------------------------------------


def _reduce(loss: Any, reduction: str, op: str) -> Any:
    if reduction == "mean":
        return ops.mean(loss)
    if reduction == "sum":
        return ops.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")


def _same_shape(input: Any, target: Any, op: str) -> None:
    a, b = np.shape(_raw(input)), np.shape(_raw(target))
    if a != b:
        raise ValueError(
            f"{op}: input has shape {a} and target {b}; they must match. (Broadcasting "
            f"them would compare every prediction with every target.) Reshape one, e.g. "
            "target.reshape(-1, 1) or input.reshape(-1)."
        )


def _raw(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else x


def mse_loss(input: Any, target: Any, reduction: Reduction = "mean") -> Any:
    """Mean squared error ``(x - y)²``, reduced;  ∂/∂x = 2(x - y)/N for 'mean'."""
    _same_shape(input, target, "mse_loss")
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def cross_entropy(input: Any, target: Any, reduction: Reduction = "mean") -> Any:
    """Cross-entropy from logits (batch, classes) and class indices (batch,).

    ``ℓ_i = logsumexp(z_i) - z_i[t_i]``;  ``∂ℓ_i/∂z_i = softmax(z_i) - onehot(t_i)``
    (the fused primitive ``chainrule.tensor.ops.loss.cross_entropy``).
    """
    return _cross_entropy(input, target, reduction=reduction)


def _bce_with_logits(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    # softplus(z) - y z with softplus(z) = max(z, 0) + log1p(e^-|z|): e^-|z| <= 1 never
    # overflows, and log1p keeps the tiny losses of confident correct predictions.
    loss: np.ndarray = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return loss


def _bce_with_logits_any(xp: Any, z: Any, y: Any) -> Any:
    return xp.maximum(z, xp.zeros_like(z)) - z * y + xp.log1p(xp.exp(-xp.abs(z)))


bce_with_logits = primitive(_bce_with_logits, "bce_with_logits", _bce_with_logits_any)
defvjp(
    bce_with_logits,
    lambda g, ans, z, y: g * (ops.sigmoid(z) - y),  # ∂/∂z = σ(z) - y
    lambda g, ans, z, y: g * -z,  # ∂/∂y = -z
    retain_output=False,
)


def binary_cross_entropy_with_logits(input: Any, target: Any, reduction: Reduction = "mean") -> Any:
    """Binary cross-entropy of ``σ(z)`` against targets y in [0, 1], computed from z.

    ``ℓ = -[y log σ(z) + (1 - y) log(1 - σ(z))] = softplus(z) - y z``, stable for any z;
    ``∂ℓ/∂z = σ(z) - y``.
    """
    _same_shape(input, target, "binary_cross_entropy_with_logits")
    return _reduce(bce_with_logits(input, target), reduction, "binary_cross_entropy_with_logits")


def hinge_loss(input: Any, target: Any, margin: float = 1.0, reduction: Reduction = "mean") -> Any:
    """The max-margin loss of micrograd's demo: ``relu(margin - y · score)``, y in {-1, +1}.

    A score on the right side of the margin costs nothing; ``∂ℓ/∂score = -y`` inside it.
    Scores of shape (N, 1) (a network with one output) go with labels of shape (N,).
    """
    scores, labels = input, target
    s_shape, t_shape = np.shape(_raw(scores)), np.shape(_raw(labels))
    if s_shape != t_shape and s_shape == (*t_shape, 1):
        scores = scores.reshape(t_shape)
    _same_shape(scores, labels, "hinge_loss")
    y = np.asarray(_raw(labels))
    if not np.isin(y, (-1, 1)).all():
        raise ValueError(
            f"hinge_loss: labels must be -1 or +1, got values {np.unique(y)[:5].tolist()}; "
            "for 0/1 labels use 2 * y - 1."
        )
    # Labels are constants: in the scores' dtype, int labels do not promote float32 to float64.
    y = y.astype(np.result_type(np.asarray(_raw(scores)).dtype, np.float32))
    return _reduce(ops.relu(margin - y * scores), reduction, "hinge_loss")
