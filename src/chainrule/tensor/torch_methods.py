"""Tensor methods under PyTorch's names and semantics (``size()``, ``view``, ``max(dim)``...).

``Tensor`` inherits these through ``TensorMethods``. Where PyTorch and NumPy disagree, the
spelling decides: ``t.max(axis=0)`` is NumPy's (a tensor), ``t.max(0)`` and ``t.max(dim=0)``
are PyTorch's (``(values, indices)``); ``t.shape`` is the shape and ``t.size()`` PyTorch's
method (``t.numel()`` counts the elements).
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from chainrule.tensor import backend, movement, ops
from chainrule.tensor import device as devices
from chainrule.tensor.primitive import defvjp, primitive

if TYPE_CHECKING:
    from chainrule.tensor.tensor import Tensor

clone = primitive(np.copy, "clone", lambda xp, x: xp.asarray(x, copy=True))
# d/dx x = 1: a copy passes the gradient through (and keeps nothing for it)
defvjp(clone, lambda g, ans, x: g, retain_inputs=(), retain_output=False)


class MaxMin(NamedTuple):
    """What ``t.max(dim)`` / ``t.min(dim)`` return, as PyTorch's ``return_types.max``."""

    values: Tensor
    indices: Tensor


_TYPE_NAMES = {
    "float16": "HalfTensor",
    "float32": "FloatTensor",
    "float64": "DoubleTensor",
    "int8": "CharTensor",
    "int16": "ShortTensor",
    "int32": "IntTensor",
    "int64": "LongTensor",
    "uint8": "ByteTensor",
    "bool": "BoolTensor",
}
_NAMED_TYPES = {name: np.dtype(dt) for dt, name in _TYPE_NAMES.items()}


def _wrap(array: Any) -> Tensor:
    from chainrule.tensor.tensor import Tensor

    return Tensor._wrap(np.asarray(array))


