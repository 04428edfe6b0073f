"""``Optimizer``: what SGD, Adam and AdamW share (parameter groups, state, saving).

An optimiser holds the model's Parameters themselves and changes their arrays in place,
so ``model.weight is optimizer.param_groups[0]['params'][0]`` before and after a step.
Each update bumps the parameter's version counter: a graph recorded before the step and
run backward after it raises an error instead of giving gradients for the old values.

Updates run on the NumPy arrays with ``out=`` and per-parameter scratch buffers that are
allocated once: a step records nothing (no graph) and allocates nothing after the first.
On a GPU they run on its arrays (``chainrule.optim.arrays``); the state follows the
parameters: after ``model.to(device)`` the next step moves each parameter's state (the
momentum, Adam's averages) to the parameter's device first.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from chainrule.optim.arrays import ufuncs
from chainrule.tensor import grad_mode
from chainrule.tensor.device import device_of, host_dtype, move, to_host
from chainrule.tensor.primitive import mark_modified
from chainrule.tensor.tensor import Tensor

ParamGroup = dict[str, Any]
Params = Iterable[Tensor] | Iterable[ParamGroup]


class Optimizer(ABC):
    """Base class: ``step()`` updates every parameter that has a ``.grad``.

    Args:
        params: an iterable of tensors (e.g. ``model.parameters()``), or of dicts
            ``{'params': [...], 'lr': ...}`` giving groups their own hyperparameters.
        defaults: the hyperparameters of groups that do not set them.
    """

    def __init__(self, params: Params, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[ParamGroup] = []
        self.state: dict[Tensor, dict[str, Any]] = {}  # keyed by identity (Tensor's hash)
        self._scratch: dict[int, list[np.ndarray]] = {}
        items = list(params)
        if not items:
            raise ValueError(
                f"{type(self).__name__}: got an empty list of parameters. Pass "
                "model.parameters() after the model has been built (a generator can be "
                "used only once: build the optimiser from a fresh call)."
            )
        groups: list[Any] = items if isinstance(items[0], dict) else [{"params": items}]
        for group in groups:
            self.add_param_group(group)

    # -- groups and validation ---------------------------------------------------------------

    def add_param_group(self, group: ParamGroup) -> None:
        """Add parameters with their own hyperparameters (missing ones from the defaults)."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(
                f"{name}: a parameter group is a dict with a 'params' list, got "
                f"{type(group).__name__}; pass tensors or dicts, not a mix."
            )
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        known = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{name}: parameter {i} is a {type(p).__name__}, not a Tensor; pass "
                    "model.parameters() or a list of tensors."
                )
            if not p.requires_grad or not p.is_leaf:
                raise ValueError(
                    f"{name}: parameter {i} (shape {p.shape}) is not a leaf tensor that "
                    "requires grad; only such tensors receive a .grad to step with "
                    "(nn.Parameter, or Tensor(..., requires_grad=True))."
                )
            if id(p) in known:
                raise ValueError(
                    f"{name}: parameter {i} (shape {p.shape}) is given twice; it would be "
                    "updated twice per step. Pass each parameter once."
                )
            known.add(id(p))
        full = {**self.defaults, **group, "params": params}
        unknown = set(full) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise TypeError(
                f"{name}: unknown hyperparameter(s) {sorted(unknown)} in a parameter group; "
                f"known: {sorted(self.defaults)}."
            )
        self._check_hyperparameters(full)
        self.param_groups.append(full)

    def _check_hyperparameters(self, group: ParamGroup) -> None:
        """Raise ValueError for invalid hyperparameters (subclasses add their own checks)."""
        _require(type(self).__name__, "lr", group["lr"], lambda v: v > 0, "> 0")

    # -- stepping ----------------------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``.grad = None`` (default, frees memory) or fill with 0."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad._data.fill(0)
                    mark_modified(p.grad)  # a graph that saved this .grad is now stale

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if given.

        ``closure`` re-evaluates the model and returns the loss (for optimisers that need
        several evaluations per step; SGD and Adam call it once, before updating).
        """
        loss = None
        if closure is not None:
            with grad_mode.enable_grad():
                loss = closure()
        # _update works on the arrays: nothing here is recorded, no grad mode is needed.
        state, scratch, update = self.state, self._scratch, self._update
        updated = []
        try:
            for group in self.param_groups:
                needed = self._scratch_needed(group)
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    grad, data = g._data, p._data
                    if grad.shape != data.shape:
                        raise RuntimeError(
                            f"{type(self).__name__}.step: a parameter of shape {p.shape} has "
                            f"a gradient of shape {grad.shape}; they must match."
                        )
                    s = state.get(p)
                    if s is None:
                        s = state[p] = {}
                    bufs = scratch.get(id(p))
                    if (
                        bufs is None
                        or len(bufs) < needed
                        or type(bufs[0]) is not type(data)
                        or (type(data) is not np.ndarray and not _same_device(bufs[0], data))
                    ):
                        # First step, or the parameter moved (Module.to) or was loaded:
                        # its state goes where it is, new scratch arrays are made there.
                        self._follow(p, s)
                        bufs = self._buffers(p, needed)
                    update(data, grad, s, group, bufs)
                    updated.append(p)
        finally:
            mark_modified(*updated)  # graphs recorded with the old values are now stale
        return loss

    @abstractmethod
    def _update(
        self,
        p: np.ndarray,
        grad: np.ndarray,
        state: dict[str, Any],
        group: ParamGroup,
        tmp: list[np.ndarray],
    ) -> None:
        """Update the array ``p`` in place from ``grad`` (each optimiser's own formula)."""

    def _scratch_needed(self, group: ParamGroup) -> int:
        """How many scratch arrays of a parameter's shape ``_update`` uses for this group."""
        return 2

    def _buffers(self, p: Tensor, needed: int) -> list[np.ndarray]:
        """Scratch arrays of p's shape, allocated on the first step and reused after; only
        as many as the update needs (each is as large as the parameter)."""
        bufs = self._scratch.setdefault(id(p), [])
        xp = ufuncs(p._data)
        while len(bufs) < needed:
            bufs.append(xp.empty_like(p._data))
        return bufs

    def _follow(self, p: Tensor, state: dict[str, Any]) -> None:
        """Move ``p``'s state arrays to where ``p`` is now, and drop its scratch arrays."""
        where = device_of(p._data)
        for key, value in state.items():
            if not isinstance(value, int | float | bool | str) and hasattr(value, "shape"):
                state[key] = move(value, where)
        self._scratch.pop(id(p), None)

    # -- saving and loading ------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """A snapshot (copies): ``{'state': {index: {...}}, 'param_groups': [...]}``.

        Parameters are numbered in the order of the groups, as in PyTorch, so the dict can
        be loaded into an optimiser built the same way over another copy of the model.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {
            index[id(p)]: {k: _snapshot(v) for k, v in s.items()} for p, s in self.state.items()
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and per-parameter state saved by ``state_dict()``.

        All mismatches are reported in one error and nothing is changed when there is one.
        """
        name = type(self).__name__
        groups = state_dict.get("param_groups")
        saved_state = state_dict.get("state")
        if not isinstance(groups, list) or not isinstance(saved_state, dict):
            raise ValueError(
                f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups', as "
                "returned by state_dict()."
            )
        problems: list[str] = []
        if len(groups) != len(self.param_groups):
            problems.append(f"{len(groups)} parameter groups saved, {len(self.param_groups)} here")
        params: dict[int, Tensor] = {}
        for k, (saved, own) in enumerate(zip(groups, self.param_groups, strict=False)):
            if len(saved["params"]) != len(own["params"]):
                problems.append(
                    f"group {k}: {len(saved['params'])} parameters saved, {len(own['params'])} here"
                )
            params.update(zip(saved["params"], own["params"], strict=False))
        for i, s in saved_state.items():
            p = params.get(i)
            if p is None:
                problems.append(f"state for parameter {i}, which no group holds")
                continue
            for key, v in s.items():
                if isinstance(v, np.ndarray) and v.shape != p.shape:
                    problems.append(
                        f"state {key!r} of parameter {i}: shape {v.shape}, parameter {p.shape}"
                    )
        if problems:
            raise ValueError(
                f"{name}.load_state_dict: the saved state does not fit this optimiser (nothing "
                "was loaded):\n  - " + "\n  - ".join(problems) + "\nBuild the optimiser over "
                "the same parameters, in the same order and groups, as the one that was saved."
            )
        for saved, own in zip(groups, self.param_groups, strict=True):
            own.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {
            params[i]: {
                k: (v.astype(host_dtype(params[i]._data)) if isinstance(v, np.ndarray) else v)
                for k, v in s.items()
            }
            for i, s in saved_state.items()
        }

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for k, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {k}")
            lines += [f"    {key}: {v}" for key, v in sorted(group.items()) if key != "params"]
        return "\n".join([*lines, ")"])


def _same_device(a: Any, b: Any) -> bool:
    return device_of(a) == device_of(b)


def _snapshot(value: Any) -> Any:
    """A NumPy copy of a state array (a GPU's is copied to the host), other values as they
    are."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if not isinstance(value, int | float | bool | str) and hasattr(value, "shape"):
        return to_host(value)
    return value


def _require(op: str, name: str, value: Any, ok: Callable[[Any], bool], rule: str) -> None:
    """Raise a ValueError naming the optimiser and the hyperparameter unless ``ok(value)``."""
    if (
        not isinstance(value, int | float | np.floating | np.integer)
        or isinstance(value, bool)
        or math.isnan(float(value))
        or not ok(value)
    ):
        raise ValueError(f"{op}: {name} must be a number {rule}, got {value!r}.")
