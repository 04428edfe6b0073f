"""``Tensor``: a NumPy array that records the operations applied to it.

A tensor computed by a recorded operation holds that operation's graph node (``_node``,
its ``grad_fn``: ``chainrule.tensor.node.Node``), which keeps what the operation's rules
read; the tensor itself is not part of the graph, so its array goes when the user drops it
unless a rule reads it. Leaves (tensors made by the user) have no node: a leaf that
requires grad is its own edge in the graph, where its gradient accumulates.
"""

from __future__ import annotations

import itertools
import operator
import weakref
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np

import chainrule.tensor.primitive as primitive  # the module (the package exports a function)
from chainrule.tensor import backend, dtypes, grad_mode, methods, movement
from chainrule.tensor import device as devices
from chainrule.tensor.methods import TensorMethods, _index
from chainrule.tensor.node import Node

_new = object.__new__
_hook_keys = itertools.count()


class RemovableHandle:
    """Returned by ``register_hook``: ``handle.remove()`` takes the hook off again."""

    def __init__(self, hooks: dict[int, Any], key: int) -> None:
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)


def _as_array(data: Any, dtype: Any, op: str) -> Any:
    """Convert user data with the dtype policy (see ``chainrule.tensor.dtypes``)."""
    if isinstance(data, Tensor):
        data = data._data
    from_numpy = isinstance(data, np.ndarray | np.generic)
    if not from_numpy and backend.is_library_array(data):
        return backend.copy_array(data, dtype, op)
    try:
        arr = np.array(data, dtype=dtype, copy=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{op}: cannot make a numeric array from {type(data).__name__} ({exc}); pass a "
            "number, a (nested) list of numbers or a NumPy array."
        ) from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{op}: tensors hold real numbers (bool, int, float), got {type(data).__name__} "
            f"of dtype {arr.dtype}; pass a real number, a (nested) list of them or a numeric "
            "NumPy array."
        )
    if dtype is None and not from_numpy and arr.dtype.kind == "f":
        arr = arr.astype(dtypes.get_default_dtype(), copy=False)  # Python floats
    return arr


