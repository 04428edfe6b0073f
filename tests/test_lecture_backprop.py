"""The lecture's matrix backprop checked three ways, and its measured cost.

Oracles independent of ``chainrule.lecture.backprop``: PyTorch (float64) for every
gradient, a central difference written here on a forward pass written here, FLOP and
byte counts written out from the layer sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from chainrule.lecture import matrix
from chainrule.lecture.backprop import (
    FD_ALL_LIMIT,
    FD_SUBSET,
    Problem,
    check_backprop,
    engine_graph,
    make_problem,
)
from chainrule.lecture.backprop_cost import count_flops, measure_memory
from chainrule.tensor.inspect import saved_bytes

TOL = 1e-8


def torch_gradients(p: Problem) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """ℓ, ∂ℓ/∂Ω_k and ∂ℓ/∂β_k (columns) by PyTorch's autograd, one input per row."""
    ws = [torch.tensor(w, requires_grad=True) for w in p.net.weights]
    bs = [torch.tensor(b.ravel(), requires_grad=True) for b in p.net.biases]
    h = torch.tensor(p.x.T)
    for k, (w, b) in enumerate(zip(ws, bs, strict=True)):
        h = torch.nn.functional.linear(h, w, b)
        if k < len(ws) - 1:
            h = torch.relu(h)
    if p.loss == "least-squares":
        ell = ((h - torch.tensor(p.y.T)) ** 2).sum()
    else:
        ell = torch.nn.functional.cross_entropy(h, torch.tensor(p.y), reduction="sum")
    ell.backward()
    return (
        float(ell.detach()),
        [w.grad.numpy() for w in ws],  # type: ignore[union-attr]
        [b.grad.numpy()[:, None] for b in bs],  # type: ignore[union-attr]
    )


def plain_loss(p: Problem, weights: list[np.ndarray], biases: list[np.ndarray]) -> float:
    """ℓ from a forward pass written here, not the module's (rows are inputs)."""
    h = p.x.T
    for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
        h = h @ w.T + b.ravel()
        if k < len(weights) - 1:
            h = np.where(h > 0, h, 0.0)
    if p.loss == "least-squares":
        return float(((h - p.y.T) ** 2).sum())
    z = h - h.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(p.batch), p.y].sum())


@given(
    layers=st.integers(1, 8),
    width=st.sampled_from([1, 2, 5, 9]),
    inputs=st.integers(1, 3),
    outputs=st.integers(2, 4),
    batch=st.sampled_from([1, 3, 8]),
    seed=st.integers(0, 2**31),
    loss=st.sampled_from(["least-squares", "cross-entropy"]),
)
def test_formulas_engine_and_finite_differences_agree_for_random_networks(
    layers: int, width: int, inputs: int, outputs: int, batch: int, seed: int, loss: str
) -> None:
    p = make_problem(layers, width, inputs, outputs, batch, seed, loss)
    r = check_backprop(p)
    assert r.max_engine_rel <= TOL and r.max_fd_rel <= TOL, (r.max_engine_rel, r.max_fd_rel)
    assert r.loss_rel <= 1e-12
    assert len(r.layers) == layers + 1
    for layer in r.layers:  # small networks: every entry, none lost to a kink
        assert layer.fd_checked == layer.fd_total and layer.fd_kinks == 0

    # Independent oracle: PyTorch, for ℓ and every parameter gradient.
    ell, dw, db = torch_gradients(p)
    assert np.isclose(r.formulas.loss, ell, rtol=1e-12, atol=1e-12)
    for k in range(layers + 1):
        for ours, ref in (
            (r.formulas.grads.weights[k], dw[k]),
            (r.formulas.grads.biases[k], db[k]),
        ):
            assert np.max(np.abs(ours - ref)) <= TOL * r.scale
    # The reported differences are those of the arrays returned (recomputed here).
    engine_abs = max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(
            [*r.engine.f, *r.engine.weights, *r.engine.biases],
            [*r.formulas.grads.f, *r.formulas.grads.weights, *r.formulas.grads.biases],
            strict=True,
        )
    )
    assert engine_abs == max(layer.engine_abs for layer in r.layers)
    for k, layer in enumerate(r.layers):
        assert layer.dl_df_shape == layer.f_shape == (p.net.weights[k].shape[0], batch)
        assert layer.h_shape == (p.net.weights[k].shape[1], batch)
        assert layer.dl_domega_shape == p.net.weights[k].shape


