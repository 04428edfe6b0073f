"""Learning-rate schedules: ``StepLR``, ``LinearLR`` (linear decay), ``CosineAnnealingLR``.

Call ``scheduler.step()`` once per epoch (or per iteration), after ``optimizer.step()``.
Each schedule is a closed formula of the step count t, applied to every group's initial
learning rate ``lr₀``; ``get_last_lr()`` gives the rates in use.

Example:
    >>> import numpy as np
    >>> from chainrule import nn, optim
    >>> opt = optim.SGD([nn.Parameter(np.zeros(2))], lr=1.0)
    >>> sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    >>> rates = []
    >>> for epoch in range(5):
    ...     rates.append(sched.get_last_lr()[0])
    ...     opt.step()
    ...     sched.step()
    >>> rates
    [1.0, 1.0, 0.5, 0.5, 0.25]
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

from chainrule.optim.optimizer import Optimizer


class LRScheduler(ABC):
    """Base class: sets ``group['lr'] = get_lr()`` for every group at each ``step()``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__}: expected an optimiser (e.g. optim.SGD), got "
                f"{type(optimizer).__name__}."
            )
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs: list[float] = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._last_lr: list[float] = []
        self.step()

    def get_lr(self) -> list[float]:
        """The learning rate of each group at step ``self.last_epoch``."""
        return [self._factor(self.last_epoch, lr0) for lr0 in self.base_lrs]

    @abstractmethod
    def _factor(self, t: int, lr0: float) -> float:
        """The learning rate at step t for a group that started at lr0."""

    def step(self) -> None:
        """Advance the schedule by one and set the optimiser's learning rates."""
        self.last_epoch += 1
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr, strict=True):
            group["lr"] = lr

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last ``step()`` (one per parameter group)."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimiser (save the optimiser's own state_dict with it)."""
        return {k: v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        vars(self).update(state_dict)


def _check(op: str, name: str, ok: bool, value: Any, rule: str) -> None:
    if not ok:
        raise ValueError(f"{op}: {name} must be {rule}, got {value!r}.")


class StepLR(LRScheduler):
    """``lr = lr₀ · γ^⌊t / step_size⌋``: multiply by γ every ``step_size`` steps."""

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        _check(
            "StepLR",
            "step_size",
            isinstance(step_size, int) and step_size > 0,
            step_size,
            "a positive int",
        )
        _check("StepLR", "gamma", gamma > 0, gamma, "> 0")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def _factor(self, t: int, lr0: float) -> float:
        return lr0 * self.gamma ** (t // self.step_size)


class LinearLR(LRScheduler):
    """Linear change of the factor from ``start_factor`` to ``end_factor`` in ``total_iters``.

    ``lr = lr₀ · (s + (e - s) · min(t, T) / T)``. For a linear decay to zero over T steps:
    ``LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=T)``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        _check("LinearLR", "start_factor", 0 < start_factor <= 1, start_factor, "in (0, 1]")
        _check("LinearLR", "end_factor", 0 <= end_factor <= 1, end_factor, "in [0, 1]")
        _check(
            "LinearLR",
            "total_iters",
            isinstance(total_iters, int) and total_iters > 0,
            total_iters,
            "a positive int",
        )
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _factor(self, t: int, lr0: float) -> float:
        s, e = self.start_factor, self.end_factor
        return lr0 * (s + (e - s) * min(t, self.total_iters) / self.total_iters)


class CosineAnnealingLR(LRScheduler):
    """``lr = η_min + (lr₀ - η_min) · (1 + cos(π t / T_max)) / 2``: half a cosine to η_min."""

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        _check(
            "CosineAnnealingLR",
            "T_max",
            isinstance(T_max, int) and T_max > 0,
            T_max,
            "a positive int",
        )
        _check("CosineAnnealingLR", "eta_min", eta_min >= 0, eta_min, ">= 0")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def _factor(self, t: int, lr0: float) -> float:
        return self.eta_min + (lr0 - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2
