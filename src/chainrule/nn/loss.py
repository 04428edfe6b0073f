"""Losses as modules: ``loss_fn = nn.CrossEntropyLoss(); loss = loss_fn(logits, targets)``.

Each takes ``reduction``: 'mean' (default) averages the per-element losses, 'sum' adds
them, 'none' returns them all.
"""

from __future__ import annotations

from typing import Any

from chainrule.nn import functional as F
from chainrule.nn.module import Module

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction: F.Reduction = "mean") -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got "
                f"{reduction!r}."
            )
        self.reduction: F.Reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Squared error ``(x - y)²``; input and target must have the same shape."""

    def forward(self, input: Any, target: Any) -> Any:
        return F.mse_loss(input, target, self.reduction)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy from logits (batch, classes) and class indices (batch,).

    ``ℓ_i = logsumexp(z_i) - z_i[t_i]``;  ``∂ℓ_i/∂z_i = softmax(z_i) - onehot(t_i)``.
    """

    def forward(self, input: Any, target: Any) -> Any:
        return F.cross_entropy(input, target, self.reduction)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (e.g. ``LogSoftmax``'s output):
    ``ℓ_i = -input[i, t_i]``; ``NLLLoss()(LogSoftmax(1)(z), t)`` is ``CrossEntropyLoss``."""

    def forward(self, input: Any, target: Any) -> Any:
        return F.nll_loss(input, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of σ(z) against y in [0, 1], stable for any logit z.

    ``ℓ = softplus(z) - y z``;  ``∂ℓ/∂z = σ(z) - y``.
    """

    def forward(self, input: Any, target: Any) -> Any:
        return F.binary_cross_entropy_with_logits(input, target, self.reduction)


class HingeLoss(_Loss):
    """The max-margin loss of micrograd's demo: ``relu(margin - y · score)``, y = ±1.

    ``nn.HingeLoss()(model(X), y)`` is micrograd's ``mean((1 - y_i · score_i).relu())``.
    """

    def __init__(self, margin: float = 1.0, reduction: F.Reduction = "mean") -> None:
        super().__init__(reduction)
        self.margin = float(margin)

    def forward(self, input: Any, target: Any) -> Any:
        return F.hinge_loss(input, target, self.margin, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"
