"""Jacobians made visible: the lecture's matrix calculus, computed by the engine.

**Two layouts.** For a function f of a vector h, the entries ∂f_i/∂h_j can be arranged two
ways, and the two are transposes of each other:

- *the lecture's layout* (denominator layout): ∂f/∂h has one **row per variable** h_j and
  one **column per function** f_i, the shape of a gradient. For f = β + Ω h it is Ωᵀ, and
  the chain rule multiplies from the input side: ∂ℓ/∂h = ∂f/∂h · ∂ℓ/∂f.
- *``chainrule.func.jacobian``'s layout* (numerator layout, as ``torch.func.jacrev`` and
  JAX): ``J[i, j] = ∂f_i/∂h_j``, one row per output. For f = β + Ω h it returns Ω.

Every function here returns the lecture's layout, computed with ``func.jacobian`` and
transposed by ``lecture_layout``; the names say so (``df_dh``: rows index h).

**The point of the section.** Backpropagation never forms a Jacobian: the backward pass
computes vector-Jacobian products (VJPs), ∂ℓ/∂h = ∂f/∂h · ∂ℓ/∂f, straight from the rules
(for a ReLU layer, Ωᵀ (𝕀[b > 0] ⊙ ∂ℓ/∂f)). ``vjp_versus_jacobian`` shows both routes give
the same numbers and what forming the Jacobian would cost for a wide layer.

Example:
    >>> import numpy as np
    >>> omega = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])   # f: R³ -> R²
    >>> linear_jacobian(omega, np.zeros(2), np.ones(3))         # ∂f/∂h = Ωᵀ, 3 × 2
    array([[1., 4.],
           [2., 5.],
           [3., 6.]])
    >>> relu_jacobian(np.array([-1.0, 2.0]))                    # diag(𝕀[b > 0])
    array([[0., 0.],
           [0., 1.]])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from chainrule import func
from chainrule.lecture import matrix
from chainrule.tensor.tensor import Tensor

Array = np.ndarray


def lecture_layout(jacobian: Array) -> Array:
    """``func.jacobian``'s J (rows index outputs) as the lecture's ∂f/∂h (rows index h): Jᵀ.

    Raises:
        ValueError: J is not a matrix (a vector-to-vector function's Jacobian).
    """
    if jacobian.ndim != 2:
        raise ValueError(
            f"lecture_layout: expected the Jacobian of a vector function of a vector "
            f"(2 dimensions), got shape {jacobian.shape}; flatten the input and output first"
        )
    return jacobian.T


def _as_vector(beta: Array) -> Array:
    # matrix.Network stores β_k as a column (D × 1); a single input h is a plain vector.
    return np.asarray(beta).reshape(-1)


def linear_layer(omega: Array, beta: Array) -> Callable[[Tensor], Tensor]:
    """f(h) = β + Ω h as a function of Tensors (Ω is D_out × D_in, h a vector of D_in)."""
    b = _as_vector(beta)
    return lambda h: b + omega @ h


def linear_jacobian(omega: Array, beta: Array, h: Array) -> Array:
    """∂f/∂h for f = β + Ω h, in the lecture's layout (D_in × D_out): equals Ωᵀ at every h."""
    return lecture_layout(func.jacobian(linear_layer(omega, beta))(h))


def relu_jacobian(b: Array) -> Array:
    """∂a[b]/∂b for a = ReLU: diag(𝕀[b > 0]), D × D, zero off the diagonal.

    It is diagonal because h_i = a[b_i] depends on b_i alone, so the two layouts coincide.
    At b_i = 0 the engine's subgradient is 0, as PyTorch's.
    """
    return lecture_layout(func.jacobian(lambda z: z.relu())(b))


def network_function(net: matrix.Network) -> Callable[[Tensor], Tensor]:
    """The composite f_K(h) of ``net`` for one input vector h, as a function of Tensors:
    f_0 = β_0 + Ω_0 h, h_{k+1} = ReLU[f_k], f_k = β_k + Ω_k h_k."""

    def f(h: Tensor) -> Tensor:
        out = linear_layer(net.weights[0], net.biases[0])(h)
        for w, b in zip(net.weights[1:], net.biases[1:], strict=True):
            out = linear_layer(w, b)(out.relu())
        return out

    return f


@dataclass(frozen=True)
class ChainRule:
    """The chain rule for ``net`` at one input h, every Jacobian in the lecture's layout.

    ``factors`` are, in order, ∂f_0/∂h = Ω_0ᵀ, ∂h_1/∂f_0 = diag(𝕀[f_0 > 0]),
    ∂f_1/∂h_1 = Ω_1ᵀ, ..., ∂f_K/∂h_K = Ω_Kᵀ, each computed by ``func.jacobian`` on its own
    layer; ``names`` label them. ``product`` multiplies them left to right (the lecture's
    order, from the input side); ``composite`` is ``func.jacobian`` of the whole network,
    transposed. The chain rule says ``product == composite``.
    """

    names: list[str]
    factors: list[Array]
    product: Array
    composite: Array


def chain_rule(net: matrix.Network, h: Array) -> ChainRule:
    """Every layer's Jacobian at h, their product, and the whole network's Jacobian."""
    names, factors = [], []
    x = np.asarray(h)
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        if k > 0:
            names.append(f"∂h{k}/∂f{k - 1}")
            factors.append(relu_jacobian(x))
            x = np.maximum(x, 0)
        names.append(f"∂f{k}/∂h{k}" if k else "∂f0/∂h")
        factors.append(linear_jacobian(w, b, x))
        x = _as_vector(b) + w @ x
    product = factors[0]
    for factor in factors[1:]:
        product = product @ factor
    composite = lecture_layout(func.jacobian(network_function(net))(np.asarray(h)))
    return ChainRule(names, factors, product, composite)


@dataclass(frozen=True)
class VJPComparison:
    """∂ℓ/∂h for one wide layer f = ReLU(β + Ω h), given u = ∂ℓ/∂f, by three routes.

    FLOPs are counted as in ``backprop_cost``: 2·m·n for an (m × n) matrix times a vector,
    1 per elementwise output. One VJP is 𝕀[b > 0] ⊙ u, then Ωᵀ(·): D_out + 2·D_in·D_out.
    ``func.jacobian`` forms J with one VJP per output (a one-hot u each time, D_out
    backward passes), then J·u costs 2·D_in·D_out more.
    """

    d_in: int
    d_out: int
    via_jacobian: Array  # (∂f/∂h) · u, with ∂f/∂h formed: D_in × D_out numbers
    via_vjp: Array  # func.vjp: one backward pass, no Jacobian
    via_backward: Array  # Tensor.backward(u): h.grad, the same backward pass
    jacobian_bytes: int  # the Jacobian that the first route stores
    vjp_bytes: int  # the largest array the VJP route makes: ∂ℓ/∂h or the masked u
    jacobian_backward_passes: int
    vjp_backward_passes: int

    @property
    def vjp_flops(self) -> int:
        """D_out (the mask times u) + 2·D_in·D_out (Ωᵀ times a vector)."""
        return self.d_out + 2 * self.d_in * self.d_out

    @property
    def jacobian_flops(self) -> int:
        """D_out VJPs to form the Jacobian, then 2·D_in·D_out for the product with u."""
        return self.d_out * self.vjp_flops + 2 * self.d_in * self.d_out

    @property
    def max_abs_difference(self) -> float:
        """The largest |difference| between any two of the three routes."""
        a, b, c = self.via_jacobian, self.via_vjp, self.via_backward
        return float(max(np.max(np.abs(a - b)), np.max(np.abs(a - c)), np.max(np.abs(b - c))))


@dataclass(frozen=True)
class WideLayer:
    """One layer f = ReLU(β + Ω h) at an input h, with u = ∂ℓ/∂f from the layers above."""

    omega: Array  # D_out × D_in
    beta: Array  # D_out
    h: Array  # D_in
    u: Array  # D_out


def wide_layer(d_in: int = 256, d_out: int = 256, seed: int = 0) -> WideLayer:
    """A random layer in float64: He-initialised Ω, β ~ N(0, 0.1²), h and u ~ N(0, 1).

    Raises:
        ValueError: a width is not a positive integer.
    """
    if d_in < 1 or d_out < 1:
        raise ValueError(f"wide_layer: widths must be positive integers, got {d_in}, {d_out}")
    rng = np.random.default_rng(seed)
    omega = rng.standard_normal((d_out, d_in)) * np.sqrt(2.0 / d_in)
    beta = rng.normal(0.0, 0.1, d_out)
    return WideLayer(omega, beta, rng.standard_normal(d_in), rng.standard_normal(d_out))


def vjp_versus_jacobian(layer: WideLayer) -> VJPComparison:
    """The VJP equals the product with the Jacobian, without forming it.

    ∂ℓ/∂h = ∂f/∂h · u three ways: forming ∂f/∂h with ``func.jacobian`` (D_out backward
    passes), with ``func.vjp`` and with ``Tensor.backward(u)`` (one backward pass each).

    Example:
        >>> r = vjp_versus_jacobian(wide_layer(d_in=100, d_out=50))
        >>> r.max_abs_difference < 1e-12, r.jacobian_bytes, r.vjp_bytes
        (True, 40000, 800)
    """
    d_out, d_in = layer.omega.shape

    def f(x: Tensor) -> Tensor:
        return linear_layer(layer.omega, layer.beta)(x).relu()

    df_dh = lecture_layout(func.jacobian(f)(layer.h))
    _, vjp_fn = func.vjp(f, layer.h)
    (via_vjp,) = vjp_fn(layer.u)
    leaf = Tensor(layer.h, requires_grad=True)
    f(leaf).backward(layer.u)
    assert leaf.grad is not None
    return VJPComparison(
        d_in,
        d_out,
        via_jacobian=df_dh @ layer.u,
        via_vjp=np.asarray(via_vjp),
        via_backward=leaf.grad.numpy(),
        jacobian_bytes=df_dh.nbytes,
        vjp_bytes=max(np.asarray(via_vjp).nbytes, layer.u.nbytes),
        jacobian_backward_passes=d_out,
        vjp_backward_passes=1,
    )
