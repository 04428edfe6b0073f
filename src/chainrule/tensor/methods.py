"""Tensor's operators and array methods: each one is a recorded primitive from ``ops``.

Names and arguments follow NumPy (``axis``, ``keepdims``, ``transpose(*axes)``), with
PyTorch's spellings accepted where users expect them (``dim``, ``keepdim``, ``permute``,
``unsqueeze``). ``Tensor`` inherits these methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from chainrule.tensor import backend, dtypes, ops
from chainrule.tensor.torch_methods import TorchMethods

if TYPE_CHECKING:
    from chainrule.tensor.tensor import Tensor

Axis = int | tuple[int, ...] | None


def _axis(axis: Axis, dim: Axis, op: str) -> Axis:
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{op}: give axis= or dim=, not both")
        return dim
    return axis


def _shape_args(shape: tuple[Any, ...]) -> tuple[int, ...]:
    """Accept ``f(2, 3)`` and ``f((2, 3))``, as NumPy and PyTorch do."""
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        return tuple(shape[0])
    return tuple(shape)


def _index(index: Any, like: Any = None) -> Any:
    """Indices may hold Tensors (of ints or bools): use their arrays. A list becomes an
    array of the library of ``like`` (an array), NumPy by default."""
    if hasattr(index, "_data"):
        return index._data
    if isinstance(index, tuple):
        return tuple(i._data if hasattr(i, "_data") else i for i in index)
    if isinstance(index, list):
        if like is None or isinstance(like, np.ndarray):
            return np.asarray(index)
        return backend.array_namespace(like).asarray(index)
    return index


_NUMBERS = (int, float, bool, np.generic)


def _operand(other: Any, op: str) -> Any:
    """Check an arithmetic operand: a Tensor, a number or a numeric NumPy array."""
    if hasattr(other, "_data") or isinstance(other, _NUMBERS):
        return other
    if backend.is_library_array(other) and not isinstance(other, np.ndarray):
        return other  # another array library's array (the operation checks the library)
    if isinstance(other, np.ndarray) and other.dtype.kind in "biuf":
        return other
    raise TypeError(
        f"{op}: unsupported operand of type {type(other).__name__}"
        + (f" (dtype {other.dtype})" if isinstance(other, np.ndarray) else "")
        + "; use a Tensor, a number or a numeric NumPy array (wrap lists: Tensor([...]))."
    )


def _cast(x: Any, dtype: np.dtype[Any]) -> Any:
    if hasattr(x, "_data"):
        return x if x._data.dtype == dtype else ops.astype(x, dtype)
    if isinstance(x, np.ndarray):
        return x.astype(dtype, copy=False)
    if isinstance(x, np.generic):
        return x.item()  # a Python number: NumPy then keeps the tensor's dtype
    return x


def _pair(x: Any, y: Any, op: str, true_division: bool = False) -> tuple[Any, Any]:
    """The operands of ``x op y``, cast where NumPy's promotion differs from PyTorch's.

    PyTorch (``dtypes.result_type``): a float32 tensor times an int64 tensor stays float32
    (NumPy: float64); an int tensor times 2.5 gives the default float dtype (NumPy:
    float64); int / int is a float division in the default dtype.
    """
    y = _operand(y, op)
    if type(x._data) is not np.ndarray and not isinstance(x._data, np.ndarray):
        return x, y  # another array library: its own (the standard's) type promotion
    xd = x._data.dtype  # x is the Tensor whose method runs
    yd = getattr(y, "_data", y)
    # The common cases need no cast: equal dtypes, or a float tensor and a Python number.
    if not true_division:
        if getattr(yd, "dtype", None) is xd:
            return x, y
        if type(y) is float and xd.kind == "f":
            return x, y
        if type(y) is int and xd.kind in "iuf":
            return x, y
    elif xd.kind == "f" and (
        type(y) is float or type(y) is int or getattr(yd, "dtype", None) is xd
    ):
        return x, y  # a float tensor divided by a number or by its own dtype: no cast
    if backend.is_library_array(yd) and not backend.is_numpy(yd):
        return x, y  # two libraries: the operation raises, naming both
    want = dtypes.result_type(x, y)
    if true_division and want.kind != "f":
        want = dtypes.get_default_dtype()
    return _cast(x, want), _cast(y, want)


def _matmul_pair(x: Any, y: Any) -> tuple[Any, Any]:
    """As PyTorch, a matrix product does not promote: both operands need one dtype."""
    y = _operand(y, "matmul")
    xd = x._data.dtype  # x is the Tensor whose method runs
    yd = getattr(getattr(y, "_data", y), "dtype", None)  # (an array of any library)
    if yd is None:
        yd = np.asarray(y).dtype  # a number
    if xd != yd:
        raise RuntimeError(
            f"matmul: both operands must have the same dtype, got {xd} and {yd} (as in "
            f"PyTorch, a matrix product does not promote); convert one, e.g. x.to({yd}) or "
            "x.float()."
        )
    return x, y


# chainrule.tensor.tensor.Tensor, set by that module (an import cycle): the operators'
# fast path (two tensors of one dtype need no promotion) tests for it.
_Tensor: Any = None


class TensorMethods(TorchMethods):
    """Operators and methods shared by every Tensor."""

    __slots__ = ()

    # -- arithmetic: numbers, arrays and tensors on either side ---------------------------

    def __add__(self, other: Any) -> Tensor:
        if isinstance(other, _Tensor) and other._data.dtype is self._data.dtype:
            return ops.add(self, other)  # type: ignore[no-any-return]  # (no cast: fast)
        return ops.add(*_pair(self, other, "add"))  # type: ignore[no-any-return]

    def __radd__(self, other: Any) -> Tensor:
        y, x = _pair(self, other, "add")
        return ops.add(x, y)  # type: ignore[no-any-return]

    def __sub__(self, other: Any) -> Tensor:
        if isinstance(other, _Tensor) and other._data.dtype is self._data.dtype:
            return ops.subtract(self, other)  # type: ignore[no-any-return]  # (no cast: fast)
        return ops.subtract(*_pair(self, other, "sub"))  # type: ignore[no-any-return]

    def __rsub__(self, other: Any) -> Tensor:
        y, x = _pair(self, other, "sub")
        return ops.subtract(x, y)  # type: ignore[no-any-return]

    def __mul__(self, other: Any) -> Tensor:
        if isinstance(other, _Tensor) and other._data.dtype is self._data.dtype:
            return ops.multiply(self, other)  # type: ignore[no-any-return]  # (no cast: fast)
        return ops.multiply(*_pair(self, other, "mul"))  # type: ignore[no-any-return]

    def __rmul__(self, other: Any) -> Tensor:
        y, x = _pair(self, other, "mul")
        return ops.multiply(x, y)  # type: ignore[no-any-return]

    def __truediv__(self, other: Any) -> Tensor:
        xd = self._data.dtype
        if type(other) is type(self) and other._data.dtype is xd and getattr(xd, "kind", "") == "f":
            # (int / int is a division in the default float dtype: _pair casts)
            return ops.divide(self, other)  # type: ignore[no-any-return]  # (no cast: fast)
        return ops.divide(*_pair(self, other, "truediv", true_division=True))  # type: ignore[no-any-return]

    def __rtruediv__(self, other: Any) -> Tensor:
        y, x = _pair(self, other, "truediv", true_division=True)
        return ops.divide(x, y)  # type: ignore[no-any-return]

    def __pow__(self, other: Any) -> Tensor:
        if isinstance(other, _Tensor) and other._data.dtype is self._data.dtype:
            return ops.power(self, other)  # type: ignore[no-any-return]  # (no cast: fast)
        return ops.power(*_pair(self, other, "pow"))  # type: ignore[no-any-return]

    def __rpow__(self, other: Any) -> Tensor:
        y, x = _pair(self, other, "pow")
        return ops.power(x, y)  # type: ignore[no-any-return]

    def __matmul__(self, other: Any) -> Tensor:
        if isinstance(other, _Tensor) and other._data.dtype is self._data.dtype:
            return ops.matmul(self, other)  # type: ignore[no-any-return]  # (nothing to check)
        return ops.matmul(*_matmul_pair(self, other))  # type: ignore[no-any-return]

    def __rmatmul__(self, other: Any) -> Tensor:
        y, x = _matmul_pair(self, other)
        return ops.matmul(x, y)  # type: ignore[no-any-return]

    def __neg__(self) -> Tensor:
        return ops.negative(self)  # type: ignore[no-any-return]

    def __pos__(self) -> Tensor:
        return self  # type: ignore[return-value]

    def __abs__(self) -> Tensor:
        return ops.absolute(self)  # type: ignore[no-any-return]

    # -- comparisons and logic: boolean tensors, no gradient ------------------------------

    def __lt__(self, other: Any) -> Tensor:
        return ops.less(self, other)  # type: ignore[no-any-return]

    def __le__(self, other: Any) -> Tensor:
        return ops.less_equal(self, other)  # type: ignore[no-any-return]

    def __gt__(self, other: Any) -> Tensor:
        return ops.greater(self, other)  # type: ignore[no-any-return]

    def __ge__(self, other: Any) -> Tensor:
        return ops.greater_equal(self, other)  # type: ignore[no-any-return]

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.equal(self, other)  # type: ignore[no-any-return]

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.not_equal(self, other)  # type: ignore[no-any-return]

    def __and__(self, other: Any) -> Tensor:
        return ops.logical_and(self, other)  # type: ignore[no-any-return]

    def __or__(self, other: Any) -> Tensor:
        return ops.logical_or(self, other)  # type: ignore[no-any-return]

    def __invert__(self) -> Tensor:
        return ops.logical_not(self)  # type: ignore[no-any-return]

    # -- elementwise functions ------------------------------------------------------------

    def exp(self) -> Tensor:
        """e^x;  d/dx e^x = e^x."""
        return ops.exp(self)  # type: ignore[no-any-return]

    def log(self) -> Tensor:
        """ln x;  d/dx ln x = 1/x."""
        return ops.log(self)  # type: ignore[no-any-return]

    def sqrt(self) -> Tensor:
        """√x;  d/dx √x = 1/(2√x)."""
        return ops.sqrt(self)  # type: ignore[no-any-return]

    def tanh(self) -> Tensor:
        """tanh x;  d/dx tanh x = 1 - tanh² x."""
        return ops.tanh(self)  # type: ignore[no-any-return]

    def sigmoid(self) -> Tensor:
        """σ(x) = 1/(1 + e^-x);  σ' = σ(1 - σ)."""
        return ops.sigmoid(self)  # type: ignore[no-any-return]

    def relu(self) -> Tensor:
        """max(x, 0);  d/dx = 𝕀[x > 0] (0 at x = 0)."""
        return ops.relu(self)  # type: ignore[no-any-return]

    def leaky_relu(self, negative_slope: float = 0.01) -> Tensor:
        """x if x > 0 else a·x;  d/dx = 1 or a."""
        return ops.leaky_relu(self, negative_slope=negative_slope)  # type: ignore[no-any-return]

    def abs(self) -> Tensor:
        """|x|;  d/dx |x| = sign(x) (0 at x = 0)."""
        return ops.absolute(self)  # type: ignore[no-any-return]

    def sin(self) -> Tensor:
        """sin x;  d/dx sin x = cos x."""
        return ops.sin(self)  # type: ignore[no-any-return]

    def cos(self) -> Tensor:
        """cos x;  d/dx cos x = -sin x."""
        return ops.cos(self)  # type: ignore[no-any-return]

    def clip(self, min: Any = None, max: Any = None) -> Tensor:
        """Limit to [min, max];  d/dx = 1 inside (bounds included), 0 outside."""
        return ops.clip(self, min=min, max=max)  # type: ignore[no-any-return]

    clamp = clip

    # -- reductions -----------------------------------------------------------------------

    def sum(self, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None,
            keepdim: bool | None = None) -> Tensor:  # fmt: skip
        """Σ over ``axis`` (all by default);  d/dx_i = 1."""
        if dim is not None:
            axis = _axis(axis, dim, "sum")
        return ops.sum(self, axis=axis, keepdims=keepdim or keepdims)  # type: ignore[no-any-return]

    def mean(self, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None,
             keepdim: bool | None = None) -> Tensor:  # fmt: skip
        """Average over ``axis``;  d/dx_i = 1/n."""
        if dim is not None:
            axis = _axis(axis, dim, "mean")
        return ops.mean(self, axis=axis, keepdims=keepdim or keepdims)  # type: ignore[no-any-return]

    def max(self, dim: Any = None, keepdim: bool = False, *, axis: Axis = None,
            keepdims: bool = False) -> Any:  # fmt: skip
        """Largest element: of all (a tensor); over ``axis=`` (NumPy's: a tensor); over
        ``dim`` (PyTorch's: ``(values, indices)``); ``max(other)``: elementwise. Ties share
        the gradient equally."""
        if dim is None:
            return ops.max(self, axis=axis, keepdims=keepdims or keepdim)
        if hasattr(dim, "_data"):
            return ops.maximum(*_pair(self, dim, "max"))
        return self._extreme("max", dim, keepdim)

    def min(self, dim: Any = None, keepdim: bool = False, *, axis: Axis = None,
            keepdims: bool = False) -> Any:  # fmt: skip
        """Smallest element: of all (a tensor); over ``axis=`` (NumPy's: a tensor); over
        ``dim`` (PyTorch's: ``(values, indices)``); ``min(other)``: elementwise. Ties share
        the gradient equally."""
        if dim is None:
            return ops.min(self, axis=axis, keepdims=keepdims or keepdim)
        if hasattr(dim, "_data"):
            return ops.minimum(*_pair(self, dim, "min"))
        return self._extreme("min", dim, keepdim)

    def var(self, axis: Axis = None, keepdims: bool = False, ddof: int = 0, *, dim: Axis = None,
            keepdim: bool | None = None) -> Tensor:  # fmt: skip
        """Variance (NumPy's: divides by n - ddof, ddof=0 by default; PyTorch's default is 1)."""
        axis = _axis(axis, dim, "var")
        return ops.var(self, axis=axis, keepdims=keepdim or keepdims, ddof=ddof)  # type: ignore[no-any-return]

    def logsumexp(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """log Σ e^x, computed stably;  d/dx = softmax(x)."""
        return ops.logsumexp(self, axis=axis, keepdims=keepdims)  # type: ignore[no-any-return]

    def softmax(self, axis: int = -1) -> Tensor:
        """e^x / Σ e^x along ``axis``, computed stably."""
        return ops.softmax(self, axis=axis)  # type: ignore[no-any-return]

    def log_softmax(self, axis: int = -1) -> Tensor:
        """x - logsumexp(x) along ``axis``, computed stably."""
        return ops.log_softmax(self, axis=axis)  # type: ignore[no-any-return]

    # -- shape ----------------------------------------------------------------------------

    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in another shape (one -1 is inferred)."""
        return ops.reshape(self, _shape_args(shape))  # type: ignore[no-any-return]

    view = reshape

    def transpose(self, *axes: Any) -> Tensor:
        """NumPy's transpose: reverse the axes, or permute them as given."""
        return ops.transpose(self, _shape_args(axes) or None)  # type: ignore[no-any-return]

    def permute(self, *axes: Any) -> Tensor:
        """Reorder the axes (PyTorch's name for NumPy's transpose with axes)."""
        return ops.transpose(self, _shape_args(axes))  # type: ignore[no-any-return]

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        axes = list(range(self.ndim))  # type: ignore[attr-defined]
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return ops.transpose(self, tuple(axes))  # type: ignore[no-any-return]

    @property
    def T(self) -> Tensor:
        """All axes reversed (the matrix transpose for 2-D)."""
        return ops.transpose(self, None)  # type: ignore[no-any-return]

    @property
    def mT(self) -> Tensor:
        """The last two axes swapped (a batch of matrix transposes)."""
        return self.swapaxes(-1, -2)

    def broadcast_to(self, *shape: Any) -> Tensor:
        """A read-only broadcast view;  its VJP sums back to this shape."""
        return ops.broadcast_to(self, _shape_args(shape))  # type: ignore[no-any-return]

    def expand(self, *shape: Any) -> Tensor:
        """PyTorch's expand: like broadcast_to, and -1 keeps that axis's size."""
        sizes = _shape_args(shape)
        lead = len(sizes) - self.ndim  # type: ignore[attr-defined]
        if lead < 0:
            raise ValueError(
                f"expand: the new shape {sizes} has fewer axes than the tensor's shape "
                f"{self.shape}; give at least {self.ndim} sizes."  # type: ignore[attr-defined]
            )
        full = tuple(
            self.shape[i - lead] if n == -1 and i >= lead else n  # type: ignore[attr-defined]
            for i, n in enumerate(sizes)
        )
        return self.broadcast_to(full)

    def squeeze(self, axis: int | tuple[int, ...] | None = None) -> Tensor:
        return ops.squeeze(self, axis=axis)  # type: ignore[no-any-return]

    def unsqueeze(self, axis: int) -> Tensor:
        return ops.expand_dims(self, axis)  # type: ignore[no-any-return]

    def __getitem__(self, index: Any) -> Tensor:
        """Basic and integer-array indexing; the gradient is scattered back with add."""
        return ops.getitem(self, _index(index, self._data))  # type: ignore[no-any-return]

    def astype(self, dtype: Any) -> Tensor:
        """A copy in another dtype; the gradient is cast back."""
        if isinstance(dtype, str | type | np.dtype):  # (else another library's dtype object)
            dtype = np.dtype(dtype)
        return ops.astype(self, dtype)  # type: ignore[no-any-return]

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def matmul(self, other: Any) -> Tensor:
        return ops.matmul(*_matmul_pair(self, other))  # type: ignore[no-any-return]