class Tensor(TensorMethods):
    """An n-dimensional array with reverse-mode automatic differentiation.

    Args:
        data: a number, nested lists of numbers, or a NumPy array (copied).
        requires_grad: record operations on this tensor so that ``backward()`` can compute
            d(output)/d(this tensor) into ``.grad``. Floating-point tensors only.
        dtype: the NumPy dtype; by default float32 for Python floats, the array's own
            dtype for NumPy arrays (see ``chainrule.tensor.dtypes``).
        name: shown in error messages and pictures.

    Example:
        >>> import numpy as np
        >>> from chainrule import Tensor
        >>> W = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
        >>> h = Tensor(np.array([1.0, 0.5]))
        >>> loss = (W @ h).relu().sum()      # f = Ω h = [2, 5] > 0, so ∂ℓ/∂f = [1, 1]
        >>> loss.backward()
        >>> W.grad.numpy().tolist()          # ∂ℓ/∂Ω = ∂ℓ/∂f hᵀ
        [[1.0, 0.5], [1.0, 0.5]]
    """

    __slots__ = (
        "__weakref__",
        "_data",
        "_fp",
        "_hooks",
        "_node",
        "_requires_grad",
        "_version",
        "grad",
        "name",
    )
    __array_ufunc__ = None  # NumPy defers to Tensor's operators: ndarray * Tensor -> Tensor

    def __array_namespace__(self, api_version: str | None = None) -> Any:
        """chainrule's own array API namespace (``chainrule.tensor.array_api``): its
        functions are recorded primitives, so a rule written against the standard runs on
        Tensors too (``create_graph=True``)."""
        from chainrule.tensor import array_api

        return array_api

    _data: np.ndarray  # (or an array of another array API library: see backend)
    _requires_grad: bool
    _node: Node | None  # the graph node of the operation that made it; None for a leaf
    _version: list[int]  # [number of in-place changes, clock value of the last one]
    _hooks: dict[int, Callable[[Tensor], Any]] | None  # a leaf's (a node keeps its own)
    # A leaf is its own edge in the graph (chainrule.graph.toposort reads _prev): no parents.
    _prev: ClassVar[tuple[()]] = ()
    _fp: bytes | None  # sample of _data taken when .data/.numpy() handed it out
    grad: Tensor | None
    name: str

    def __init__(
        self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str = ""
    ) -> None:
        self._data = _as_array(data, dtype, "Tensor()")
        self._requires_grad = False
        self._node = None
        self._version = [0, 0]  # [changes, clock of the last] (mark_modified)
        self._hooks = None
        self._fp = None
        self.grad = None
        self.name = name
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _wrap(data: np.ndarray) -> Tensor:
        """A result tensor around ``data`` without copying or checks (the hot path)."""
        # (Primitive.__call__ makes its results in the same way, inline: keep them alike.)
        t = _new(Tensor)
        t._data = data
        t._requires_grad = False
        t._node = t._hooks = t._fp = t.grad = None
        t._version = [0, 0]
        t.name = ""
        return t

    @classmethod
    def from_numpy(cls, array: np.ndarray, requires_grad: bool = False) -> Tensor:
        """Wrap ``array`` without copying: the tensor and the array share memory."""
        if not isinstance(array, np.ndarray):
            raise TypeError(
                f"Tensor.from_numpy: expected a NumPy array, got {type(array).__name__}"
            )
        t = cls._wrap(array)
        primitive.mark_handed_out(t)  # the caller holds the array and may write to it
        if requires_grad:
            t.requires_grad_(True)
        return t

    # -- the array ------------------------------------------------------------------------

    @property
    def data(self) -> Tensor:
        """PyTorch's ``.data``: this tensor's values as a Tensor outside the graph.

        It shares this tensor's memory but, as in PyTorch, not its version counter. Writes
        through it are still caught: once ``.data`` (or ``.numpy()``) has handed the memory
        out, every operation that saves this tensor samples its array, and backward
        compares the sample, so ``w.data -= lr * w.grad`` between a forward pass that saved
        ``w`` and its backward raises an error instead of using the new values (a write
        that restores the saved values is harmless and passes). ``.numpy()`` gives the
        NumPy array itself.
        """
        if self._fp is None:
            primitive.mark_handed_out(self)  # reachable (and writable) from outside now
        return Tensor._wrap(self._data)

    @data.setter
    def data(self, value: Any) -> None:
        if isinstance(value, Tensor):
            self._data = value._data
        elif backend.is_library_array(value) and not isinstance(value, np.generic):
            self._data = value  # an array of any library, kept in it
        else:
            self._data = np.asarray(value)
        primitive.mark_modified(self)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def __len__(self) -> int:
        if not self._data.ndim:
            raise TypeError("len() of a 0-d tensor")
        return int(self._data.shape[0])

    def numpy(self) -> np.ndarray:
        """The NumPy array (shared memory: writing to it changes the tensor). A tensor on a
        GPU raises: copy it to the host first (``t.cpu().numpy()``). Another library's array
        in host memory (array-api-strict's on its CPU device) is given as a NumPy copy."""
        data: Any = self._data
        if type(data) is not np.ndarray and not isinstance(data, np.generic):
            if not devices.on_host(data):
                raise movement.not_on_host(self, "Tensor.numpy")
            return backend.to_numpy(data)
        if self._fp is None:
            primitive.mark_handed_out(self)
        return self._data

    def item(self) -> float | int | bool:
        """The single element as a Python number."""
        if self._data.size != 1:
            raise ValueError(
                f"Tensor.item: only a one-element tensor converts to a number; this one has "
                f"shape {self.shape}. Reduce it first (e.g. .sum() or .mean())."
            )
        return movement.host_array(self._data).item()  # type: ignore[no-any-return]

    def tolist(self) -> Any:
        return movement.host_array(self._data).tolist()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data = self._data
        if type(data) is not np.ndarray and not devices.on_host(data):
            raise movement.not_on_host(self, "np.asarray(tensor)")
        return data if dtype is None else data.astype(dtype)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        return bool(self.item())

    # Hash by identity (== is elementwise, as for arrays). object's C-level hash: graph
    # walks put every node in a set or dict, so a Python-level __hash__ would cost ~0.3 µs each.
    __hash__ = object.__hash__

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        host = movement.host_array(self._data)
        body = np.array2string(host, separator=", ", prefix="Tensor(")
        extra = (
            f", dtype={host.dtype}" if host.dtype not in (np.float32, np.int64, np.bool_) else ""
        )
        where = devices.device_of(self._data)
        if where.type != "cpu":
            extra = f", device='{where}'" + extra
        if self._node is not None:
            extra += f", grad_fn={self._node!r}"
        elif self._requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    # -- autograd -------------------------------------------------------------------------

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self.requires_grad_(flag)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Start (or stop) recording operations on this leaf tensor; returns it."""
        if flag and not dtypes.is_differentiable(devices.host_dtype(self._data)):
            raise TypeError(
                f"requires_grad: only floating-point tensors can require gradients; this one "
                f"is {self.dtype}. An integer-valued function is piecewise constant, so its "
                "derivative is 0 or undefined. Convert first: t.float() or "
                "Tensor(data, dtype=np.float32)."
            )
        if not flag and self._node is not None:
            raise RuntimeError(
                "requires_grad_(False): this tensor was computed from others; use "
                ".detach() for a copy outside the graph."
            )
        self._requires_grad = bool(flag)
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (their .grad is filled by backward)."""
        return self._node is None

    @property
    def grad_fn(self) -> Node | None:
        """The backward node of the operation that made this tensor (None for leaves), with
        PyTorch's ``name()`` and ``next_functions`` (see ``chainrule.tensor.grad_fn``)."""
        return self._node

    def detach(self) -> Tensor:
        """The same data outside the graph (shared memory and version counter)."""
        t = Tensor._wrap(self._data)
        t._version = self._version
        return t

    def retain_grad(self) -> None:
        """Keep the gradient of this non-leaf tensor in ``.grad`` after backward()."""
        if self._node is not None and self._node.retained is None:
            self._node.retained = weakref.ref(self)  # weak: the graph must not keep it

    def register_hook(self, hook: Callable[[Tensor], Any]) -> RemovableHandle:
        """Call ``hook(grad)`` when the gradient w.r.t. this tensor has been computed.

        The hook may return a tensor (or array) of the same shape to replace the gradient
        that flows on, or None to leave it. This is how to watch ∂ℓ/∂f_k pass by.
        """
        if not self._requires_grad:
            raise RuntimeError(
                "register_hook: this tensor does not require grad, so no gradient will "
                "reach it; call requires_grad_() on the leaf tensors first."
            )
        # A non-leaf's hooks live on its node: they run even after the tensor is dropped.
        owner: Tensor | Node = self if self._node is None else self._node
        hooks = owner._hooks
        if hooks is None:
            hooks = owner._hooks = {}
        key = next(_hook_keys)
        hooks[key] = hook
        return RemovableHandle(hooks, key)

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], Any]) -> RemovableHandle:
        """Call ``hook(self)`` after a backward pass has added to this leaf's ``.grad``.

        Runs at the end of a successful pass, once the gradients are stored (an optimiser
        step per parameter, or a data-parallel all-reduce of the accumulated gradient).
        """
        from chainrule.tensor.backward import register_post_accumulate_grad_hook

        return register_post_accumulate_grad_hook(self, hook)

    def backward(
        self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False
    ) -> None:
        """Add d(self)/d(leaf), times ``gradient``, to the ``.grad`` of every leaf.

        Args:
            gradient: d(out)/d(self), needed when self is not a scalar (same shape).
            retain_graph: keep the saved tensors so that backward can run again through
                this graph (it is freed otherwise). Defaults to ``create_graph``.
            create_graph: record the backward pass itself, so the gradients can be
                differentiated again (second derivatives, Hessian-vector products).

        ``.grad`` accumulates: zero it between steps (``optimizer.zero_grad()``).
        """
        if not self._requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad and has no graph; set "
                "requires_grad=True on the inputs you want gradients for, and do not "
                "compute inside no_grad()."
            )
        seed = _seed(self, gradient, "backward")
        run_backward(
            self,
            Tensor._wrap(seed) if create_graph else seed,
            retain_graph=create_graph if retain_graph is None else retain_graph,
            create_graph=create_graph,
        )

    # -- in-place updates (never recorded) ------------------------------------------------

    def _inplace(self, op: str, fn: Callable[[np.ndarray], None]) -> Tensor:
        if grad_mode._enabled.get() and self._requires_grad:
            symbol = _INPLACE_SYMBOLS.get(op)
            instead = (
                f"write x = x {symbol} y for a new tensor" if symbol else "compute a new tensor"
            )
            raise RuntimeError(
                f"{op}: an in-place change of a tensor that requires grad would corrupt its "
                f"graph; {instead}, or update parameters inside `with no_grad():`."
            )
        flags = getattr(self._data, "flags", None)  # (NumPy's; other libraries: writable)
        if flags is not None and not flags.writeable:
            raise ValueError(
                f"{op}: this tensor's array is read-only (a broadcast view?); make a copy "
                "first: t = Tensor(t.numpy())."
            )
        fn(self._data)
        primitive.mark_modified(self)
        return self

    def __iadd__(self, other: Any) -> Tensor:
        return self._inplace("__iadd__", _update(np.add, operator.iadd, other))

    def __isub__(self, other: Any) -> Tensor:
        return self._inplace("__isub__", _update(np.subtract, operator.isub, other))

    def __imul__(self, other: Any) -> Tensor:
        return self._inplace("__imul__", _update(np.multiply, operator.imul, other))

    def __itruediv__(self, other: Any) -> Tensor:
        return self._inplace("__itruediv__", _update(np.divide, operator.itruediv, other))

    def __setitem__(self, index: Any, value: Any) -> None:
        self._inplace("__setitem__", lambda a: a.__setitem__(_index(index), _raw(value)))

    def zero_(self) -> Tensor:
        return self._inplace("zero_", lambda a: a.fill(0))

    def fill_(self, value: float) -> Tensor:
        return self._inplace("fill_", lambda a: a.fill(value))

    def copy_(self, src: Any) -> Tensor:
        return self._inplace("copy_", lambda a: np.copyto(a, _raw(src)))


