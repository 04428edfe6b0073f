"""Tracer arrays: NumPy arrays that write down every NumPy call made on them.

While a step is traced, every array it reads (arguments, parameters, optimiser state) is
replaced by a ``Tracer``: an ndarray subclass that views the same memory and implements
NumPy's dispatch protocols (``__array_ufunc__``, ``__array_function__``) and the ndarray
methods the engine uses. Each call is computed on the real arrays, so the traced run *is*
an eager run (same calls, same order, same bits), and is recorded as one line of Python
(``mul3 = g2 * x``) in a ``Recorder``. Replaying the lines replays the step.

Converting a traced array to a Python value (``bool``, ``float``, ``.item()``) would hide a
decision from the trace: in user code that is an error naming the line; in the engine's
own checks it becomes a *guard* of the program (see ``Recorder.guard``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.compile.hyper import Hyper
from chainrule.compile.sites import engine_site, user_line, where
from chainrule.compile.spelling import SHORT_NAMES, as_reduce, ufunc_code
from chainrule.compile.stmt import BIG, ArrayInfo, Stmt, TraceError

# Array functions whose Python results depend only on shapes and dtypes (guarded by the key).
_STATIC = {"shape", "ndim", "size", "result_type", "may_share_memory", "shares_memory"}


@dataclass
class Recorder:
    """The program being traced: its lines and the constants they name."""

    stmts: list[Stmt] = field(default_factory=list)
    consts: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)  # var -> how to fetch it
    big: set[str] = field(default_factory=set)  # variables on (views of) large memory
    meta: dict[str, ArrayInfo] = field(default_factory=dict)  # each variable's array
    live: set[str] = field(default_factory=set)  # hyperparameters read on each call
    _const_ids: dict[int, str] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)
    _uses: list[str] = field(default_factory=list)

    # -- names -------------------------------------------------------------------------------

    def name(self, hint: str) -> str:
        n = self._counts.get(hint, 0) + 1
        self._counts[hint] = n
        return f"{hint}{n}"

    def const(self, obj: Any, hint: str = "c") -> str:
        """A name under which the program sees ``obj`` itself (kept alive by the program)."""
        key = id(obj)
        found = self._const_ids.get(key)
        if found is None:
            found = self._const_ids[key] = f"_{self.name(hint)}"
            self.consts[found] = obj
        return found

    def tracer(self, real: Any, var: str) -> Tracer:
        scalar = isinstance(real, np.generic)
        arr = np.asarray(real)
        owner = arr
        while isinstance(owner.base, np.ndarray):
            owner = owner.base
        if owner.nbytes >= BIG:
            self.big.add(var)
        self.meta[var] = ArrayInfo(
            arr.shape, arr.nbytes, id(owner), owner is arr, arr.dtype.str, arr.strides
        )
        t = arr.view(Tracer)
        t._var, t._real, t._scalar, t._rec = var, arr, scalar, self
        return t

    def input(self, real: np.ndarray, var: str, fetch: str) -> Tracer:
        self.inputs[var] = fetch
        return self.tracer(real, var)

    # -- formatting arguments ----------------------------------------------------------------

    def fmt(self, x: Any) -> str:
        """Python source for an argument of a recorded call (noting the variables it reads)."""
        if isinstance(x, Tracer):
            if x._var is None:
                raise TraceError(
                    f"chainrule.compile: an array made by an ndarray method that the tracer "
                    f"does not follow is used at {user_line()}; run this step without "
                    "compile, or write it with NumPy functions and operators."
                )
            self._uses.append(x._var)
            return x._var
        if isinstance(x, Hyper):
            self.live.add(x.expr)
            return x.expr
        if x is None or isinstance(x, bool | str):
            return repr(x)
        if isinstance(x, int | float) and math.isfinite(x):
            return repr(x)  # repr round-trips exactly
        if x is Ellipsis:
            return "..."
        if isinstance(x, tuple):
            return "(" + "".join(self.fmt(i) + ", " for i in x).rstrip(" ") + ")"
        if isinstance(x, list):
            return "[" + ", ".join(self.fmt(i) for i in x) + "]"
        if isinstance(x, slice):
            return f"slice({self.fmt(x.start)}, {self.fmt(x.stop)}, {self.fmt(x.step)})"
        if isinstance(x, np.dtype) and getattr(np, x.name, None) is x.type:
            return f"np.{x.name}"
        tname = getattr(x, "__name__", "")
        if isinstance(x, type) and issubclass(x, np.generic) and getattr(np, tname, 0) is x:
            return f"np.{tname}"
        if isinstance(x, np.ndarray | np.generic):
            zero = x.ndim == 0 and x.dtype.kind == "f" and not x and not np.signbit(x)
            return self.const(x, "zero" if zero else "c")  # (relu's 0: np.maximum(f, _zero1))
        return self.const(x, "k")

    def fmt_index(self, idx: Any) -> str:
        items = idx if isinstance(idx, tuple) else (idx,)
        parts = []
        for i in items:
            if isinstance(i, slice):
                s = ":".join("" if v is None else self.fmt(v) for v in (i.start, i.stop))
                parts.append(s + ("" if i.step is None else ":" + self.fmt(i.step)))
            else:
                parts.append(self.fmt(i))
        return ", ".join(parts) + ("," if isinstance(idx, tuple) and len(idx) == 1 else "")

    def fmt_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        parts = [self.fmt(a) for a in args] + [f"{k}={self.fmt(v)}" for k, v in kwargs.items()]
        return ", ".join(parts)

    # -- recording ---------------------------------------------------------------------------

    def emit(
        self, code: str, defs: tuple[str, ...] = (), writes: tuple[str, ...] = (), **kw: Any
    ) -> None:
        uses, self._uses = tuple(self._uses), []
        phase, label = where()
        self.stmts.append(Stmt(code, defs, uses, writes, phase=phase, label=label, **kw))

    def result(self, real: Any, hint: str, code_rhs: str, writes: tuple[str, ...] = ()) -> Any:
        """Wrap a call's result(s) in new tracers and record ``names = code_rhs``."""
        if isinstance(real, tuple) and all(isinstance(r, np.ndarray | np.generic) for r in real):
            outs = tuple(self.tracer(r, self.name(hint)) for r in real)
            names = tuple(o._var for o in outs if o._var is not None)
            self.emit(f"{', '.join(names)}, = {code_rhs}", names, writes)
            return outs
        if not isinstance(real, np.ndarray | np.generic):
            raise TraceError(
                f"chainrule.compile: `{code_rhs}` at {user_line()} gives a Python "
                f"{type(real).__name__}, which depends on the values of traced arrays; keep "
                "it an array, or run this step without compile."
            )
        out = self.tracer(real, self.name(hint))
        assert out._var is not None
        self.emit(f"{out._var} = {code_rhs}", (out._var,), writes)
        return out

    def guard(self, code: str) -> None:
        """A check the program makes before going on: raises GuardFailed when it fails."""
        self.emit(f"if {code}:\n    raise _GuardFailed", effect=True, guard=True)


