"""Stand-ins used while tracing: generators that record draws, converters that keep tracers.

Random draws are part of the program: a Generator that records what it draws.

A ``TracingGenerator`` shares the bit generator of the real one, so a draw made while
tracing advances the real stream exactly as eager mode would; it also records the call
(``rand1 = _default_generator().random((100, 16))``), so the program draws fresh numbers
from the same generator on every call: the same masks as eager mode from the same seed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from chainrule.compile.tracer import Recorder, Tracer, real
from chainrule.tensor.ops import elementwise

_DRAWS = ("random", "standard_normal", "normal", "uniform", "integers", "permutation",
          "choice", "binomial", "exponential")  # fmt: skip


class TracingGenerator(np.random.Generator):
    """Draws from ``gen``'s stream and records each draw as a line of the program."""

    def __init__(self, gen: np.random.Generator, rec: Recorder, fetch: str) -> None:
        super().__init__(gen.bit_generator)
        self._rec = rec
        self._fetch = fetch  # how the program finds the real generator on each call

    def _draw(self, method: str, *args: Any, **kwargs: Any) -> Any:
        rec = self._rec
        result = getattr(np.random.Generator, method)(self, *real(args), **real(kwargs))
        code = f"{self._fetch}.{method}({rec.fmt_call(args, kwargs)})"
        if not isinstance(result, np.ndarray | np.generic):
            result = np.asarray(result)  # a single draw: an array in the program too
            code = f"np.asarray({code})"
        out = rec.tracer(result, rec.name(method[:4]))
        assert out._var is not None
        rec.emit(f"{out._var} = {code}", (out._var,), effect=True)
        return out

    def shuffle(self, x: Any, axis: int = 0) -> None:
        if not isinstance(x, Tracer):
            np.random.Generator.shuffle(self, x, axis)
            return
        rec = self._rec
        np.random.Generator.shuffle(self, x._real, axis)
        rec.emit(f"{self._fetch}.shuffle({rec.fmt(x)}, {axis!r})", (), (x._var or "",), effect=True)


def _make(method: str) -> Any:
    def draw(self: TracingGenerator, *args: Any, **kwargs: Any) -> Any:
        return self._draw(method, *args, **kwargs)

    draw.__name__ = method
    return draw


for _m in _DRAWS:
    setattr(TracingGenerator, _m, _make(_m))


@contextlib.contextmanager
def conversions_traced() -> Iterator[None]:
    """Let ``np.asarray`` & co. keep tracers (they would copy them to plain arrays, which
    the trace could not follow). Only for the duration of a trace."""
    saved = {n: getattr(np, n) for n in ("asarray", "asanyarray", "ascontiguousarray", "array")}

    def converter(name: str) -> Any:
        orig = saved[name]

        def convert(a: Any, *args: Any, **kwargs: Any) -> Any:
            if not isinstance(a, Tracer):
                return orig(a, *args, **kwargs)
            result = orig(a._real, *args, **kwargs)
            if result is a._real and not a._scalar:
                return a
            rec = a._rec
            return rec.result(result, "arr", f"np.{name}({rec.fmt_call((a, *args), kwargs)})")

        return convert

    select = getattr(elementwise, "_select", None)
    try:
        for n in saved:
            setattr(np, n, converter(n))
        if select is not None:
            elementwise._select = _traced_select(select)
        yield
    finally:
        for n, f in saved.items():
            setattr(np, n, f)
        if select is not None:
            elementwise._select = select


def _traced_select(select: Any) -> Any:
    """The ReLU rule's ``where(mask, g, 0)`` through the bits, recorded as one line.

    The engine's own function (mask -> ints -> -1/0 -> AND with g's bits) is the fastest
    way NumPy has to do it on its own (``np.where`` is 10x slower on large arrays). The
    program does it in one NumPy call: g's bits times the mask (True is 1) keeps each
    float's bits or gives 0, the bits of +0.0, so inf and nan become +0.0 where the mask
    is off, the same bits as the engine's. The line reads as the lecture's 𝕀[f > 0] ⊙ g.
    The views take dtype objects from the program's namespace (``_dtype_int32``): a
    ``.view(np.int32)`` pays an attribute read and a type-to-dtype conversion per call.
    """

    def traced(g: Any, mask: Any) -> Any:
        if not isinstance(g, Tracer) or not isinstance(mask, Tracer) or g._scalar:
            return select(g, mask)
        rec = g._rec
        result = select(g._real, mask._real)  # the eager computation, bit for bit
        ints = _SAME_SIZE_INT.get(g.dtype.itemsize)
        if (
            mask.dtype != np.bool_
            or g.dtype.kind != "f"
            or ints is None
            or not _same_layout(result, np.multiply(g._real.view(ints), mask._real))
        ):  # (the layout too: later reductions sum in memory order)
            fn = rec.const(select, "relu_select")
            code = f"{fn}({rec.fmt(g)}, {rec.fmt(mask)})  # g where the mask is set, else +0.0"
        else:
            code = (
                f"np.multiply({rec.fmt(g)}.view(_dtype_{ints}), {rec.fmt(mask)})"
                f".view(_dtype_{g.dtype.name})  # g where the mask is set, else +0.0"
            )
        return rec.result(result, "relu_g", code)

    return traced


_SAME_SIZE_INT = {2: "int16", 4: "int32", 8: "int64"}  # float16/32/64 -> its bits


def _same_layout(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.strides == b.strides
