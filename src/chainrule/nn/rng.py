"""The random numbers of ``chainrule.nn``: weight initialisation and dropout masks.

Every random draw comes from a NumPy ``Generator``. Pass ``rng=`` (a Generator or an int
seed) to a layer or an init function for a draw of its own; without it, the package's
default generator is used, which ``manual_seed(seed)`` resets, as ``torch.manual_seed``
does::

    chainrule.nn.manual_seed(0)
    model = chainrule.nn.MLP(2, [16, 16], 1)   # the same weights on every run
"""

from __future__ import annotations

from typing import Any

import numpy as np

RNG = np.random.Generator | int | None

_default = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Reset the default generator to ``seed`` (as ``torch.manual_seed`` does)."""
    global _default
    _default = np.random.default_rng(seed)


def get_rng_state() -> dict[str, Any]:
    """The default generator's state (as ``torch.get_rng_state``); ``set_rng_state`` it back."""
    return dict(_default.bit_generator.state)


def set_rng_state(state: dict[str, Any]) -> None:
    """Put the default generator back to a state ``get_rng_state`` returned."""
    _default.bit_generator.state = state


def default_generator() -> np.random.Generator:
    """The generator used when no ``rng`` is given."""
    return _default


def as_generator(rng: RNG) -> np.random.Generator:
    """A Generator from ``rng``: itself, a new one seeded with an int, or the default."""
    if rng is None:
        return _default
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"rng: expected a numpy.random.Generator, an int seed or None, got "
        f"{type(rng).__name__}; e.g. rng=np.random.default_rng(0) or rng=0."
    )
