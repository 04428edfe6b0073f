"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.optim.arrays import descend, ufuncs
from chainrule.optim.optimizer import Optimizer, ParamGroup, Params, _require


class SGD(Optimizer):
    """SGD with PyTorch's update rule, in place on the parameters' arrays.

    With gradient ``g``, for each step t::

        g ← g + λ θ                                   (weight_decay λ, an L2 penalty)
        b ← g                  if t = 1               (momentum buffer, momentum μ)
        b ← μ b + (1 - τ) g    otherwise              (dampening τ)
        g ← g + μ b  (nesterov)   or   g ← b
        θ ← θ - lr · g

    Args:
        params: ``model.parameters()`` or a list of parameter groups (dicts).
        lr: learning rate, > 0.
        momentum: μ >= 0 (0: plain gradient descent).
        dampening: τ in [0, 1], scales the new gradient added to the buffer.
        weight_decay: λ >= 0.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening 0).

    Example:
        >>> import numpy as np
        >>> from chainrule import nn, optim
        >>> w = nn.Parameter(np.array([1.0, -2.0]))
        >>> opt = optim.SGD([w], lr=0.1)
        >>> (w * w).sum().backward()         # ∂/∂w Σ w² = 2w
        >>> opt.step()                       # w - 0.1 · 2w = 0.8 w
        >>> w.numpy().tolist()
        [0.8, -1.6]
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
        }
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: ParamGroup) -> None:
        super()._check_hyperparameters(group)
        _require("SGD", "momentum", group["momentum"], lambda v: v >= 0, ">= 0")
        _require("SGD", "dampening", group["dampening"], lambda v: 0 <= v <= 1, "in [0, 1]")
        _require("SGD", "weight_decay", group["weight_decay"], lambda v: v >= 0, ">= 0")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"SGD: nesterov=True needs momentum > 0 and dampening = 0, got momentum="
                f"{group['momentum']}, dampening={group['dampening']}."
            )

    def _scratch_needed(self, group: ParamGroup) -> int:
        # Plain SGD (and momentum without dampening) needs one; the second is for the
        # dampened or Nesterov momentum terms.
        return 2 if group["nesterov"] or group["dampening"] != 0 else 1

    def _update(
        self,
        p: np.ndarray,
        grad: np.ndarray,
        state: dict[str, Any],
        group: ParamGroup,
        tmp: list[np.ndarray],
    ) -> None:
        xp = np if type(p) is np.ndarray else ufuncs(p)  # (NumPy first: no call)
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        a = tmp[0]
        d = grad  # never written: .grad belongs to the user
        if wd != 0:
            xp.multiply(p, wd, out=a)
            a += d
            d = a
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = xp.copy(d)
            else:
                buf *= mu
                if group["dampening"] == 0:
                    buf += d
                else:
                    b = tmp[1]
                    xp.multiply(d, 1 - group["dampening"], out=b)
                    buf += b
            if group["nesterov"]:
                b = tmp[1]
                xp.multiply(buf, mu, out=b)
                b += d
                d = b
            else:
                d = buf
        descend(xp, p, d, lr, a)  # p -= lr * d through a (a may be d itself)
