"""PyTorch's top-level math functions (``chainrule.sin(x)``, ``chainrule.sum(x, dim=0)``).

Each is the Tensor method of the same name, applied to ``input`` (a Tensor, or anything
``chainrule.tensor()`` accepts); the derivative formulas are in the methods' docs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.tensor import ops
from chainrule.tensor.tensor import Tensor


def _t(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def sin(input: Any) -> Tensor:
    return _t(input).sin()


def cos(input: Any) -> Tensor:
    return _t(input).cos()


def exp(input: Any) -> Tensor:
    return _t(input).exp()


def log(input: Any) -> Tensor:
    return _t(input).log()


def sqrt(input: Any) -> Tensor:
    return _t(input).sqrt()


def tanh(input: Any) -> Tensor:
    return _t(input).tanh()


def sigmoid(input: Any) -> Tensor:
    return _t(input).sigmoid()


def relu(input: Any) -> Tensor:
    return _t(input).relu()


def abs(input: Any) -> Tensor:
    return _t(input).abs()


def square(input: Any) -> Tensor:
    """x²;  d/dx = 2x."""
    return _t(input) * input  # type: ignore[no-any-return]


def pow(input: Any, exponent: Any) -> Tensor:
    """x^y (``input`` may be a number when ``exponent`` is a tensor)."""
    if not isinstance(input, Tensor) and isinstance(exponent, Tensor):
        return exponent.__rpow__(input)
    return _t(input) ** exponent  # type: ignore[no-any-return]


def clamp(input: Any, min: Any = None, max: Any = None) -> Tensor:
    return _t(input).clip(min, max)


clip = clamp


def matmul(input: Any, other: Any) -> Tensor:
    return _t(input).matmul(other)


def mm(input: Any, mat2: Any) -> Tensor:
    return _t(input).mm(mat2)


def add(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    return _t(input) + (other if alpha == 1 else other * alpha)  # type: ignore[no-any-return]


def sub(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    return _t(input) - (other if alpha == 1 else other * alpha)  # type: ignore[no-any-return]


def mul(input: Any, other: Any) -> Tensor:
    return _t(input) * other  # type: ignore[no-any-return]


def div(input: Any, other: Any) -> Tensor:
    return _t(input) / other  # type: ignore[no-any-return]


def sum(input: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _t(input).sum(dim, keepdim)


def mean(input: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _t(input).mean(dim, keepdim)


def max(input: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """The largest element; with ``dim``, ``(values, indices)``; with a tensor, elementwise."""
    return _t(input).max(dim, keepdim)


def min(input: Any, dim: Any = None, keepdim: bool = False) -> Any:
    return _t(input).min(dim, keepdim)


def amax(input: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _t(input).amax(dim, keepdim)


def amin(input: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _t(input).amin(dim, keepdim)


def argmax(input: Any, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _t(input).argmax(dim, keepdim)


def argmin(input: Any, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _t(input).argmin(dim, keepdim)


def softmax(input: Any, dim: int) -> Tensor:
    return _t(input).softmax(dim)


def log_softmax(input: Any, dim: int) -> Tensor:
    return _t(input).log_softmax(dim)


def reshape(input: Any, shape: Sequence[int]) -> Tensor:
    return _t(input).reshape(tuple(shape))


def flatten(input: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return _t(input).flatten(start_dim, end_dim)


def transpose(input: Any, dim0: int, dim1: int) -> Tensor:
    """Axes ``dim0`` and ``dim1`` swapped (PyTorch's two-axis transpose)."""
    return _t(input).swapaxes(dim0, dim1)


def t(input: Any) -> Tensor:
    return _t(input).t()


def squeeze(input: Any, dim: int | None = None) -> Tensor:
    return _t(input).squeeze(dim)


def unsqueeze(input: Any, dim: int) -> Tensor:
    return _t(input).unsqueeze(dim)


def clone(input: Any) -> Tensor:
    return _t(input).clone()


def numel(input: Any) -> int:
    return _t(input).numel()


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def allclose(input: Any, other: Any, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """All elements close: ``|x - y| <= atol + rtol |y|`` (no gradient)."""
    return bool(np.allclose(_t(input)._data, _t(other)._data, rtol=rtol, atol=atol))


def equal(input: Any, other: Any) -> bool:
    """Same shape and the same elements."""
    a, b = _t(input)._data, _t(other)._data
    return a.shape == b.shape and bool(np.array_equal(a, b))


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """``input`` where ``condition`` holds, else ``other``; the gradient follows the choice."""
    return ops.where(condition, input, other)  # type: ignore[no-any-return]