def test_finite_differences_match_a_central_difference_written_here() -> None:
    p = make_problem(layers=3, width=4, inputs=2, outputs=3, batch=5, seed=7, loss="cross-entropy")
    r = check_backprop(p)
    fd_w, fd_b = r.fd[2]
    eps = 1e-6
    for flat, value in list(zip(fd_w.indices, fd_w.values, strict=True))[::5]:
        ws = [w.copy() for w in p.net.weights]
        idx = np.unravel_index(int(flat), ws[2].shape)
        ws[2][idx] += eps
        up = plain_loss(p, ws, p.net.biases)
        ws[2][idx] -= 2 * eps
        down = plain_loss(p, ws, p.net.biases)
        assert abs((up - down) / (2 * eps) - value) <= 1e-7 * r.scale
    assert fd_b.indices.tolist() == list(range(4))


def test_a_wrong_backward_formula_is_caught_by_both_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    right = matrix.backward

    def forgets_the_relu_mask(
        net: matrix.Network, fp: matrix.ForwardPass, dl_df_out: np.ndarray
    ) -> matrix.Gradients:
        no_relu = matrix.ForwardPass([np.abs(f) + 1 for f in fp.f], fp.h)  # 𝕀[f > 0] = 1
        return right(net, no_relu, dl_df_out)

    monkeypatch.setattr(matrix, "backward", forgets_the_relu_mask)
    r = check_backprop(make_problem(layers=3, width=6, batch=4, seed=1))
    assert r.max_engine_rel > 1e-3 and r.max_fd_rel > 1e-3
    assert r.layers[-1].engine_abs <= TOL * r.scale  # no ReLU after the last layer


def test_big_networks_check_a_seeded_random_subset_of_each_parameter() -> None:
    p = make_problem(layers=2, width=50, inputs=3, outputs=2, batch=3, seed=5)
    n_params = sum(w.size + b.size for w, b in zip(p.net.weights, p.net.biases, strict=True))
    assert n_params > FD_ALL_LIMIT
    r = check_backprop(p)
    assert r.max_fd_rel <= TOL
    sizes = [(w.size, b.size) for w, b in zip(p.net.weights, p.net.biases, strict=True)]
    for (fd_w, fd_b), (n_w, n_b) in zip(r.fd, sizes, strict=True):
        for fd, n in ((fd_w, n_w), (fd_b, n_b)):
            assert fd.total == n
            assert fd.indices.size == min(n, FD_SUBSET) and len(set(fd.indices.tolist())) == (
                fd.indices.size
            )
            assert fd.indices.min() >= 0 and fd.indices.max() < n
    again = check_backprop(p)
    assert all(
        np.array_equal(a.indices, b.indices) for pa, pb in zip(r.fd, again.fd, strict=True)
        for a, b in zip(pa, pb, strict=True)
    )  # fmt: skip
    other = check_backprop(make_problem(layers=2, width=50, inputs=3, outputs=2, batch=3, seed=6))
    assert not np.array_equal(r.fd[1][0].indices, other.fd[1][0].indices)


def test_an_entry_at_a_relu_kink_is_left_out_and_counted() -> None:
    p = make_problem(layers=2, width=3, inputs=2, outputs=2, batch=4, seed=3)
    x = np.zeros_like(p.x)  # f_0 = β_0 for every input
    p.net.biases[0][0] = 0.0  # so unit 0 of f_0 sits exactly at ReLU's kink
    r = check_backprop(Problem(p.net, x, p.y, p.loss))
    assert r.layers[0].fd_kinks == 1
    assert 0 not in r.fd[0][1].indices.tolist()  # β_0's entry 0 was left out
    assert sum(layer.fd_kinks for layer in r.layers) == 1
    assert r.max_fd_rel <= TOL


def test_make_problem_rejects_bad_sizes_and_losses() -> None:
    with pytest.raises(ValueError, match="width must be a positive integer"):
        make_problem(width=0)
    with pytest.raises(ValueError, match="loss must be one of"):
        make_problem(loss="hinge")
    with pytest.raises(ValueError, match="at least 2 outputs"):
        make_problem(outputs=1, loss="cross-entropy")


