"""Weight initialisation: He (Kaiming) and Glorot (Xavier), uniform and normal.

Why the variances are what they are. A layer ``f = Ω h`` with ``fan_in`` inputs and weights
of variance σ² gives pre-activations of variance ``fan_in · σ² · E[h²]``. Through a ReLU,
``E[h²]`` is half the variance of the pre-activation before it (the negative half is cut
away). So the variance stays the same from layer to layer when

- He / Kaiming (for ReLU):      ``σ² = 2 / fan_in``;
- Glorot / Xavier (for tanh, sigmoid, linear): ``σ² = 2 / (fan_in + fan_out)``, the
  compromise between keeping the forward activations (``1/fan_in``) and the backward
  gradients (``1/fan_out``) at a constant variance.

A uniform distribution on ``[-a, a]`` has variance ``a²/3``, so the uniform forms use
``a = √3 · σ``. Every function fills a tensor in place (its identity is kept) and returns
it; the random numbers come from ``rng`` (a NumPy Generator or an int seed) or the default
generator of ``chainrule.nn.rng``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from chainrule.nn.rng import RNG, as_generator
from chainrule.tensor.primitive import mark_modified
from chainrule.tensor.tensor import Tensor

Mode = Literal["fan_in", "fan_out"]

_GAINS = {"linear": 1.0, "identity": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2)}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor by which a nonlinearity's variance loss is undone (PyTorch's values).

    ``relu``: √2 (half the variance is cut away); ``leaky_relu`` with slope a:
    √(2/(1 + a²)); ``tanh``: 5/3; ``linear``, ``identity``, ``sigmoid``: 1.
    """
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity not in _GAINS:
        raise ValueError(
            f"calculate_gain: unknown nonlinearity {nonlinearity!r}; use one of "
            f"{sorted([*_GAINS, 'leaky_relu'])}."
        )
    return _GAINS[nonlinearity]


def fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(inputs, outputs) of a weight of shape ``(out, in, *kernel)``: ``(in·k, out·k)``."""
    if tensor.ndim < 2:
        raise ValueError(
            f"init: fan in and fan out need a weight with at least 2 axes (out, in); got "
            f"shape {tensor.shape}. Biases are usually set with zeros_() or uniform_()."
        )
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fill(tensor: Tensor, values: np.ndarray) -> Tensor:
    # Write into the existing array: the Parameter (and any optimiser holding it) is kept.
    # The version bump marks graphs recorded with the old values as stale.
    np.copyto(tensor._data, values, casting="same_kind")
    mark_modified(tensor)
    return tensor


def _check_mode(mode: str) -> None:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode must be 'fan_in' or 'fan_out', got {mode!r}.")


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, rng: RNG = None) -> Tensor:
    """Fill with draws from U(a, b)."""
    if not a <= b:
        raise ValueError(f"uniform_: need a <= b, got a={a}, b={b}.")
    return _fill(tensor, as_generator(rng).uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, rng: RNG = None) -> Tensor:
    """Fill with draws from N(mean, std²)."""
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}.")
    return _fill(tensor, as_generator(rng).normal(mean, std, size=tensor.shape))


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0 (the usual bias initialisation)."""
    return _fill(tensor, np.zeros(tensor.shape))


def ones_(tensor: Tensor) -> Tensor:
    return _fill(tensor, np.ones(tensor.shape))


def constant_(tensor: Tensor, value: float) -> Tensor:
    return _fill(tensor, np.full(tensor.shape, value))


def kaiming_std(
    tensor: Tensor, a: float = 0.0, mode: Mode = "fan_in", nonlinearity: str = "leaky_relu"
) -> float:
    """He's standard deviation ``gain / √fan``; ``gain = √2`` for ReLU: σ² = 2/fan_in."""
    _check_mode(mode)
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: Mode = "fan_in",
    nonlinearity: str = "leaky_relu",
    rng: RNG = None,
) -> Tensor:
    """He normal: N(0, σ²) with σ² = gain² / fan (= 2/fan_in for ReLU, the default a=0).

    ``a`` is the negative slope of a leaky ReLU (a = 0: the ReLU); ``mode='fan_out'`` keeps
    the variance of the gradients in the backward pass instead.
    """
    return normal_(tensor, 0.0, kaiming_std(tensor, a, mode, nonlinearity), rng)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: Mode = "fan_in",
    nonlinearity: str = "leaky_relu",
    rng: RNG = None,
) -> Tensor:
    """He uniform: U(-b, b) with b = √3 · gain / √fan (variance 2/fan_in for ReLU)."""
    bound = math.sqrt(3.0) * kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, rng)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, rng: RNG = None) -> Tensor:
    """Glorot normal: N(0, σ²) with σ² = gain² · 2 / (fan_in + fan_out)."""
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, rng: RNG = None) -> Tensor:
    """Glorot uniform: U(-b, b) with b = gain · √(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, rng)


# The textbook's names for the same rules.
he_normal_ = kaiming_normal_
he_uniform_ = kaiming_uniform_
glorot_normal_ = xavier_normal_
glorot_uniform_ = xavier_uniform_
