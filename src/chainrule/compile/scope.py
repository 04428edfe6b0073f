"""What a step reads: the tensors, arrays and generators reachable from the function.

``find_roots`` looks at the function's closure and the globals it names for modules,
optimisers and tensors; ``Scope.walk`` lists every array slot below them (a parameter's
array, its ``.grad``, an optimiser's state buffers), every generator (dropout masks) and
the Python numbers the trace bakes in (hyperparameters, ``training``), each with the
expression by which the compiled program fetches it on later calls.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.compile import _engine
from chainrule.tensor import random as default_random
from chainrule.nn.module import Module
from chainrule.optim.optimizer import Optimizer

Tensor = _engine.Tensor


def find_roots(fn: Callable[..., Any]) -> list[tuple[str, Any]]:
    """(name, object) for the modules, optimisers and tensors ``fn`` can reach by name."""
    found: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def visit(f: Any, depth: int) -> None:
        if id(f) in seen or depth > 3:
            return
        seen.add(id(f))
        if isinstance(f, types.MethodType):
            consider("self", f.__self__, depth)
            f = f.__func__
        code = getattr(f, "__code__", None)
        if code is None:
            return
        for name, cell in zip(code.co_freevars, f.__closure__ or (), strict=False):
            with_cell = cell.cell_contents if _filled(cell) else None
            consider(name, with_cell, depth)
        glob = getattr(f, "__globals__", {})
        for name in _names(code):
            if name in glob:
                consider(name, glob[name], depth)

    def consider(name: str, obj: Any, depth: int) -> None:
        if isinstance(obj, Module | Optimizer | Tensor):
            if id(obj) not in seen:
                seen.add(id(obj))
                found.append((name, obj))
        elif isinstance(obj, list | tuple) and id(obj) not in seen and len(obj) <= 1000:
            seen.add(id(obj))  # e.g. `weights = [W0, W1, W2]` read by the step
            for i, item in enumerate(obj):
                if isinstance(item, Module | Optimizer | Tensor):
                    consider(f"{name}{i}", item, depth)
        elif isinstance(obj, types.FunctionType | types.MethodType):
            visit(obj, depth + 1)

    visit(fn, 0)
    return found


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _names(c)


@dataclass
class Slot:
    """An array the step reads or writes: ``fetch`` is how the program gets it."""

    fetch: str  # e.g. "_get(_t0)" or "_o0.state[_t0]['exp_avg']"
    name: str  # the variable's name in the program
    tensor: Any = None  # the Tensor holding it (its array is the slot), or None
    container: Any = None  # else the dict or list holding it, and the key
    key: Any = None

    def get(self) -> Any:
        if self.tensor is not None:
            return _engine.get_array(self.tensor)
        return self.container[self.key]

    def set(self, value: Any) -> None:
        if self.tensor is not None:
            _engine.set_array(self.tensor, value)
        else:
            self.container[self.key] = value


@dataclass
class Walk:
    """One listing of everything below the roots (before or after a traced call)."""

    slots: dict[str, Slot] = field(default_factory=dict)  # by fetch expression
    generators: list[tuple[str, Any, Any, str]] = field(default_factory=list)
    guards: list[tuple[str, Any]] = field(default_factory=list)  # (expr, value) baked in
    state_numbers: dict[str, Any] = field(default_factory=dict)  # optimiser state numbers
    grads: dict[str, Any] = field(default_factory=dict)  # "_get(_t0.grad)" -> owner tensor
    tensors: list[tuple[str, Any]] = field(default_factory=list)  # (const, parameter)

    def signature(self) -> frozenset[str]:
        return frozenset(self.slots) | frozenset(self.state_numbers)


class Scope:
    """Names every object below the roots once, as constants of the program."""

    def __init__(self, roots: list[tuple[str, Any]], opaque: set[int]) -> None:
        self.roots = roots
        self.opaque = opaque  # ids of optimisers whose step runs eagerly inside the program
        self.consts: dict[str, Any] = {}
        self._ids: dict[int, str] = {}
        self._labels: dict[int, str] = {}
        self._taken: set[str] = set()

    def const(self, obj: Any, prefix: str) -> str:
        name = self._ids.get(id(obj))
        if name is None:
            name = self._ids[id(obj)] = f"_{prefix}{len(self._ids)}"
            self.consts[name] = obj
        return name

    def _var(self, label: str) -> str:
        base = "".join(c if c.isalnum() else "_" for c in label).strip("_") or "v"
        if base[0].isdigit():
            base = "p" + base
        name, n = base, 1
        while name in self._taken:
            n += 1
            name = f"{base}_{n}"
        self._taken.add(name)
        return name

    def label(self, t: Any, fallback: str) -> str:
        if id(t) not in self._labels:
            self._labels[id(t)] = self._var(fallback)
        return self._labels[id(t)]

    def walk(self) -> Walk:
        w = Walk()
        seen: set[int] = set()
        for name, obj in self.roots:
            if isinstance(obj, Module):
                self._module(w, name, obj, seen)
        for name, obj in self.roots:  # optimisers after modules: parameters keep layer names
            if isinstance(obj, Optimizer):
                self._optimizer(w, name, obj, seen)
            elif isinstance(obj, Tensor):
                self._tensor(w, obj, name, seen)
        if not any(g[0] == "_default_generator()" for g in w.generators):
            # The process-wide generator's NumPy stream (drawn under its lock by the program).
            w.generators.append(("_default_generator()", default_random._default, "_gen", "rng"))
        return w

    def _tensor(self, w: Walk, t: Any, label: str, seen: set[int]) -> None:
        if id(t) in seen:
            return
        seen.add(id(t))
        c = self.const(t, "t")
        name = self.label(t, label)
        w.tensors.append((c, t))
        w.slots[f"_get({c})"] = Slot(f"_get({c})", name, tensor=t)
        grad = t.grad
        if grad is not None:
            fetch = f"_get({c}.grad)"
            w.slots[fetch] = Slot(fetch, f"{name}_grad", tensor=grad)
            w.grads[fetch] = t

    def _module(self, w: Walk, root: str, m: Module, seen: set[int]) -> None:
        for pname, p in m.named_parameters():
            self._tensor(w, p, pname, seen)
        for mname, sub in m.named_modules():
            c = self.const(sub, "m")
            w.guards.append((f"{c}.training", sub.training))
            for k, v in vars(sub).items():
                if isinstance(v, bool | float):
                    w.guards.append((f"{c}.{k}", v))
                elif isinstance(v, np.random.Generator):
                    w.generators.append((f"{c}.{k}", sub, k, f"{mname}_{k}".strip("_")))
                elif isinstance(v, Tensor) and id(v) not in seen:
                    self._tensor(w, v, f"{mname}.{k}", seen)

    def _optimizer(self, w: Walk, root: str, opt: Optimizer, seen: set[int]) -> None:
        c = self.const(opt, "o")
        for gi, group in enumerate(opt.param_groups):
            for k, v in group.items():
                if k == "params":
                    for i, p in enumerate(v):
                        self._tensor(w, p, f"{root}_param{gi}_{i}", seen)
                elif isinstance(v, int | float | bool | tuple) and id(opt) not in self.opaque:
                    # (An opaque optimiser's step runs eagerly: it reads them on each call.)
                    w.guards.append((f"{c}.param_groups[{gi}][{k!r}]", v))
        if id(opt) in self.opaque:
            return  # its step runs eagerly on the real arrays: its state stays as it is
        for attr, value in vars(opt).items():
            if attr in ("param_groups", "defaults"):
                continue
            self._arrays(w, value, f"{c}.{attr}", attr, depth=0)

    def _arrays(self, w: Walk, obj: Any, expr: str, label: str, depth: int) -> None:
        """Array slots (and numbers) in the optimiser's own dicts and lists (its state)."""
        if isinstance(obj, np.ndarray):
            if isinstance(obj, np.ndarray):
                w.slots[expr] = Slot(expr, self._var(label), container=None)
            return
        if depth > 3:
            return
        items: Any = None
        if isinstance(obj, dict):
            items = obj.items()
        elif isinstance(obj, list):
            items = enumerate(obj)
        if items is None:
            if isinstance(obj, int | float | bool):
                w.state_numbers[expr] = obj
            return
        for k, v in items:
            if isinstance(k, Tensor):
                kexpr, klabel = self.const(k, "t"), self.label(k, "param")
            elif isinstance(k, int | str):
                kexpr, klabel = repr(k), str(k)
                if isinstance(k, int) and k in self._ids:  # keyed by id(parameter)
                    klabel = self._labels.get(k, klabel)
            else:
                continue
            sub = f"{expr}[{kexpr}]"
            if depth == 0:  # state[p] -> p's name; _scratch[id(p)] -> p's name + _tmp
                sublabel = klabel if label == "state" else f"{klabel}_tmp"
            else:
                sublabel = f"{label}{klabel}" if isinstance(k, int) else f"{label}_{klabel}"
            self._arrays(w, v, sub, sublabel, depth + 1)
            slot = w.slots.get(sub)
            if slot is not None and slot.container is None:
                slot.container, slot.key = obj, k
