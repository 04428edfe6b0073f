"""Creation functions with PyTorch's names and arguments: ``tensor``, ``zeros``, ``randn``...

Each takes ``dtype=`` (a NumPy dtype or PyTorch's name for it, ``chainrule.float64``),
``requires_grad=`` and ``device=`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``; the default
device, ``set_default_device``, when not given). Sizes are given as
``zeros(2, 3)`` or ``zeros((2, 3))``. Floats get the default dtype (float32 unless
changed with ``set_default_dtype``), integers int64, as in PyTorch. Random tensors draw
from the default generator that ``chainrule.manual_seed`` seeds.

Example:
    >>> import chainrule as torch
    >>> _ = torch.manual_seed(0)
    >>> x = torch.linspace(-1, 1, 5, requires_grad=True)
    >>> (x ** 2).sum().backward()
    >>> x.grad.tolist()
    [-2.0, -1.0, 0.0, 1.0, 2.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.tensor import device as devices
from chainrule.tensor import dtypes, movement
from chainrule.tensor.random import as_generator
from chainrule.tensor.tensor import Tensor


def _size(size: tuple[Any, ...], op: str) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], tuple | list):
        size = tuple(size[0])
    for n in size:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise TypeError(
                f"{op}: sizes must be non-negative ints, got {size!r}; e.g. {op}(2, 3) or "
                f"{op}((2, 3))."
            )
    return tuple(int(n) for n in size)


def _make(
    array: np.ndarray,
    dtype: Any,
    requires_grad: bool,
    device: Any,
    float_default: bool = True,
    op: str = "tensor",
) -> Tensor:
    """Wrap a fresh array: cast to ``dtype`` (floats to the default dtype if none), on
    ``device`` (or the default device)."""
    where = devices.target(device, op)  # raises for an unavailable device, before any work
    if dtype is not None:
        array = array.astype(np.dtype(dtype), copy=False)
    elif float_default and array.dtype.kind == "f":
        array = array.astype(dtypes.get_default_dtype(), copy=False)
    data: Any = np.ascontiguousarray(array)
    if where.type != "cpu":
        # Made on the host, then copied: random draws are the same on every device (the
        # default generator's), so a model initialised on a GPU equals one made on the CPU.
        data = devices.move(data, where)
    t = Tensor._wrap(data)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
           ) -> Tensor:  # fmt: skip
    """A new tensor holding a copy of ``data`` (a number, nested lists, an array, a tensor).

    As PyTorch: Python floats give the default float dtype, ints int64, bools bool, and a
    NumPy array keeps its dtype.
    """
    if device is None and isinstance(data, Tensor):
        where = devices.device_of(data._data)  # a copy of a tensor stays on its device
    else:
        where = devices.target(device, "tensor")
    if isinstance(data, Tensor):
        data = movement.host_array(data._data)
    t = Tensor(data, dtype=dtype)
    if where.type != "cpu":
        t = Tensor._wrap(devices.move(t._data, where))
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like ``tensor``, but a Tensor of the right dtype is returned as it is."""
    if (
        isinstance(data, Tensor)
        and (dtype is None or np.dtype(dtype) == data.dtype)
        and (device is None or devices.resolve(device, "as_tensor") == data.device)
    ):
        return data
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory (and dtype)."""
    return Tensor.from_numpy(array)


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
          ) -> Tensor:  # fmt: skip
    """A tensor of zeros of the given size."""
    return _make(np.zeros(_size(size, "zeros")), dtype, requires_grad, device, op="zeros")


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
         ) -> Tensor:  # fmt: skip
    """A tensor of ones of the given size."""
    return _make(np.ones(_size(size, "ones")), dtype, requires_grad, device, op="ones")


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
          ) -> Tensor:  # fmt: skip
    """An uninitialised tensor of the given size (its values are whatever memory held)."""
    return _make(np.empty(_size(size, "empty")), dtype, requires_grad, device, op="empty")


def full(size: Any, fill_value: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:  # fmt: skip
    """A tensor of ``fill_value``; its dtype follows the value (float, int or bool)."""
    shape = _size((size,) if not isinstance(size, tuple | list) else tuple(size), "full")
    if dtype is None:
        dtype = dtypes.result_type(fill_value)
    return _make(np.full(shape, fill_value), dtype, requires_grad, device, op="full")


def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:  # fmt: skip
    """The n x m identity matrix (square by default)."""
    return _make(np.eye(n, m), dtype, requires_grad, device, op="eye")


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:  # fmt: skip
    """``start, start + step, ...`` below ``end`` (``arange(n)``: 0 .. n-1); int64 when all
    the arguments are ints, else the default float dtype."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = dtypes.result_type(start, end, step)
    return _make(np.arange(start, end, step), dtype, requires_grad, device, op="arange")


