"""The parts of a step that stay eager: hooks (fall back) and optimisers with Python state.

An optimiser whose state holds Python numbers that change every step (Adam's step count,
read by ``math.sqrt(1 - beta2**t)``) cannot be traced line by line: the lines would bake
in this step's numbers. Its ``step()`` is recorded as one call of the real method, run on
the real arrays in the program's place in the order (after the gradients are stored).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from chainrule.compile import _engine
from chainrule.compile.scope import Scope
from chainrule.compile.stmt import TraceError
from chainrule.compile.tracer import Recorder, Tracer
from chainrule.optim.optimizer import Optimizer

Tensor = _engine.Tensor


@contextmanager
def watch_hooks(reasons: list[str]) -> Iterator[None]:
    """Notice register_hook / retain_grad inside the step (they must run on every call)."""
    saved = Tensor.register_hook, Tensor.retain_grad

    def register_hook(self: Any, hook: Any) -> Any:
        reasons.append("the step registers a tensor hook (it must run on every call)")
        return saved[0](self, hook)

    def retain_grad(self: Any) -> None:
        reasons.append("the step calls retain_grad() (its .grad is set on every call)")
        saved[1](self)

    Tensor.register_hook, Tensor.retain_grad = register_hook, retain_grad  # type: ignore[method-assign]
    try:
        yield
    finally:
        Tensor.register_hook, Tensor.retain_grad = saved  # type: ignore[method-assign]


@contextmanager
def opaque_steps(
    opts: list[Optimizer], rec: Recorder, scope: Scope, emitted: dict[int, str]
) -> Iterator[None]:
    """Record ``opt.step()`` as one call of the real step (for optimisers with Python state
    that changes per step, as Adam's step count: its lines would bake it in)."""
    for opt in opts:
        opt.step = _opaque_step(opt, type(opt).step.__get__(opt), rec, scope, emitted)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for opt in opts:
            del opt.step


def _opaque_step(
    opt: Optimizer, orig: Callable[..., Any], rec: Recorder, scope: Scope, emitted: dict[int, str]
) -> Callable[..., Any]:
    def step(closure: Any = None) -> Any:
        if closure is not None:
            raise TraceError("chainrule.compile: optimizer.step(closure) is not supported.")
        held = []
        uses, writes = [], []
        for group in opt.param_groups:
            for p in group["params"]:
                c = scope.const(p, "t")
                g = p.grad
                if g is None:
                    rec.emit(f"{c}.grad = None", effect=True)
                else:
                    ga = _engine.get_array(g)
                    if isinstance(ga, Tracer):
                        rec.emit(f"{c}.grad = _wrap({rec.fmt(ga)})", effect=True)
                        emitted[id(g)] = str(ga._var)
                        _engine.set_array(g, ga._real)
                        held.append((g, ga))
                pa = _engine.get_array(p)
                if isinstance(pa, Tracer):
                    uses.append(rec.fmt(pa))
                    writes.append(str(pa._var))
                    _engine.set_array(p, pa._real)
                    held.append((p, pa))
        fn = rec.const(orig, f"{type(opt).__name__.lower()}_step")
        rec._uses = uses
        rec.emit(f"{fn}()  # {type(opt).__name__}.step(), eager: it reads Python state", (),
                 tuple(writes), effect=True)  # fmt: skip
        try:
            return orig()
        finally:
            for t, tr in held:
                _engine.set_array(t, tr)

    return step
