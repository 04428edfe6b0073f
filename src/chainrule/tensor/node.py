"""What a primitive's backward rules do not read: kept as a shape and a dtype, nothing more.

Each primitive declares what its rules read (``retain_inputs=``, ``retain_output=`` of
``defvjp``, in the style of Chainer's ``retain_inputs``/``retain_outputs``). The engine
keeps those arrays for the backward pass and, in place of every other input tensor (and of
the output when it is not retained), a ``NotSaved``: its ``shape``, ``dtype`` and ``ndim``
are there, so that rules such as ``reshape``'s (``g.reshape(x.shape)``) still work, while
the array itself can be freed as soon as the user drops it. Any other use raises a
TypeError naming the operation: the primitive's declaration is then wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

if TYPE_CHECKING:
    from chainrule.tensor.primitive import Primitive


class NotSaved:
    """Stands in for an array that a primitive declared its rules do not read.

    Made without ``__init__`` on the hot path (``Primitive.__call__``); ``role`` is the
    input's position, or -1 for the output.
    """

    __slots__ = ("dtype", "prim", "role", "shape")

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    prim: Primitive
    role: int

    @staticmethod
    def make(shape: tuple[int, ...], dtype: np.dtype[Any], prim: Primitive, role: int) -> NotSaved:
        p = _new(NotSaved)
        p.shape, p.dtype, p.prim, p.role = shape, dtype, prim, role
        return p

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        if not self.shape:
            self._misuse("len()")
        return self.shape[0]

    def _misuse(self, what: str) -> NoReturn:
        prim = self.prim
        if self.role < 0:
            which, fix = "its output", "retain_output=True"
        else:
            which = f"its input {self.role}"
            kept = tuple(prim.retain_inputs or ())
            fix = f"retain_inputs={tuple(sorted({*kept, self.role}))}"
        raise TypeError(
            f"{prim.name}: its backward rule used {which} (shape {self.shape}, {self.dtype}) "
            f"through {what}, but the primitive's declaration says its rules read only its "
            "shape and dtype, so the array was not kept for the backward pass. The "
            f"declaration of '{prim.name}' is wrong: register its rules with {fix} "
            "(defvjp, defvjp_argnum or defvjp_argnums)."
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # protocols (copy, NumPy's __array_interface__) fall back
            raise AttributeError(name)
        self._misuse(f".{name}")

    def __array_ufunc__(self, ufunc: Any, method: str, *args: Any, **kwargs: Any) -> NoReturn:
        self._misuse(f"np.{ufunc.__name__}")  # also ndarray * this: NumPy asks us first

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> NoReturn:
        self._misuse("conversion to an array")

    def __repr__(self) -> str:
        return f"NotSaved({self.prim.name}, shape={self.shape}, dtype={self.dtype})"

    __hash__ = object.__hash__


def _raiser(name: str) -> Any:
    def misuse(self: NotSaved, *args: Any, **kwargs: Any) -> NoReturn:
        self._misuse(name)

    misuse.__name__ = name
    return misuse


# Every operator an array has: a rule that computes with an unsaved value fails loudly.
_BINARY = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor")
_OTHER = ("neg", "pos", "abs", "invert", "eq", "ne", "lt", "le", "gt", "ge", "bool", "float")
_MORE = ("int", "index", "getitem", "setitem", "iter", "contains", "lshift", "rshift")
for _op in (*_BINARY, *(f"r{op}" for op in _BINARY), *_OTHER, *_MORE):
    setattr(NotSaved, f"__{_op}__", _raiser(f"__{_op}__"))
del _op

_new = object.__new__