def real(x: Any) -> Any:
    """The real array(s) behind tracers, recursively through tuples, lists and dicts."""
    if isinstance(x, Tracer):
        return x._real
    if isinstance(x, Hyper):
        return x.real  # a plain float: NumPy treats it as a Python scalar, as in eager mode
    if isinstance(x, tuple):
        return tuple(real(i) for i in x)
    if isinstance(x, list):
        return [real(i) for i in x]
    if isinstance(x, dict):
        return {k: real(v) for k, v in x.items()}
    return x


class Tracer(np.ndarray):
    """An array that records the NumPy calls made on it (see the module docstring)."""

    _var: str | None
    _real: np.ndarray
    _scalar: bool  # NumPy would hold a scalar here (a 0-d result): `+=` rebinds, as eager
    _rec: Recorder

    def __array_finalize__(self, obj: Any) -> None:
        # Views made by ndarray methods the tracer does not override have no variable:
        # using one in a recorded call raises (Recorder.fmt), never a silent constant.
        self._var = None
        self._scalar = False

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        rec = self._rec
        out = kwargs.get("out")
        result = getattr(ufunc, method)(*real(inputs), **real(kwargs))
        if out is not None or method == "at":
            targets = out if out is not None else inputs[:1]
            for t in targets:
                if not isinstance(t, Tracer):
                    raise TraceError(
                        f"chainrule.compile: {ufunc.__name__} writes into an array the trace "
                        f"does not follow at {user_line()}; pass it as an argument or keep it "
                        "as optimiser/module state."
                    )
            code = ufunc_code(rec, ufunc, method, inputs, kwargs)
            writes = tuple(t._var for t in targets)
            rec.emit(code, (), writes)
            if method == "at":
                return None
            return targets[0] if len(targets) == 1 else tuple(targets)
        hint = SHORT_NAMES.get(ufunc.__name__, ufunc.__name__[:5])
        return rec.result(result, hint, ufunc_code(rec, ufunc, method, inputs, kwargs))

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        rec = self._rec
        name = func.__name__
        result = func(*real(args), **real(kwargs))
        if name in _STATIC:
            return result
        if name == "copyto":
            rec.emit(f"np.copyto({rec.fmt_call(args, kwargs)})", (), (rec.fmt(args[0]),))
            return None
        for a in (*args, *kwargs.values()):  # a function that hands back its input
            if isinstance(a, Tracer) and result is a._real:
                return a
        reduce = as_reduce(func, args, kwargs)
        if reduce is not None:
            return rec.result(result, reduce[0][3:6], reduce[1])
        fn = f"np.{name}" if getattr(np, name, None) is func else rec.const(func, "f")
        return rec.result(
            result, SHORT_NAMES.get(name, name[:5]), f"{fn}({rec.fmt_call(args, kwargs)})"
        )

    # -- methods and attributes --------------------------------------------------------------

    def _method(self, name: str, *args: Any, **kwargs: Any) -> Any:
        rec = self._rec
        result = getattr(self._real, name)(*real(args), **real(kwargs))
        if result is self._real:
            return self
        reduce = as_reduce(getattr(np, name, None), (self, *args), kwargs)
        if reduce is not None:
            return rec.result(result, reduce[0][3:6], reduce[1])
        code = f"{rec.fmt(self)}.{name}({rec.fmt_call(args, kwargs)})"
        if result is None:  # fill, sort, put: in place
            rec.emit(code, (), (self._var or "",))
            return None
        return rec.result(result, name[:5], code)

    def reshape(self, *a: Any, **k: Any) -> Any:
        return self._method("reshape", *a, **k)

    def astype(self, *a: Any, **k: Any) -> Any:
        return self._method("astype", *a, **k)

    def copy(self, *a: Any, **k: Any) -> Any:
        return self._method("copy", *a, **k)

    def view(self, *a: Any, **k: Any) -> Any:
        if not a and not k:
            return self._method("view")
        if len(a) == 1 and isinstance(a[0], type) and issubclass(a[0], np.ndarray):
            return super().view(*a)  # Recorder.tracer: a plain view of the real array
        return self._method("view", *a, **k)

    def take(self, *a: Any, **k: Any) -> Any:
        return self._method("take", *a, **k)

    def transpose(self, *a: Any) -> Any:
        return self._method("transpose", *a)

    def ravel(self, *a: Any) -> Any:
        return self._method("ravel", *a)

    def flatten(self, *a: Any) -> Any:
        return self._method("flatten", *a)

    def squeeze(self, *a: Any, **k: Any) -> Any:
        return self._method("squeeze", *a, **k)

    def swapaxes(self, *a: Any) -> Any:
        return self._method("swapaxes", *a)

    def fill(self, value: Any) -> None:
        self._method("fill", value)

    def sum(self, *a: Any, **k: Any) -> Any:
        return self._method("sum", *a, **k)

    def mean(self, *a: Any, **k: Any) -> Any:
        return self._method("mean", *a, **k)

    def max(self, *a: Any, **k: Any) -> Any:
        return self._method("max", *a, **k)

    def min(self, *a: Any, **k: Any) -> Any:
        return self._method("min", *a, **k)

    def all(self, *a: Any, **k: Any) -> Any:
        return self._method("all", *a, **k)

    def any(self, *a: Any, **k: Any) -> Any:
        return self._method("any", *a, **k)

    def argmax(self, *a: Any, **k: Any) -> Any:
        return self._method("argmax", *a, **k)

    def dot(self, *a: Any, **k: Any) -> Any:
        return self._method("dot", *a, **k)

    def clip(self, *a: Any, **k: Any) -> Any:
        return self._method("clip", *a, **k)

    def __copy__(self) -> Any:
        return self._method("copy")

    @property
    def T(self) -> Any:
        return self._rec.result(self._real.T, "T", f"{self._rec.fmt(self)}.T")

    @property
    def mT(self) -> Any:
        return self._rec.result(self._real.mT, "mT", f"{self._rec.fmt(self)}.mT")

    @property
    def base(self) -> Any:
        # What the engine asks to know whether an array owns its memory: the real answer.
        return self._real.base

    def __getitem__(self, idx: Any) -> Any:
        rec = self._rec
        result = self._real[real(idx)]
        return rec.result(result, "item", f"{rec.fmt(self)}[{rec.fmt_index(idx)}]")

    def __setitem__(self, idx: Any, value: Any) -> None:
        rec = self._rec
        self._real[real(idx)] = real(value)
        code = f"{rec.fmt(self)}[{rec.fmt_index(idx)}] = {rec.fmt(value)}"
        rec.emit(code, (), (self._var or "",))

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    # In place on a NumPy scalar is a new value in eager mode (scalars are immutable).
    def _inplace(self, op: str, other: Any) -> Any:
        if self._scalar:
            return getattr(np.ndarray, f"__{op}__")(self, other)
        return getattr(np.ndarray, f"__i{op}__")(self, other)

    def __iadd__(self, other: Any) -> Any:  # type: ignore[misc]
        return self._inplace("add", other)

    def __isub__(self, other: Any) -> Any:  # type: ignore[misc]
        return self._inplace("sub", other)

    def __imul__(self, other: Any) -> Any:  # type: ignore[misc]
        return self._inplace("mul", other)

    def __itruediv__(self, other: Any) -> Any:  # type: ignore[misc]
        return self._inplace("truediv", other)

    # -- values: what a trace cannot see -------------------------------------------------------

    def __bool__(self) -> bool:
        value = bool(self._real)
        self._escape("bool", value)
        return value

    def __float__(self) -> float:
        value = float(self._real)
        self._escape("float", value)
        return value

    def __int__(self) -> int:
        value = int(self._real)
        self._escape("int", value)
        return value

    def __index__(self) -> int:
        value = self._real.__index__()
        self._escape("int", value)
        return value

    def item(self, *a: Any) -> Any:
        value = self._real.item(*a)
        self._escape("item", value)
        return value

    def tolist(self) -> Any:
        value = self._real.tolist()
        self._escape("tolist", value)
        return value

    def _escape(self, what: str, value: Any) -> None:
        """A traced value becomes a Python value: a guard in the engine, an error in user code."""
        site = engine_site()
        rec = self._rec
        if site is not None and what == "bool":
            rec.guard(f"{'not ' if value else ''}{rec.fmt(self)}")
            return
        if site is not None and what == "float" and site in _FINITE_CHECKS:
            # The engine asks only whether the loss is finite (it then redoes the rows that
            # are not): the program checks the same, and runs the step eagerly otherwise.
            ok = math.isfinite(value)
            rec.guard(f"{'not ' if ok else ''}math.isfinite({rec.fmt(self)})")
            return
        where_ = user_line() if site is None else f"{site[0]}.{site[1]} (chainrule)"
        raise TraceError(
            f"chainrule.compile: `{what}()` of a traced tensor at {where_} turns a tensor value "
            "into a Python value, so what follows depends on the data and a trace cannot "
            "replay it. Inside a compiled step, keep values as tensors: return the tensor and "
            "convert it outside (`loss = step(x, y); print(loss.item())`), pass the value in "
            "as an argument, or call the step without chainrule.compile."
        )


# Engine functions that convert a traced value only to test it with math.isfinite.
_FINITE_CHECKS = {("chainrule.tensor.ops.loss", "_cross_entropy")}
