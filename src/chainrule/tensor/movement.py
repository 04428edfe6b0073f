"""Moving tensors between devices: ``Tensor.to(device)``, ``.cpu()``, ``.cuda()``.

A move is a recorded operation, as in PyTorch: ``y = x.to("cuda")`` is a new tensor on
the GPU, and the gradient that reaches ``y`` goes back to ``x``'s device
(d/dx to(x) = 1: the gradient is copied back, nothing else). A tensor already on the
requested device is returned as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from chainrule.tensor import device as devices
from chainrule.tensor.primitive import defvjp, primitive

if TYPE_CHECKING:
    from chainrule.tensor.tensor import Tensor


def _move(x: Any, dev: devices.device) -> Any:
    return devices.move(x, dev)


def _where(x: Any) -> devices.device:
    """The device of an input (an array in a normal backward pass, a Tensor when the
    backward pass is recorded)."""
    return devices.device_of(getattr(x, "_data", x))


to_device = primitive(_move, "to")
if hasattr(to_device, "any_fn"):  # an engine that computes on every array library's arrays:
    # a move takes any library's arrays as they are (it is its own any_fn).
    setattr(to_device, "any_fn", lambda xp, x, dev: _move(x, dev))  # noqa: B010
# d/dx to(x) = 1: the gradient goes back to where the input lives.
defvjp(to_device, lambda g, ans, x, dev: to_device(g, _where(x)))


def parse_to(args: tuple[Any, ...], kwargs: dict[str, Any], op: str) -> tuple[Any, Any]:
    """(device, dtype) from PyTorch's spellings: ``to(device)``, ``to(dtype)``,
    ``to(device, dtype)``, ``to(other_tensor)``, and the keywords; None for what is not
    given. ``non_blocking`` and ``copy`` are accepted (moves always copy)."""
    kwargs = dict(kwargs)
    dtype = kwargs.pop("dtype", None)
    dev = kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("copy", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(
            f"{op}: unexpected arguments {sorted(kwargs)}; use to(device), to(dtype), "
            "to(device, dtype) or to(other_tensor)."
        )
    for a in args:
        if hasattr(a, "_data") and hasattr(a, "device"):  # another tensor: its device, dtype
            dev, dtype = a.device, devices.host_dtype(a._data)
        elif isinstance(a, str | devices.device):
            dev = a
        elif isinstance(a, int) and not isinstance(a, bool):
            dev = devices.device("cuda", a)  # PyTorch's to(0): the GPU with that index
        else:
            dtype = a
    return dev, dtype


def tensor_to(t: Tensor, dev: Any, op: str) -> Tensor:
    """``t`` on ``dev`` (recorded), or ``t`` itself when it is already there."""
    target = devices.resolve(dev, op)
    if devices.device_of(t._data) == target:
        return t
    return to_device(t, target)  # type: ignore[no-any-return]


def host_array(value: Any) -> np.ndarray:
    """A NumPy array of ``value`` (a Tensor or an array on any device), for saving and
    printing: the array itself when it already is one, else a copy in host memory."""
    data = getattr(value, "_data", value)
    return devices.to_host(data)


def not_on_host(t: Tensor, op: str) -> TypeError:
    """The error for reading a device tensor as a NumPy array (as PyTorch's)."""
    return TypeError(
        f"{op}: can't convert a tensor on {devices.device_of(t._data)} to a NumPy array; "
        "copy it to host memory first with .cpu() (t.cpu().numpy())."
    )
