"""The tensor engine reproduces the lecture's matrix backprop equations exactly.

The reference is ``chainrule.lecture.matrix``: plain NumPy, one input per column,
∂ℓ/∂Ω_k = ∂ℓ/∂f_k h_kᵀ and ∂ℓ/∂f_{k-1} = 𝕀[f_{k-1} > 0] ⊙ Ω_kᵀ ∂ℓ/∂f_k. The engine runs
the same network with one input per row (``ops.linear``), knowing none of these formulas.
"""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import Tensor
from chainrule.lecture import matrix
from chainrule.tensor import ops
from chainrule.tensor.ops.loss import cross_entropy


def engine_grads(
    net: matrix.Network, x: np.ndarray, y: np.ndarray, loss: str
) -> tuple[float, list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    weights = [Tensor(w, requires_grad=True) for w in net.weights]
    biases = [Tensor(b.ravel(), requires_grad=True) for b in net.biases]
    f_seen: list[np.ndarray] = []
    h = Tensor(x.T)  # rows are inputs
    for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
        f = ops.linear(h, w, b)
        f.register_hook(lambda g: f_seen.append(g.numpy().T.copy()))  # ∂ℓ/∂f_k as it passes
        h = f.relu() if k < net.depth else f
    if loss == "least_squares":
        diff = h - Tensor(y.T)
        ell = (diff * diff).sum()
    else:
        ell = cross_entropy(h, y, reduction="sum")
    ell.backward()
    dl_df = f_seen[::-1]  # hooks fire from the last layer back
    return (
        ell.item(),
        [w.grad.numpy() for w in weights],  # type: ignore[union-attr]
        [b.grad.numpy()[:, None] for b in biases],  # type: ignore[union-attr]
        dl_df,
    )


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("width,batch", [(1, 1), (6, 1), (6, 7), (17, 32)])
@pytest.mark.parametrize("loss", ["least_squares", "cross_entropy"])
def test_engine_gradients_equal_the_lecture_equations(
    depth: int, width: int, batch: int, loss: str
) -> None:
    rng = np.random.default_rng(depth * 1000 + width * 10 + batch)
    n_in, n_out = 3, 4
    sizes = [n_in] + [width] * depth + [n_out]
    net = matrix.init_network(sizes, rng)
    for b in net.biases:  # nonzero biases so that every term of the equations matters
        b[:] = rng.standard_normal(b.shape) * 0.1
    x = rng.standard_normal((n_in, batch))
    fp = matrix.forward(net, x)
    if loss == "least_squares":
        y = rng.standard_normal((n_out, batch))
        ell, dl_df_out = matrix.least_squares(fp.f[-1], y)
    else:
        y = rng.integers(0, n_out, batch)
        ell, dl_df_out = matrix.cross_entropy(fp.f[-1], y)
    ref = matrix.backward(net, fp, dl_df_out)

    ours, dw, db, dl_df = engine_grads(net, x, y, loss)
    assert np.isclose(ours, ell, rtol=1e-12)

    def same(a: np.ndarray, b: np.ndarray) -> None:
        scale = 1.0 + np.abs(b).max(initial=0.0)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * scale)

    for k in range(depth + 1):
        same(dw[k], ref.weights[k])
        same(db[k], ref.biases[k])
        same(dl_df[k], ref.f[k])


def test_lecture_sgd_step_decreases_the_loss() -> None:
    rng = np.random.default_rng(0)
    net = matrix.init_network([2, 8, 8, 1], rng)
    x = rng.standard_normal((2, 64))
    y = np.sin(x[:1] * 2)
    losses = []
    for _ in range(50):
        fp = matrix.forward(net, x)
        ell, d = matrix.least_squares(fp.f[-1], y)
        matrix.sgd_step(net, matrix.backward(net, fp, d), lr=0.002)
        losses.append(ell)
    assert losses[-1] < 0.5 * losses[0]