# -- cost -------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["least-squares", "cross-entropy"])
def test_flop_counts_equal_a_count_written_out_by_hand(loss: str) -> None:
    d_in, d, n_layers, d_out, n = 2, 3, 2, 4, 5
    p = make_problem(n_layers, d, d_in, d_out, n, seed=0, loss=loss)
    c = count_flops(p)
    pairs = [(2, 3), (3, 3), (3, 4)]  # (D_k, D_{k+1}) of Ω_0, Ω_1, Ω_2
    # forward: Ω_k h_k, + β_k, ReLU (max) for the 2 hidden layers
    assert c.forward.matmul == sum(2 * a * b * n for a, b in pairs) == 2 * 5 * 27
    assert c.forward.other == (3 + 3 + 4) * n + 2 * 3 * n
    # backward: ∂ℓ/∂Ω_k for k = 0, 1, 2; Ω_kᵀ ∂ℓ/∂f_k for k = 1, 2 only
    assert c.backward.matmul == 2 * n * (6 + 9 + 12) + 2 * n * (9 + 12)
    assert c.backward.matmul_count == 5 and c.forward.matmul_count == 3
    # batch sums for ∂ℓ/∂β_k; f > 0 and the mask multiply for f_1, f_0
    assert c.backward.other == (3 + 3 + 4) * (n - 1) + 2 * (3 * n + 3 * n)
    assert c.skipped_dl_dx == 2 * 2 * 3 * n
    assert (c.backward.matmul + c.skipped_dl_dx) == 2 * c.forward.matmul
    if loss == "least-squares":  # f − y, its square, the sum, 2(f − y)
        assert c.loss.total == 4 * d_out * n - 1
    else:  # max, shift, exp, column sum, log, log p, the label sum, softmax, − onehot
        cells = d_out * n
        assert (
            c.loss.total
            == (cells - n) + cells + cells + (cells - n) + n + cells + (n - 1) + cells + n
        )
    assert c.loss.matmul == 0


def test_flop_ratio_tends_to_two_as_the_first_layer_gets_relatively_cheaper() -> None:
    ratios = [count_flops(make_problem(layers=k, width=8)).matmul_ratio for k in (1, 4, 16)]
    assert ratios == sorted(ratios) and all(1.5 <= r < 2.0 for r in ratios)
    # one input, one layer: forward 2(8·1 + 1·8), backward 2(8 + 8) + 2·8 (Ω_1ᵀ ∂ℓ/∂f_1)
    assert ratios[0] == (2 * 16 + 16) / (2 * 16)


@pytest.mark.parametrize(
    ("loss", "outputs", "f_kept", "extra_elements"),
    # least squares keeps f_K - y (read by its square), no f_k; a cross-entropy reads its
    # logits f_K and keeps its softmax (3 per row) and the target positions (int64: 1)
    [("least-squares", 3, 0, lambda n: 3 * n), ("cross-entropy", 3, 1, lambda n: 3 * n + n)],
)
def test_engine_keeps_the_h_k_and_the_f_k_a_rule_reads_plus_the_loss_arrays(
    loss: str, outputs: int, f_kept: int, extra_elements: object
) -> None:
    d_in, d, n_layers, n = 2, 5, 4, 6
    p = make_problem(n_layers, d, d_in, outputs, n, seed=2, loss=loss)
    m = measure_memory(p)
    predicted = 8 * n * ((n_layers * d + outputs) + n_layers * d)  # f_0..f_K, h_1..h_K
    assert m.predicted_bytes == predicted and m.predicted_arrays == 2 * n_layers + 1
    h_bytes = 8 * n * n_layers * d  # h_1..h_K: ReLU's rule reads its mask from them
    assert sum(s.nbytes for s in m.kept_h) == h_bytes and len(m.kept_h) == n_layers
    assert sum(s.nbytes for s in m.kept_f) == 8 * n * outputs * f_kept
    assert len(m.kept_f) == f_kept
    assert m.activation_bytes == h_bytes + 8 * n * outputs * f_kept < predicted
    extra = 8 * extra_elements(n)  # type: ignore[operator]
    assert m.extra_bytes == extra
    engine = m.activation_bytes + extra
    assert m.engine_bytes == engine == saved_bytes(engine_graph(p).loss)
    # leaves: x and every Ω_k (read by linear's rules); no rule reads β_k or y (only shapes)
    weights = sum(w.nbytes for w in p.net.weights)
    assert sum(s.nbytes for s in m.leaves) == weights + p.x.nbytes
