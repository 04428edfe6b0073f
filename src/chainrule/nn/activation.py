"""Activation functions as modules, so that they can sit in a ``Sequential``."""

from __future__ import annotations

from typing import Any, Literal

from chainrule.nn import functional as F
from chainrule.nn.module import Module


class ReLU(Module):
    """``max(x, 0)``;  d/dx = 𝕀[x > 0] (0 at x = 0, PyTorch's choice)."""

    def forward(self, x: Any) -> Any:
        return F.relu(x)


class LeakyReLU(Module):
    """``x`` for x > 0, else ``negative_slope · x``;  d/dx = 1 or negative_slope."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = float(negative_slope)

    def forward(self, x: Any) -> Any:
        return F.leaky_relu(x, negative_slope=self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    """``tanh x``;  d/dx = 1 - tanh² x."""

    def forward(self, x: Any) -> Any:
        return F.tanh(x)


class Sigmoid(Module):
    """``σ(x) = 1 / (1 + e^-x)``;  σ' = σ(1 - σ)."""

    def forward(self, x: Any) -> Any:
        return F.sigmoid(x)


class GELU(Module):
    """``x Φ(x)``, Φ the standard normal CDF;  d/dx = Φ(x) + x φ(x).

    ``approximate='tanh'`` uses ``x/2 · (1 + tanh(√(2/π)(x + 0.044715 x³)))`` instead.
    """

    def __init__(self, approximate: Literal["none", "tanh"] = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}.")
        self.approximate: Literal["none", "tanh"] = approximate

    def forward(self, x: Any) -> Any:
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Identity(Module):
    """Returns its input (a placeholder, e.g. for 'no activation')."""

    def forward(self, x: Any) -> Any:
        return x


class Softmax(Module):
    """``e^x / Σ e^x`` along ``dim``, computed stably."""

    def __init__(self, dim: int = -1) -> None:
        self.dim = dim

    def forward(self, x: Any) -> Any:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """``x - logsumexp(x)`` along ``dim``, computed stably (pairs with ``NLLLoss``)."""

    def forward(self, x: Any) -> Any:
        return F.log_softmax(x, self.dim)


class Flatten(Module):
    """Merge axes ``start_dim..end_dim`` (by default all but the batch axis) into one."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Any) -> Any:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


ACTIVATIONS: dict[str, type[Module]] = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "gelu": GELU,
    "identity": Identity,
}
