"""The lecture's backpropagation in matrix form, in plain NumPy, to read next to the slides.

A network with K hidden layers and ReLU activations a[·]:

    f_0 = β_0 + Ω_0 x,   h_{k+1} = a[f_k],   f_k = β_k + Ω_k h_k   (k = 1 .. K),   ℓ = l[f_K, y]

A batch of I inputs is stored as the columns of x (shape D_in × I), so every f_k and h_k
is a matrix with one column per input, and β_k (a column) is added to every column.

Forward pass: compute and *store* every f_k and h_k. Backward pass, in reverse order:

    ∂ℓ/∂β_k = ∂ℓ/∂f_k                   (summed over the batch's columns)
    ∂ℓ/∂Ω_k = ∂ℓ/∂f_k h_kᵀ               (the matrix product sums over the batch)
    ∂ℓ/∂f_{k-1} = 𝕀[f_{k-1} > 0] ⊙ (Ω_kᵀ ∂ℓ/∂f_k)

Nothing here uses an autograd engine: it is the reference the engines are checked against,
and the "hand-written NumPy" of the benchmarks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass
class Network:
    """Parameters φ = {β_k, Ω_k}: ``weights[k]`` is Ω_k (D_{k+1} × D_k), ``biases[k]`` is β_k
    (a column, D_{k+1} × 1)."""

    weights: list[Array]
    biases: list[Array]

    @property
    def depth(self) -> int:
        """K: the number of hidden layers (there are K + 1 weight matrices)."""
        return len(self.weights) - 1


def init_network(sizes: list[int], rng: np.random.Generator, dtype: type = np.float64) -> Network:
    """He initialisation: Ω_k ~ N(0, 2/D_k), β_k = 0, for layer sizes [D_in, D_1, ..., D_out]."""
    weights = [
        (rng.standard_normal((d_out, d_in)) * np.sqrt(2.0 / d_in)).astype(dtype)
        for d_in, d_out in itertools.pairwise(sizes)
    ]
    biases: list[Array] = [np.zeros((d_out, 1), dtype=dtype) for d_out in sizes[1:]]
    return Network(weights, biases)


@dataclass
class ForwardPass:
    """Everything the forward pass stores for the backward pass: f_0..f_K and h_0..h_K
    (h_0 = x). This storage is why backprop is memory hungry."""

    f: list[Array]
    h: list[Array]


def forward(net: Network, x: Array) -> ForwardPass:
    """f_k = β_k + Ω_k h_k, h_{k+1} = ReLU[f_k], for a batch x with one input per column."""
    h = [x]
    f = []
    for k in range(net.depth + 1):
        f.append(net.biases[k] + net.weights[k] @ h[k])  # f_k = β_k + Ω_k h_k
        if k < net.depth:
            h.append(np.maximum(f[k], 0))  # h_{k+1} = a[f_k]
    return ForwardPass(f, h)


def least_squares(f_out: Array, y: Array) -> tuple[float, Array]:
    """ℓ = Σ_i ||f_i - y_i||² over the batch's columns, and ∂ℓ/∂f_K = 2 (f_K - y)."""
    diff = f_out - y
    return float(np.sum(diff * diff)), 2 * diff


def cross_entropy(f_out: Array, labels: Array, mean: bool = False) -> tuple[float, Array]:
    """ℓ = Σ_i -log softmax(f_i)[y_i] (or the mean), and ∂ℓ/∂f_K = softmax(f_K) - onehot(y).

    f_out holds one column of class scores per input; labels are class indices.
    """
    shifted = f_out - f_out.max(axis=0, keepdims=True)  # stable: the largest score is 0
    log_p = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))
    columns = np.arange(f_out.shape[1])
    scale = 1.0 / f_out.shape[1] if mean else 1.0
    loss = -float(log_p[labels, columns].sum()) * scale
    dl_df = np.exp(log_p)
    dl_df[labels, columns] -= 1
    if mean:
        dl_df *= scale
    return loss, dl_df


@dataclass
class Gradients:
    """∂ℓ/∂Ω_k, ∂ℓ/∂β_k and every ∂ℓ/∂f_k from the backward pass."""

    weights: list[Array]
    biases: list[Array]
    f: list[Array]


def backward(net: Network, fp: ForwardPass, dl_df_out: Array) -> Gradients:
    """The backward pass: from ∂ℓ/∂f_K back to ∂ℓ/∂f_0, reusing the stored f_k and h_k."""
    depth = net.depth
    dl_df: list[Array] = [np.empty(0)] * (depth + 1)
    dl_dweights: list[Array] = [np.empty(0)] * (depth + 1)
    dl_dbiases: list[Array] = [np.empty(0)] * (depth + 1)
    dl_df[depth] = dl_df_out
    for k in range(depth, -1, -1):
        dl_dbiases[k] = dl_df[k].sum(axis=1, keepdims=True)  # ∂ℓ/∂β_k = ∂ℓ/∂f_k
        dl_dweights[k] = dl_df[k] @ fp.h[k].T  # ∂ℓ/∂Ω_k = ∂ℓ/∂f_k h_kᵀ
        if k > 0:
            # ∂ℓ/∂f_{k-1} = 𝕀[f_{k-1} > 0] ⊙ (Ω_kᵀ ∂ℓ/∂f_k)
            dl_df[k - 1] = (fp.f[k - 1] > 0) * (net.weights[k].T @ dl_df[k])
    return Gradients(dl_dweights, dl_dbiases, dl_df)


def sgd_step(net: Network, grads: Gradients, lr: float) -> None:
    """φ ← φ - α ∂ℓ/∂φ, for every Ω_k and β_k."""
    for k in range(net.depth + 1):
        net.weights[k] -= lr * grads.weights[k]
        net.biases[k] -= lr * grads.biases[k]
