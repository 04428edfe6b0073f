"""RMSprop and Adagrad: steps divided by a running size of each parameter's gradients."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.optim.arrays import ufuncs
from chainrule.optim.optimizer import Optimizer, ParamGroup, Params, _require


def _decayed(p: np.ndarray, grad: np.ndarray, wd: float, a: np.ndarray) -> np.ndarray:
    """g + λ θ (an L2 penalty) in the scratch array ``a``, or g itself (never written)."""
    xp = np if type(p) is np.ndarray else ufuncs(p)
    if wd == 0:
        return grad
    xp.multiply(p, wd, out=a)
    a += grad
    return a


class RMSprop(Optimizer):
    """RMSprop with PyTorch's update rule, in place on the parameters' arrays.

    For each step, with gradient g::

        g ← g + λ θ                                 (weight_decay λ)
        v ← α v + (1 - α) g²                        (running mean of g², smoothing α)
        d ← √v + ε    or, centered:  m ← α m + (1 - α) g,  d ← √(v - m²) + ε
        b ← μ b + g / d,  θ ← θ - lr b              (momentum μ > 0)
        θ ← θ - lr g / d                            (otherwise)

    Args:
        params: ``model.parameters()`` or a list of parameter groups (dicts).
        lr: learning rate, > 0 (0.01 by default, as PyTorch).
        alpha: smoothing α in [0, 1].
        eps: ε >= 0.
        weight_decay: λ >= 0.
        momentum: μ >= 0.
        centered: divide by the gradient's running standard deviation instead.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "centered": centered,
        }
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: ParamGroup) -> None:
        super()._check_hyperparameters(group)
        _require("RMSprop", "alpha", group["alpha"], lambda v: 0 <= v <= 1, "in [0, 1]")
        _require("RMSprop", "eps", group["eps"], lambda v: v >= 0, ">= 0")
        _require("RMSprop", "weight_decay", group["weight_decay"], lambda v: v >= 0, ">= 0")
        _require("RMSprop", "momentum", group["momentum"], lambda v: v >= 0, ">= 0")

    def _update(
        self,
        p: np.ndarray,
        grad: np.ndarray,
        state: dict[str, Any],
        group: ParamGroup,
        tmp: list[np.ndarray],
    ) -> None:
        xp = np if type(p) is np.ndarray else ufuncs(p)  # (NumPy first: no call)
        alpha, eps, mu = group["alpha"], group["eps"], group["momentum"]
        g = _decayed(p, grad, group["weight_decay"], tmp[0])
        if "square_avg" not in state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(p)
            if mu > 0:
                state["momentum_buffer"] = xp.zeros_like(p)
        state["step"] += 1
        v = state["square_avg"]
        d = tmp[1]
        v *= alpha
        xp.multiply(g, g, out=d)
        d *= 1 - alpha
        v += d
        if group["centered"]:
            m = state["grad_avg"]
            m *= alpha
            m += (1 - alpha) * g
            xp.multiply(m, m, out=d)
            xp.subtract(v, d, out=d)
            xp.sqrt(d, out=d)
        else:
            xp.sqrt(v, out=d)
        d += eps
        xp.divide(g, d, out=d)  # g / (√v + ε)
        if mu > 0:
            buf = state["momentum_buffer"]
            buf *= mu
            buf += d
            d = buf
        p -= group["lr"] * d


class Adagrad(Optimizer):
    """Adagrad with PyTorch's update rule, in place on the parameters' arrays.

    For each step t, with gradient g::

        g ← g + λ θ                                 (weight_decay λ)
        s ← s + g²                                  (sum of squares, from initial_accumulator_value)
        θ ← θ - lr / (1 + (t - 1) · lr_decay) · g / (√s + ε)

    Args:
        params: ``model.parameters()`` or a list of parameter groups (dicts).
        lr: learning rate, > 0 (0.01 by default, as PyTorch).
        lr_decay: >= 0.
        weight_decay: λ >= 0.
        initial_accumulator_value: the start of s, >= 0.
        eps: ε >= 0 (1e-10 by default, as PyTorch).
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "eps": eps,
        }
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: ParamGroup) -> None:
        super()._check_hyperparameters(group)
        for key in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            _require("Adagrad", key, group[key], lambda v: v >= 0, ">= 0")

    def _update(
        self,
        p: np.ndarray,
        grad: np.ndarray,
        state: dict[str, Any],
        group: ParamGroup,
        tmp: list[np.ndarray],
    ) -> None:
        xp = np if type(p) is np.ndarray else ufuncs(p)  # (NumPy first: no call)
        g = _decayed(p, grad, group["weight_decay"], tmp[0])
        if "sum" not in state:
            state["step"] = 0
            state["sum"] = xp.full_like(p, group["initial_accumulator_value"])
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        s, d = state["sum"], tmp[1]
        xp.multiply(g, g, out=d)
        s += d
        xp.sqrt(s, out=d)
        d += group["eps"]
        xp.divide(g, d, out=d)
        d *= clr
        p -= d
