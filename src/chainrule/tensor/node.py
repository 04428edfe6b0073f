"""The graph node of a recorded operation (``Node``, a tensor's ``grad_fn``), and what
stands in for the arrays its backward rules do not read (``NotSaved``).

Each primitive declares what its rules read (``retain_inputs=``, ``retain_output=`` of
``defvjp``, in the style of Chainer's ``retain_inputs``/``retain_outputs``). The engine
keeps those arrays for the backward pass and, in place of every other input tensor (and of
the output when it is not retained), a ``NotSaved``: its ``shape``, ``dtype`` and ``ndim``
are there, so that rules such as ``reshape``'s (``g.reshape(x.shape)``) still work, while
the array itself can be freed as soon as the user drops it. Any other use raises a
TypeError naming the operation: the primitive's declaration is then wrong.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from chainrule.tensor.grad_fn import AccumulateGrad, backward_name

if TYPE_CHECKING:
    from chainrule.tensor.primitive import Primitive


class Unsaved:
    """What ``NotSaved`` and ``Node`` share: a value's shape and dtype, and an error naming
    the op for every use of the value itself (operators, NumPy functions, the usual array
    attributes). ``role`` is the input's position, or -1 for the output.

    It defines no ``__getattr__``: that would keep Python from specialising the attribute
    reads of every ``Node`` in the backward pass (a hot path). ``NotSaved`` adds one.
    """

    __slots__ = ("dtype", "prim", "role", "shape")

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    prim: Primitive
    role: int

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

    def __array_ufunc__(self, ufunc: Any, method: str, *args: Any, **kwargs: Any) -> NoReturn:
        self._misuse(f"np.{ufunc.__name__}")  # also ndarray * this: NumPy asks us first

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> NoReturn:
        self._misuse("conversion to an array")

    __hash__ = object.__hash__


def _raiser(name: str) -> Any:
    def misuse(self: Unsaved, *args: Any, **kwargs: Any) -> NoReturn:
        self._misuse(name)

    misuse.__name__ = name
    return misuse


def _attribute(name: str) -> Any:
    def misuse(self: Unsaved) -> NoReturn:
        self._misuse(f".{name}")

    return property(misuse)


# Every operator an array has: a rule that computes with an unsaved value fails loudly.
_BINARY = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor")
_OTHER = ("neg", "pos", "abs", "invert", "eq", "ne", "lt", "le", "gt", "ge", "bool", "float")
_MORE = ("int", "index", "getitem", "setitem", "iter", "contains", "lshift", "rshift")
for _op in (*_BINARY, *(f"r{op}" for op in _BINARY), *_OTHER, *_MORE):
    setattr(Unsaved, f"__{_op}__", _raiser(f"__{_op}__"))
# The array attributes rules use (Tensor's and ndarray's), and Tensor's own array.
_ATTRIBUTES = ("T", "mT", "_data", "data", "reshape", "sum", "mean", "max", "min", "astype")
_MORE_ATTRIBUTES = ("transpose", "ravel", "flatten", "copy", "item", "tolist", "real", "size")
for _op in (*_ATTRIBUTES, *_MORE_ATTRIBUTES):
    setattr(Unsaved, _op, _attribute(_op))
del _op


class NotSaved(Unsaved):
    """Stands in for an input tensor that a primitive declared its rules do not read.

    Made without ``__init__`` on the hot path (``Primitive.__call__``).
    """

    __slots__ = ()

    @staticmethod
    def make(shape: tuple[int, ...], dtype: np.dtype[Any], prim: Primitive, role: int) -> NotSaved:
        p = _new(NotSaved)
        p.shape, p.dtype, p.prim, p.role = shape, dtype, prim, role
        return p

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # protocols (copy, NumPy's __array_interface__) fall back
            raise AttributeError(name)
        self._misuse(f".{name}")

    def __repr__(self) -> str:
        return f"NotSaved({self.prim.name}, shape={self.shape}, dtype={self.dtype})"


class _Unread:
    """What a node keeps for an input that none of its rules reads, not even as a shape
    (``add``'s, ``exp``'s: see ``primitive._unread_inputs``). The rules never touch it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNREAD"


