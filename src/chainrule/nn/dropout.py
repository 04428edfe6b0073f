"""``Dropout``: inverted dropout, the identity in evaluation mode."""

from __future__ import annotations

from typing import Any

from chainrule.nn import functional as F
from chainrule.nn.module import Module
from chainrule.nn.rng import RNG, Generator, as_generator


class Dropout(Module):
    """Zero each element with probability ``p`` while training; scale the rest by 1/(1-p).

    Because of the scaling, the expected output equals the input, so ``eval()`` mode can
    pass the input through unchanged.

    Args:
        p: probability of zeroing an element, in [0, 1].
        rng: a NumPy Generator or an int seed for the masks (this layer's own stream);
            None draws from ``chainrule.nn``'s default generator (``nn.manual_seed``).
    """

    def __init__(self, p: float = 0.5, rng: RNG = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p is a probability and must lie in [0, 1], got {p}.")
        self.p = float(p)
        self._rng: Generator | None = None if rng is None else as_generator(rng)

    def forward(self, x: Any) -> Any:
        return F.dropout(x, self.p, self.training, self._rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"