_INPLACE_SYMBOLS = {"__iadd__": "+", "__isub__": "-", "__imul__": "*", "__itruediv__": "/"}


def _raw(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else x


def _update(ufunc: Any, in_place: Callable[[Any, Any], Any], other: Any) -> Callable[[Any], None]:
    """``a op= other`` in place: NumPy's ufunc with ``out=`` (casts as NumPy does), or the
    in-place operator of another array library."""

    def update(a: Any) -> None:
        if isinstance(a, np.ndarray):
            ufunc(a, _raw(other), out=a)
        else:
            in_place(a, _raw(other))

    return update


def _seed(out: Tensor, gradient: Any, op: str) -> Any:
    """d(out)/d(out): ones for a scalar, else the user's ``gradient`` of out's shape."""
    data: Any = out._data
    if type(data) is not np.ndarray and not isinstance(data, np.ndarray | np.generic):
        # another array library: the seed is made by it
        return backend.seed(data, None if gradient is None else _raw(gradient), op)
    if gradient is None:
        if out._data.size != 1:
            raise RuntimeError(
                f"{op}: the output has shape {out.shape}; a gradient can only be created "
                "implicitly for a scalar output. Reduce it (out.sum().backward()) or pass "
                f"gradient= an array of shape {out.shape} (d loss / d out)."
            )
        seed = np.empty(out._data.shape, out._data.dtype)
        seed.fill(1)  # (np.ones is a Python function, three times slower for one element)
        return seed
    # A copy: the seed may reach a leaf's .grad unchanged (through +), and must not stay
    # tied to the caller's array.
    g = np.array(_raw(gradient), dtype=out.dtype, copy=True)
    if g.shape != out.shape:
        raise ValueError(
            f"{op}: gradient has shape {g.shape} but the output has shape {out.shape}; "
            "they must match."
        )
    return g


primitive._Tensor = Tensor
methods._Tensor = Tensor

# Last: the backward pass needs Tensor (a module-level name, not an import in backward()).
from chainrule.tensor.backward import run_backward  # noqa: E402