UNREAD: Any = _Unread()

_new = object.__new__


class Node(Unsaved):
    """The backward node of one recorded operation: PyTorch's ``grad_fn``, apart from the
    tensor it made.

    It owns what the backward pass needs and nothing else: the edges to its parents' nodes
    (``_prev``: a parent's ``Node``, or the leaf tensor itself, which is where its gradient
    accumulates), the inputs and output its rule declared it reads (``saved``, ``ans``),
    the output's ``shape`` and ``dtype``, and the hooks and ``retain_grad`` of the tensor it
    made. The tensor holds only its node, so a tensor no rule reads (a linear layer's f_k,
    before its ReLU) is freed as soon as the user drops it.

    A node also stands for its output, as a ``NotSaved`` would: when the output is not
    retained, the rules get the node as ``ans`` (its shape and dtype, and an error naming
    the op for any use of the value), which saves a placeholder per operation. It compares
    by identity and is true, as a grad_fn.

    Made without ``__init__`` by ``Primitive.__call__`` (a hot path). ``residual``,
    ``where`` and ``out_version`` are set only when there is something to keep.
    """

    role = -1  # it stands for the output

    __slots__ = (
        "_hooks",
        "_prev",
        "ans",
        "args",
        "kwargs",
        "out_fp",
        "out_version",
        "parents",
        "prim",
        "residual",
        "retained",
        "saved",
        "stamp",
        "where",
    )

    _prev: list[Any] | tuple[()]  # parent edges, one per position in ``parents``
    prim: Primitive
    # The arguments as a normal backward pass passes them to the rules: the arrays of the
    # retained input tensors, a NotSaved for the other tensors (UNREAD for an input no
    # rule reads), other arguments as given. None once released.
    saved: Sequence[Any] | None
    # The same with the retained input Tensors themselves (create_graph; in-place checks).
    args: Sequence[Any]
    ans: np.ndarray | None  # the output's array when retained (else the node stands for it)
    kwargs: dict[str, Any]
    parents: Sequence[int]  # positions of the inputs that require a gradient
    # The modification clock when saved (see primitive.mark_modified), bit-inverted when a
    # saved array had been handed out, so that its sample is always compared.
    stamp: int
    residual: Any  # what a primitive_with_residual kept for its rules
    where: list[str] | None  # creation stack, under detect_anomaly()
    out_version: list[int]  # the output tensor's version counter, when it is retained
    out_fp: bytes  # a sample of the retained output, taken when its tensor handed it out
    _hooks: dict[int, Callable[[Any], Any]] | None  # register_hook of the tensor it made
    retained: weakref.ref[Any] | None  # that tensor, once it called retain_grad()

    @property
    def released(self) -> bool:
        return self.saved is None

    def release(self) -> None:
        """Drop what was saved (backward without retain_graph): its memory can go now."""
        self.saved = None
        self.args = ()
        self._prev = ()
        if self.prim.residual:
            self.residual = None
        self.ans = None  # (shape and dtype stay: a retained child still fits to them)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        return True

    # -- PyTorch's grad_fn surface --------------------------------------------------------

    @property
    def op(self) -> str:
        """chainrule's name of the operation (its primitive): ``'mul'``, ``'linear'``..."""
        return self.prim.name

    def name(self) -> str:
        """PyTorch's name of the node: ``'MulBackward0'``, ``'LinearBackward0'``..."""
        return backward_name(self.prim.name)

    @property
    def next_functions(self) -> tuple[tuple[Node | AccumulateGrad | None, int], ...]:
        """One ``(node, 0)`` per input of the operation, in order: the input's ``grad_fn``,
        an ``AccumulateGrad`` for a leaf that requires grad, None for a constant. Empty
        once a backward pass without ``retain_graph`` has freed the node."""
        if self.saved is None:
            return ()
        edges = dict(zip(self.parents, self._prev, strict=True))
        out: list[tuple[Node | AccumulateGrad | None, int]] = []
        for i in range(len(self.saved)):
            edge = edges.get(i)
            out.append((edge if edge is None or type(edge) is Node else AccumulateGrad(edge), 0))
        return tuple(out)

    @property
    def metadata(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return f"<{self.name()}>"
