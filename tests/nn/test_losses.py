"""Losses against PyTorch (each reduction, values and gradients), BCE at extreme logits
against exact arithmetic, and the hinge loss against micrograd's demo."""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import pytest
import torch
from micrograd.engine import Value as MgValue

from chainrule import Tensor, nn

REDUCTIONS = ["mean", "sum", "none"]
rng = np.random.default_rng(0)
X = rng.standard_normal((6, 4))
REGRESSION_TARGET = rng.standard_normal((6, 4))
CLASSES = rng.integers(0, 4, 6)
PROBABILITIES = rng.uniform(0, 1, (6, 4))


def _run_ours(loss: nn.Module, x: np.ndarray, target: Any) -> tuple[np.ndarray, np.ndarray]:
    xt = Tensor(x, requires_grad=True)
    out = loss(xt, target)
    g = np.random.default_rng(1).standard_normal(out.shape)  # a generic upstream gradient
    out.backward(g)
    assert xt.grad is not None
    return out.numpy(), xt.grad.numpy()


def _run_torch(loss: torch.nn.Module, x: np.ndarray, target: Any) -> tuple[np.ndarray, np.ndarray]:
    xt = torch.tensor(x, requires_grad=True)
    out = loss(xt, torch.tensor(target))
    g = np.random.default_rng(1).standard_normal(tuple(out.shape))
    out.backward(torch.tensor(g))
    assert xt.grad is not None
    return out.detach().numpy(), xt.grad.numpy()


CASES = [
    ("MSELoss", REGRESSION_TARGET),
    ("CrossEntropyLoss", CLASSES),
    ("BCEWithLogitsLoss", PROBABILITIES),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("name", "target"), CASES, ids=[c[0] for c in CASES])
def test_loss_values_and_gradients_match_pytorch(name: str, target: Any, reduction: str) -> None:
    value, grad = _run_ours(getattr(nn, name)(reduction=reduction), X, target)
    t_value, t_grad = _run_torch(getattr(torch.nn, name)(reduction=reduction), X, target)
    assert value.shape == t_value.shape
    np.testing.assert_allclose(value, t_value, rtol=1e-13)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-12, atol=1e-15)


def _bce_exact(z: float, y: float) -> float:
    # -[y log σ(z) + (1 - y) log(1 - σ(z))] with 600 digits (e^-1000 ≈ 1e-434 must survive
    # 1 + e^-1000), using log σ(z) = -log(1 + e^-z) and log(1 - σ(z)) = -log(1 + e^z).
    mpmath.mp.dps = 600
    v = mpmath.mpf(z)
    return float(y * mpmath.log(1 + mpmath.exp(-v)) + (1 - y) * mpmath.log(1 + mpmath.exp(v)))


def test_bce_with_logits_is_exact_at_extreme_logits() -> None:
    z = np.array([-1000.0, -100.0, -40.0, -5.0, 0.0, 5.0, 40.0, 100.0, 1000.0] * 3)
    y = np.repeat([0.0, 1.0, 0.3], 9)
    zt = Tensor(z, requires_grad=True)
    loss = nn.BCEWithLogitsLoss(reduction="none")(zt, y)
    loss.sum().backward()
    values = loss.numpy()
    assert np.isfinite(values).all()
    np.testing.assert_allclose(
        values, [_bce_exact(a, b) for a, b in zip(z, y, strict=True)], rtol=1e-14, atol=0
    )
    # ∂ℓ/∂z = σ(z) - y: exactly -1, 0 or 1 - y at saturation, never nan.
    mpmath.mp.dps = 50
    sigma = np.array([float(1 / (1 + mpmath.exp(-mpmath.mpf(v)))) for v in z])
    assert zt.grad is not None
    grad = zt.grad.numpy()
    # For y = 0 the gradient is σ(z) itself (down to 4e-18 at z = -40): relative accuracy.
    np.testing.assert_allclose(grad[:9], sigma[:9], rtol=1e-14, atol=0)
    # Otherwise σ(z) - y is a difference: accurate to an ulp of 1 (2.2e-16).
    np.testing.assert_allclose(grad, sigma - y, rtol=1e-14, atol=2.3e-16)
    # PyTorch agrees to its own rounding (it loses the tiny losses, e.g. 4e-18 at z = -40).
    t_values = torch.nn.BCEWithLogitsLoss(reduction="none")(torch.tensor(z), torch.tensor(y))
    np.testing.assert_allclose(values, t_values.numpy(), rtol=1e-13, atol=1e-13)


def test_bce_target_gradient_matches_pytorch() -> None:
    zt, yt = Tensor(X, requires_grad=True), Tensor(PROBABILITIES, requires_grad=True)
    nn.BCEWithLogitsLoss()(zt, yt).backward()
    tz = torch.tensor(X, requires_grad=True)
    ty = torch.tensor(PROBABILITIES, requires_grad=True)
    torch.nn.BCEWithLogitsLoss()(tz, ty).backward()
    assert yt.grad is not None and ty.grad is not None
    np.testing.assert_allclose(yt.grad.numpy(), ty.grad.numpy(), rtol=1e-13)


def test_hinge_loss_is_micrograds_max_margin_loss() -> None:
    scores = np.random.default_rng(2).standard_normal(20)
    labels = np.where(np.random.default_rng(3).random(20) > 0.5, 1, -1)
    # micrograd's demo: losses = [(1 + -yi*scorei).relu() ...]; sum(losses) * (1/len)
    mg_scores = [MgValue(float(s)) for s in scores]
    mg_losses = [(1 + -int(yi) * si).relu() for yi, si in zip(labels, mg_scores, strict=True)]
    mg_loss = sum(mg_losses) * (1.0 / len(mg_losses))
    mg_loss.backward()

    st = Tensor(scores.reshape(20, 1), requires_grad=True)  # a one-output network's scores
    loss = nn.HingeLoss()(st, labels)
    loss.backward()
    assert st.grad is not None
    np.testing.assert_allclose(loss.item(), mg_loss.data, rtol=1e-14)
    np.testing.assert_allclose(st.grad.numpy().ravel(), [s.grad for s in mg_scores], rtol=1e-14)

    per = nn.HingeLoss(margin=0.5, reduction="none")(Tensor(scores), labels).numpy()
    np.testing.assert_allclose(per, np.maximum(0.5 - labels * scores, 0), rtol=1e-15)
    total = nn.HingeLoss(reduction="sum")(Tensor(scores), labels).item()
    np.testing.assert_allclose(total, np.maximum(1 - labels * scores, 0).sum(), rtol=1e-14)


def test_loss_errors_name_the_problem_and_the_fix() -> None:
    with pytest.raises(ValueError, match=r"labels must be -1 or \+1.*2 \* y - 1"):
        nn.HingeLoss()(Tensor(np.zeros(3)), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match=r"mse_loss: input has shape \(4, 1\) and target \(4,\)"):
        nn.MSELoss()(Tensor(np.zeros((4, 1))), np.zeros(4))
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none'"):
        nn.CrossEntropyLoss(reduction="average")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="binary_cross_entropy_with_logits: input has shape"):
        nn.BCEWithLogitsLoss()(Tensor(np.zeros(3)), np.zeros(4))


def test_float32_losses_stay_float32() -> None:
    x = Tensor(X.astype(np.float32), requires_grad=True)
    assert nn.HingeLoss()(x[:, 0], np.ones(6, dtype=np.int64)).dtype == np.float32
    assert nn.MSELoss()(x, REGRESSION_TARGET.astype(np.float32)).dtype == np.float32
    assert nn.CrossEntropyLoss()(x, CLASSES).dtype == np.float32
