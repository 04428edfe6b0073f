"""``chainrule.compile``: trace a training step once, replay it as straight-line NumPy."""

from __future__ import annotations

import functools
import inspect
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.compile import _engine
from chainrule.compile.draws import TracingGenerator, conversions_traced
from chainrule.compile.eager_parts import opaque_steps, watch_hooks
from chainrule.compile.hyper import Hyper
from chainrule.compile.program import Program, Retrace, generate
from chainrule.compile.scope import Scope, Walk, find_roots
from chainrule.compile.stmt import GuardFailed, TraceError
from chainrule.compile.tracer import Recorder, Tracer
from chainrule.optim.optimizer import Optimizer

Tensor = _engine.Tensor
_CACHE_SIZE = 8  # programs kept per function (one per argument shapes/dtypes), as JAX's
_MAX_UNSETTLED = 4  # traces in a row whose state keeps changing before we give up


class Compiled:
    """A step function that runs as a generated NumPy program after its first calls.

    Call it like the function. ``source`` is the program of the latest trace (the forward
    pass, the backward pass and the update as NumPy lines); ``traces`` counts traces.
    """

    def __init__(self, fn: Callable[..., Any], extra: tuple[Any, ...] = ()) -> None:
        self.fn = fn
        functools.update_wrapper(self, fn)
        self._extra = [(f"obj{i}", o) for i, o in enumerate(extra)]
        self._cache: OrderedDict[Any, Program] = OrderedDict()
        self._opaque: set[int] = set()  # optimisers whose step() stays eager (Python state)
        self._eager_reason: str | None = None
        self._unsettled = 0
        self.traces = 0
        self.trace_seconds = 0.0
        self._last_source = ""
        try:
            self._params = [
                p.name
                for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        except (TypeError, ValueError):
            self._params = []

    @property
    def source(self) -> str:
        """The generated program (Python source) of the latest trace."""
        if not self._last_source:
            raise RuntimeError(
                "compiled.source: nothing traced yet; call the compiled step (twice: the "
                "first call also creates the optimiser's state) and read it then."
            )
        return self._last_source

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._eager_reason is not None:
            return self.fn(*args, **kwargs)
        if _engine.anomaly_enabled():
            self._fall_back("detect_anomaly() is on (its checks run per operation)", once=False)
            return self.fn(*args, **kwargs)
        key = _engine.cache_key(args, kwargs)
        program = self._cache.get(key)
        if program is not None:
            try:
                return program.run(*args, **kwargs)
            except Retrace:
                del self._cache[key]
            except GuardFailed:
                return self.fn(*args, **kwargs)  # nothing was changed yet: eager, exactly
        return self._trace(key, args, kwargs)

    def _fall_back(self, reason: str, once: bool = True) -> None:
        warnings.warn(
            f"chainrule.compile({getattr(self.fn, '__name__', 'step')}): running eagerly, "
            f"because {reason}.",
            RuntimeWarning,
            stacklevel=3,
        )
        if once:
            self._eager_reason = reason

    # -- tracing ---------------------------------------------------------------------------

    def _trace(self, key: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        import time

        t0 = time.perf_counter()
        rec = Recorder()
        roots: list[tuple[str, Any]] = []
        candidates = [*find_roots(self.fn), *self._extra]
        candidates += [(f"arg{i}", a) for i, a in enumerate(args) if not isinstance(a, Tensor)]
        for name, obj in candidates:
            if all(o is not obj for _, o in roots):
                roots.append((name, obj))
        scope = Scope(roots, self._opaque)
        before = scope.walk()
        hooked = [t for _, t in before.tensors if _engine.has_hooks(t)]
        if hooked:
            self._fall_back("a parameter has a hook or retain_grad() (they run per call)")
            return self.fn(*args, **kwargs)
        for value in kwargs.values():
            if isinstance(value, Tensor | np.ndarray):
                raise TraceError(
                    "chainrule.compile: pass tensors and arrays to a compiled step "
                    "positionally (keyword arguments are part of the cache key)."
                )
        names = self._arg_names(len(args))
        traced_args: list[Any] = []
        arg_tensors = []
        for name, a in zip(names, args, strict=True):
            if isinstance(a, Tensor):
                arr = _engine.get_array(a)
                tr = rec.input(arr, name, f"_get({name})")
                _engine.set_array(a, tr)
                arg_tensors.append((a, arr))
                traced_args.append(a)
            elif isinstance(a, np.ndarray):
                traced_args.append(rec.input(a, name, name))
            else:
                traced_args.append(a)
        swapped = []
        for fetch, slot in before.slots.items():
            arr = slot.get()
            slot.set(rec.input(arr, slot.name, fetch))
            swapped.append((slot, arr))
        gens = []
        for fetch, holder, attr, _label in before.generators:
            g = getattr(holder, attr)
            if isinstance(g, np.random.Generator):
                setattr(holder, attr, TracingGenerator(g, rec, fetch))
                gens.append((holder, attr, g))
        hypers: list[tuple[dict[str, Any], Hyper, float]] = []
        for _, o in roots:  # learning rates: read by the program on each call if it can
            if isinstance(o, Optimizer) and id(o) not in self._opaque:
                c = scope.const(o, "o")
                for gi, group in enumerate(o.param_groups):
                    lr = group.get("lr")
                    if type(lr) is float:
                        h = Hyper(lr, f"{c}.param_groups[{gi}]['lr']")
                        group["lr"] = h
                        hypers.append((group, h, lr))
        emitted_grads: dict[int, str] = {}
        reasons: list[str] = []
        result: Any = None
        try:
            with (
                conversions_traced(),
                watch_hooks(reasons),
                opaque_steps(
                    [o for _, o in roots if isinstance(o, Optimizer) and id(o) in self._opaque],
                    rec,
                    scope,
                    emitted_grads,
                ),
            ):
                result = self.fn(*traced_args, **kwargs)
        finally:
            for group, h, lr in hypers:
                if group.get("lr") is h:
                    group["lr"] = lr
            for holder, attr, g in gens:
                setattr(holder, attr, g)
            for t, arr in arg_tensors:
                _engine.set_array(t, arr)
            after = scope.walk()
            epilogue = _untrace(before, after, swapped, emitted_grads, rec)
            ret = _untrace_result(result, rec, scope)
        self.traces += 1
        self.trace_seconds += time.perf_counter() - t0
        if reasons:
            self._fall_back(reasons[0])
            return result
        changed = _changed_state_numbers(before, after, scope)
        if changed:
            self._opaque |= changed  # their step() reads Python numbers (Adam's step count)
        if changed or before.signature() != after.signature():
            # This call created state (first step: .grad, momentum buffers): its program
            # would redo that. The next call, with the state in place, is traced instead.
            self._unsettled += 1
            if self._unsettled >= _MAX_UNSETTLED:
                self._fall_back("the step's state keeps changing from call to call")
            return result
        self._unsettled = 0
        written = {w for s in rec.stmts for w in s.writes}
        touched = [c for c, t in before.tensors if rec_var(before, c) in written]
        if touched:  # as optimizer.step(): graphs recorded before see the change
            epilogue += _engine.mark_modified_source(touched)
        live = {h.expr for _, h, _ in hypers if not h.used} & rec.live
        hyper = [(e, v) for e, v in before.guards if e not in live]
        prologue = []
        if hyper:
            consts = {"_baked": tuple(v for _, v in hyper)}
            prologue = [
                "if (  # the numbers the trace baked in: hyperparameters, train()/eval()",
                *(f"    {e}," for e, _ in hyper),
                ") != _baked:",
                "    raise _Retrace",
            ]
        else:
            consts = {}
        name = getattr(self.fn, "__name__", "")
        name = name if name.isidentifier() and name != "lambda" else "step"
        program = generate(
            name,
            names,
            prologue,
            rec,
            epilogue,
            ret,
            set(),
            {**scope.consts, **consts},
        )
        self._last_source = program.source
        self._cache[key] = program
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return result

    def _arg_names(self, n: int) -> list[str]:
        names = list(self._params[:n])
        names += [f"arg{i}" for i in range(len(names), n)]
        return names


def rec_var(walk: Walk, const: str) -> str:
    slot = walk.slots.get(f"_get({const})")
    return slot.name if slot is not None else ""


def _untrace(
    before: Walk,
    after: Walk,
    swapped: list[Any],
    emitted: dict[int, str],
    rec: Recorder,
) -> list[str]:
    """Put the real arrays back everywhere; return the lines that store the results."""
    lines: list[str] = []
    for fetch, slot in after.slots.items():
        value = slot.get()
        if not isinstance(value, Tracer):
            continue
        slot.set(value._real)
        old = before.slots.get(fetch)
        same_owner = (
            old is not None and old.tensor is slot.tensor and old.container is slot.container
        )
        if same_owner and old is not None and rec.inputs.get(value._var or "") == fetch:
            continue  # changed in place, if at all
        if slot.tensor is not None and fetch in after.grads:
            target = fetch[len("_get(") : -len(".grad)")]
            if emitted.get(id(slot.tensor)) == value._var:
                continue
            if not any(line.startswith("# each .grad") for line in lines):
                lines.append("# each .grad: a new Tensor, or the old one if nothing else holds it")
            lines += _engine.store_grad_lines(target, str(value._var))
        elif slot.tensor is not None:
            lines.append(f"_set({fetch[len('_get(') : -1]}, {value._var})")
        else:
            lines.append(f"{fetch} = {value._var}")
    for fetch in before.grads:
        if fetch not in after.grads:
            lines.append(f"{fetch[len('_get(') : -len('.grad)')]}.grad = None")
    for slot, arr in swapped:  # what the walk no longer reaches (an old .grad tensor)
        if isinstance(slot.get(), Tracer):
            slot.set(arr)
    return lines


def _untrace_result(result: Any, rec: Recorder, scope: Scope) -> str:
    """The return expression of the program; turns tracers in ``result`` back into arrays."""
    if isinstance(result, Tensor):
        arr = _engine.get_array(result)
        if isinstance(arr, Tracer):
            _engine.set_array(result, arr._real)
            return f"_wrap({arr._var})"
        return scope.const(result, "t")
    if isinstance(result, Tracer):
        return str(result._var)
    if isinstance(result, tuple | list):
        inner = ", ".join(_untrace_result(r, rec, scope) for r in result)
        return f"({inner},)" if isinstance(result, tuple) else f"[{inner}]"
    if isinstance(result, dict):
        items = ", ".join(f"{k!r}: {_untrace_result(v, rec, scope)}" for k, v in result.items())
        return "{" + items + "}"
    if result is None or isinstance(result, bool | int | str):
        return repr(result)
    return scope.const(result, "r")


def _changed_state_numbers(before: Walk, after: Walk, scope: Scope) -> set[int]:
    """Optimisers whose state holds Python numbers that the step changed or created."""
    out = set()
    for expr, value in after.state_numbers.items():
        if before.state_numbers.get(expr, object()) != value:
            out.add(id(scope.consts[expr.split(".", 1)[0]]))
    return out


def compile(fn: Callable[..., Any] | None = None, *, state: tuple[Any, ...] = ()) -> Any:
    """Trace ``fn`` (a training step) once and run it as straight-line NumPy afterwards.

    The first call with given argument shapes and dtypes runs ``fn`` eagerly while
    recording every NumPy call it makes on the arrays it reads: its tensor arguments and
    the parameters and optimiser state of the modules and optimisers it names (closure or
    globals; pass others as ``state=``). Later calls with the same shapes run the recorded
    program: no graph, no topological sort, the same NumPy calls in the same order, so
    the same bits. Random draws (dropout) stay draws; other shapes trace again.

    Args:
        fn: the step, e.g. ``def step(x, y): opt.zero_grad(); loss = ...; loss.backward();
            opt.step(); return loss``. Return tensors; convert them outside.
        state: more modules, optimisers or tensors the step reads.

    Returns:
        A ``Compiled`` callable; ``compiled.source`` is the program's Python source.

    Example:
        >>> import numpy as np, chainrule
        >>> from chainrule import nn, optim
        >>> _ = nn.manual_seed(0)
        >>> model = nn.MLP(2, [4], 2)
        >>> opt = optim.SGD(model.parameters(), lr=0.1)
        >>> @chainrule.compile
        ... def step(x, y):
        ...     opt.zero_grad()
        ...     loss = nn.functional.cross_entropy(model(x), y)
        ...     loss.backward()
        ...     opt.step()
        ...     return loss
        >>> x, y = chainrule.Tensor(np.ones((3, 2), np.float32)), np.array([0, 1, 1])
        >>> losses = [step(x, y).item() for _ in range(3)]
        >>> "np.maximum" in step.source
        True
    """
    if fn is None:
        return lambda f: Compiled(f, state)
    return Compiled(fn, state)
