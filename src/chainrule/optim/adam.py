"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.optim.arrays import ufuncs
from chainrule.optim.optimizer import Optimizer, ParamGroup, Params, _require


class Adam(Optimizer):
    """Adam with PyTorch's update rule, in place on the parameters' arrays.

    For each step t, with gradient g (β₁, β₂ = betas)::

        g ← g + λ θ                                (Adam: weight decay as an L2 penalty)
        θ ← θ (1 - lr λ)                           (AdamW: decoupled weight decay instead)
        m ← β₁ m + (1 - β₁) g                      (first moment)
        v ← β₂ v + (1 - β₂) g²                     (second moment; amsgrad: v̂ = max v)
        θ ← θ - lr / (1 - β₁ᵗ) · m / (√v / √(1 - β₂ᵗ) + ε)

    Dividing by 1 - βᵗ removes the bias of m and v toward their zero start.

    Args:
        params: ``model.parameters()`` or a list of parameter groups (dicts).
        lr: learning rate, > 0.
        betas: (β₁, β₂), each in [0, 1).
        eps: ε >= 0, keeps the division finite.
        weight_decay: λ >= 0.
        amsgrad: divide by the largest second moment seen so far.
    """

    _decoupled = False

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
        }
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: ParamGroup) -> None:
        super()._check_hyperparameters(group)
        name = type(self).__name__
        betas = group["betas"]
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}.")
        for i, beta in enumerate(betas):
            _require(name, f"betas[{i}]", beta, lambda v: 0 <= v < 1, "in [0, 1)")
        _require(name, "eps", group["eps"], lambda v: v >= 0, ">= 0")
        _require(name, "weight_decay", group["weight_decay"], lambda v: v >= 0, ">= 0")

    def _update(
        self,
        p: np.ndarray,
        grad: np.ndarray,
        state: dict[str, Any],
        group: ParamGroup,
        tmp: list[np.ndarray],
    ) -> None:
        xp = np if type(p) is np.ndarray else ufuncs(p)  # (NumPy first: no call)
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        a, b = tmp
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p)
            state["exp_avg_sq"] = xp.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        g = grad  # never written: .grad belongs to the user
        if wd != 0:
            if self._decoupled:
                p *= 1 - lr * wd
            else:
                xp.multiply(p, wd, out=a)
                a += g
                g = a
        xp.subtract(g, m, out=b)  # m ← m + (1 - β₁)(g - m), PyTorch's lerp
        b *= 1 - beta1
        m += b
        v *= beta2
        xp.multiply(g, g, out=b)
        b *= 1 - beta2
        v += b
        if group["amsgrad"]:
            xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        step_size = lr / (1 - beta1**t)
        xp.sqrt(v, out=b)  # the denominator √v / √(1 - β₂ᵗ) + ε, built in b
        b /= math.sqrt(1 - beta2**t)
        b += eps
        xp.divide(m, b, out=b)
        b *= -step_size
        p += b


class AdamW(Adam):
    """Adam with decoupled weight decay: ``θ ← θ (1 - lr λ)`` before the Adam step.

    Unlike Adam's L2 penalty, the decay is not divided by √v, so every weight shrinks at
    the same rate (Loshchilov and Hutter). Default weight_decay 0.01, as in PyTorch.
    """

    _decoupled = True

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
