"""Learning rates while tracing: read by the program on each call unless Python used them."""

from __future__ import annotations

from typing import Any


class Hyper(float):
    """A learning rate while tracing: a float that the program reads afresh on each call.

    Schedulers change ``lr`` every epoch; baked into the lines, each change would mean a
    new trace. Passed straight to a NumPy call (SGD's ``np.multiply(g, lr, out=tmp)``),
    the line reads ``opt.param_groups[0]['lr']`` instead. Any Python use (arithmetic,
    comparison, conversion) marks it ``used``: then the trace may have baked in something
    derived from it, and the program checks that it is unchanged (a guard) instead.
    """

    expr: str
    used: bool

    def __new__(cls, value: float, expr: str) -> Hyper:
        h = super().__new__(cls, value)
        h.expr, h.used = expr, False
        return h


def _marks_used(name: str) -> Any:
    method = getattr(float, name)

    def use(self: Hyper, *args: Any) -> Any:
        self.used = True
        return method(float.__float__(self), *args)

    return use


_FLOAT_USES = [
    "__add__",
    "__radd__",
    "__sub__",
    "__rsub__",
    "__mul__",
    "__rmul__",
    "__truediv__",
    "__rtruediv__",
    "__floordiv__",
    "__rfloordiv__",
    "__mod__",
    "__pow__",
    "__rpow__",
    "__neg__",
    "__pos__",
    "__abs__",
    "__eq__",
    "__ne__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__bool__",
    "__float__",
    "__int__",
    "__round__",
    "__trunc__",
    "__repr__",
    "__str__",
    "__format__",
    "__hash__",
]
for _name in _FLOAT_USES:
    setattr(Hyper, _name, _marks_used(_name))