class TorchMethods:
    """Methods PyTorch programs call; mixed into ``Tensor`` (see the module doc)."""

    __slots__ = ()
    _data: np.ndarray

    # -- shape and size ---------------------------------------------------------------------

    def size(self, dim: int | None = None) -> Any:
        """PyTorch's ``size()``: the shape (a tuple), or the length of axis ``dim``."""
        return self._data.shape if dim is None else self._data.shape[dim]

    def numel(self) -> int:
        """The number of elements."""
        return int(self._data.size)

    def dim(self) -> int:
        """The number of axes (``ndim``)."""
        return int(self._data.ndim)

    def nelement(self) -> int:
        return int(self._data.size)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Axes ``start_dim..end_dim`` merged into one (all of them by default)."""
        shape = self._data.shape
        if not shape:
            return ops.reshape(self, (1,))  # type: ignore[no-any-return]
        start, end = start_dim % len(shape), end_dim % len(shape)
        merged = (*shape[:start], -1, *shape[end + 1 :])
        return ops.reshape(self, merged)  # type: ignore[no-any-return]

    def t(self) -> Tensor:
        """The transpose of a matrix (a vector is returned as it is), as PyTorch's ``t()``."""
        if self._data.ndim > 2:
            raise ValueError(
                f"t: expects a tensor with at most 2 axes, got shape {self._data.shape}; use "
                ".transpose(a, b) or .mT for batches of matrices."
            )
        return ops.transpose(self, None)  # type: ignore[no-any-return]

    def mm(self, other: Any) -> Tensor:
        """The matrix product of two 2-D tensors (PyTorch's ``mm``)."""
        if self._data.ndim != 2 or np.ndim(getattr(other, "_data", other)) != 2:
            raise ValueError(
                f"mm: both operands must be matrices (2-D), got shapes {self._data.shape} and "
                f"{np.shape(getattr(other, '_data', other))}; use matmul (@) for other shapes."
            )
        return self @ other  # type: ignore[no-any-return]

    # -- values and copies ----------------------------------------------------------------

    def pow(self, exponent: Any) -> Tensor:
        """x^y;  d/dx = y x^(y-1), d/dy = x^y ln x."""
        return self**exponent  # type: ignore[no-any-return]

    def clone(self) -> Tensor:
        """A copy with its own memory; the gradient flows back to this tensor."""
        return clone(self)  # type: ignore[no-any-return]

    def amax(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """The largest element over ``dim`` (a tensor, without indices)."""
        return ops.max(self, axis=dim, keepdims=keepdim)  # type: ignore[no-any-return]

    def amin(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return ops.min(self, axis=dim, keepdims=keepdim)  # type: ignore[no-any-return]

    def _extreme(self, which: str, dim: int, keepdim: bool) -> MaxMin:
        if self._data.ndim == 0:
            dim_ok = dim in (0, -1)
        else:
            dim_ok = -self._data.ndim <= dim < self._data.ndim
        if not dim_ok:
            raise IndexError(
                f"{which}: dim {dim} is out of range for a tensor of shape {self._data.shape}."
            )
        # The values are gathered at the indices, so the gradient goes to that one element
        # (PyTorch's max(dim); amax shares it among ties instead).
        xp = backend.array_namespace(self._data)  # (NumPy, or the data's own library)
        pick = xp.argmax if which == "max" else xp.argmin
        if self._data.ndim == 0:
            return MaxMin(
                ops.reshape(self, ()), _wrap(xp.zeros((), dtype=xp.int64, **backend.on(self)))
            )
        dim %= self._data.ndim
        indices = xp.astype(xp.expand_dims(pick(self._data, axis=dim), axis=dim), xp.int64)
        index: list[Any] = [  # 0..n-1 along each axis (NumPy's np.indices(sparse=True))
            xp.reshape(
                xp.arange(n, **backend.on(self)),
                tuple(-1 if a == k else 1 for a in range(indices.ndim)),
            )
            for k, n in enumerate(indices.shape)
        ]
        index[dim] = indices
        values = ops.getitem(self, tuple(index))
        if not keepdim:
            values, indices = ops.squeeze(values, axis=dim), xp.squeeze(indices, axis=dim)
        return MaxMin(values, _wrap(indices))

    def argmax(self, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None
               ) -> Tensor:  # fmt: skip
        """Index of the largest element (over ``dim``, or of the flattened tensor)."""
        d = axis if dim is None else dim
        out = np.asarray(np.argmax(self._data, axis=d, keepdims=keepdim)).astype(np.int64)
        return _wrap(out)

    def argmin(self, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None
               ) -> Tensor:  # fmt: skip
        d = axis if dim is None else dim
        out = np.asarray(np.argmin(self._data, axis=d, keepdims=keepdim)).astype(np.int64)
        return _wrap(out)

    # -- dtypes and devices ---------------------------------------------------------------

    def type(self, dtype: Any = None) -> Any:
        """Without an argument, the type name (``'chainrule.FloatTensor'``); with a dtype or
        a name such as ``'torch.DoubleTensor'``, a copy in that dtype."""
        if dtype is None:
            return f"chainrule.{_TYPE_NAMES.get(self._data.dtype.name, 'Tensor')}"
        if isinstance(dtype, str) and dtype.rsplit(".", 1)[-1] in _NAMED_TYPES:
            dtype = _NAMED_TYPES[dtype.rsplit(".", 1)[-1]]
        return ops.astype(self, np.dtype(dtype))

    def long(self) -> Tensor:
        return ops.astype(self, np.dtype(np.int64))  # type: ignore[no-any-return]

    def int(self) -> Tensor:
        return ops.astype(self, np.dtype(np.int32))  # type: ignore[no-any-return]

    def bool(self) -> Tensor:
        return ops.astype(self, np.dtype(np.bool_))  # type: ignore[no-any-return]

    def half(self) -> Tensor:
        return ops.astype(self, np.dtype(np.float16))  # type: ignore[no-any-return]

    @property
    def device(self) -> devices.device:
        """Where the data lives: ``device('cpu')`` for NumPy, ``device('cuda', N)`` for a
        CuPy array on GPU N (see ``chainrule.tensor.device``)."""
        return devices.device_of(self._data)

    @property
    def is_cuda(self) -> builtins.bool:
        return devices.device_of(self._data).type == "cuda"

    @property
    def is_cpu(self) -> builtins.bool:
        return devices.device_of(self._data).type == "cpu"

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(other_tensor)``: this
        tensor itself when nothing changes, else a copy on that device and in that dtype.

        Both are recorded: the gradient flows back to this tensor (to its device, in its
        dtype). An unavailable device raises an error naming what to install.
        """
        dev, dtype = movement.parse_to(args, kwargs, "Tensor.to")
        out: Tensor = self  # type: ignore[assignment]
        dt = None if dtype is None else np.dtype(dtype)
        if dt is not None and type(out._data) is np.ndarray and dt != out._data.dtype:
            out = ops.astype(out, dt)  # cast where NumPy computes, before a move
        if dev is not None:
            out = movement.tensor_to(out, dev, "Tensor.to")
        if dt is not None and devices.host_dtype(out._data) != dt:
            out = ops.astype(out, dt)
        return out

    def cpu(self) -> Tensor:
        """This tensor in host memory (NumPy): itself when it is there already, else a copy
        (recorded: the gradient goes back to the device)."""
        return movement.tensor_to(self, devices.CPU, "Tensor.cpu")  # type: ignore[arg-type]

    def cuda(self, device: Any = None, non_blocking: builtins.bool = False) -> Tensor:
        """This tensor on GPU ``device`` (an index or ``'cuda:N'``; the current GPU by
        default). Raises, naming the extra to install, when CuPy or a GPU is missing."""
        if device is None:
            dev = devices.device("cuda")
        elif isinstance(device, int) and not isinstance(device, builtins.bool):
            dev = devices.device("cuda", device)
        else:
            dev = devices.device(device)
        return movement.tensor_to(self, dev, "Tensor.cuda")  # type: ignore[arg-type]

    # -- in-place arithmetic (not recorded; the version counter catches misuse) -----------

    def add_(self, other: Any, *, alpha: Any = 1) -> Tensor:
        """self += alpha * other, in place."""
        y = _scaled(other, alpha)
        return self._inplace("add_", lambda a: np.add(a, y, out=a))  # type: ignore[attr-defined, no-any-return]

    def sub_(self, other: Any, *, alpha: Any = 1) -> Tensor:
        """self -= alpha * other, in place."""
        y = _scaled(other, alpha)
        return self._inplace("sub_", lambda a: np.subtract(a, y, out=a))  # type: ignore[attr-defined, no-any-return]

    def mul_(self, other: Any) -> Tensor:
        """self *= other, in place."""
        y = _scaled(other, 1)
        return self._inplace("mul_", lambda a: np.multiply(a, y, out=a))  # type: ignore[attr-defined, no-any-return]

    def div_(self, other: Any) -> Tensor:
        """self /= other, in place."""
        y = _scaled(other, 1)
        return self._inplace("div_", lambda a: np.divide(a, y, out=a))  # type: ignore[attr-defined, no-any-return]

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:
        return self._inplace("clamp_", lambda a: np.clip(a, min, max, out=a))  # type: ignore[attr-defined, no-any-return]


def _scaled(other: Any, alpha: Any) -> Any:
    y = getattr(other, "_data", other)
    return y if alpha == 1 else y * alpha