def linspace(start: float, end: float, steps: int, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:  # fmt: skip
    """``steps`` evenly spaced values from ``start`` to ``end``, both included."""
    return _make(np.linspace(start, end, steps), dtype, requires_grad, device, op="linspace")


def _like(t: Any, dtype: Any, device: Any) -> tuple[tuple[int, ...], Any, Any]:
    """The shape, dtype and device of a ``*_like`` result: ``t``'s unless given."""
    data = t._data if isinstance(t, Tensor) else t
    if type(data) is not np.ndarray and not hasattr(data, "shape"):
        data = np.asarray(data)
    if dtype is None:
        # (The NumPy dtype of another library's array, from an empty host copy of it.)
        dtype = devices.host_dtype(data)
    if device is None:
        device = devices.device_of(data)
    return data.shape, dtype, device


def zeros_like(input: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
               ) -> Tensor:  # fmt: skip
    shape, dt, device = _like(input, dtype, device)
    return _make(
        np.zeros(shape, dt), None, requires_grad, device, float_default=False, op="zeros_like"
    )


def ones_like(input: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
              ) -> Tensor:  # fmt: skip
    shape, dt, device = _like(input, dtype, device)
    return _make(
        np.ones(shape, dt), None, requires_grad, device, float_default=False, op="ones_like"
    )


def empty_like(input: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
               ) -> Tensor:  # fmt: skip
    shape, dt, device = _like(input, dtype, device)
    return _make(
        np.empty(shape, dt), None, requires_grad, device, float_default=False, op="empty_like"
    )


def full_like(input: Any, fill_value: Any, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:  # fmt: skip
    shape, dt, device = _like(input, dtype, device)
    return _make(np.full(shape, fill_value, dt), None, requires_grad, device, False, op="full_like")


# -- random ------------------------------------------------------------------------------


def randn(*size: Any, generator: Any = None, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:  # fmt: skip
    """Draws from the standard normal N(0, 1) (default generator unless ``generator=``)."""
    draws = as_generator(generator).standard_normal(_size(size, "randn"))
    return _make(np.asarray(draws), dtype, requires_grad, device, op="randn")


def rand(*size: Any, generator: Any = None, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:  # fmt: skip
    """Draws from the uniform distribution on [0, 1)."""
    draws = as_generator(generator).random(_size(size, "rand"))
    return _make(np.asarray(draws), dtype, requires_grad, device, op="rand")


def randint(low: int, high: int | None = None, size: Any = (), generator: Any = None,
            dtype: Any = None, device: Any = None) -> Tensor:  # fmt: skip
    """Integers drawn uniformly from [low, high) (``randint(high, size)``: from [0, high))."""
    if high is None:
        low, high = 0, low
    shape = _size(tuple(size) if isinstance(size, tuple | list) else (size,), "randint")
    draws = as_generator(generator).integers(low, high, shape)
    return _make(np.asarray(draws, dtype=np.int64), dtype, False, device, op="randint")


def randn_like(input: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
               ) -> Tensor:  # fmt: skip
    shape, dt, device = _like(input, dtype, device)
    return randn(shape, dtype=dt, device=device, requires_grad=requires_grad)


def rand_like(input: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
              ) -> Tensor:  # fmt: skip
    shape, dt, device = _like(input, dtype, device)
    return rand(shape, dtype=dt, device=device, requires_grad=requires_grad)


def randperm(n: int, generator: Any = None, dtype: Any = None, device: Any = None) -> Tensor:
    """A random order of 0 .. n-1."""
    draws = as_generator(generator).permutation(n)
    return _make(np.asarray(draws, dtype=np.int64), dtype, False, device, op="randperm")
