"""A stand-in GPU for machines without one: ``"cuda"`` backed by array-api-strict.

array-api-strict (the array API standard's reference library) has devices of its own
besides its CPU device: ``Device("device1")`` and ``Device("device2")``. Its arrays there
refuse everything a real GPU's would: reading them as NumPy arrays (``np.asarray``), and
mixing them with arrays of another device. Registered as the ``"cuda"`` device type with
two GPUs (``cuda:0`` on device1, ``cuda:1`` on device2), it lets the tests run every
movement path of ``Tensor.to("cuda")``, ``Module.to``, the training loop and saving, on
the CPU. Computing on these arrays needs the engine to take its functions from the arrays'
namespace (``chainrule.tensor.backend``): tests that compute on the stand-in say so.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from chainrule.tensor import device as devices

#: True once the engine computes with the array library of the data (issue 15's backend).
ENGINE_ON_ARRAY_API = importlib.util.find_spec("chainrule.tensor.backend") is not None
NEEDS_BACKEND = (
    "computing on the stand-in GPU (array-api-strict arrays) needs the engine to take its "
    "functions from the arrays' namespace (chainrule.tensor.backend, issue 15); this test "
    "runs once that is merged"
)

STRICT_AVAILABLE = importlib.util.find_spec("array_api_strict") is not None


@contextmanager
def stand_in_cuda(count: int = 2) -> Iterator[Any]:
    """Register ``"cuda"`` as array-api-strict's devices for the duration; yields the
    array_api_strict module."""
    import array_api_strict as xp

    places = [xp.Device("device1"), xp.Device("device2")][:count]
    host = xp.Device("CPU_DEVICE")
    array_type = type(xp.asarray(0.0))

    def index_of(array: Any) -> int | None:
        if not isinstance(array, array_type):
            return None
        return places.index(array.device) if array.device in places else None

    def put(array: Any, index: int) -> Any:
        if isinstance(array, np.ndarray):
            # (asarray(..., device=) would cast to that device's default dtype: move after.)
            array = xp.asarray(array, copy=True)
        return array.to_device(places[index])

    def to_host(array: Any) -> np.ndarray:
        return np.array(array.to_device(host), copy=True)

    kind = devices.DeviceType(
        name="cuda",
        count=lambda: count,
        unavailable=lambda: "the stand-in has no devices",
        index_of=index_of,
        put=put,
        to_host=to_host,
        namespace=lambda: xp,
    )
    previous = devices.register_device_type(kind)
    try:
        yield xp
    finally:
        devices.unregister_device_type("cuda", previous)


def on_gpu(t: Any, index: int = 0) -> bool:
    """Whether tensor ``t``'s array really lives on GPU ``index``: not a NumPy array, and
    on the stand-in, on array-api-strict's device for that index (not only registered so)."""
    data = t._data
    if type(data) is np.ndarray:
        return False
    if STRICT_AVAILABLE:
        import array_api_strict as xp

        if isinstance(data, type(xp.asarray(0.0))):
            return bool(data.device == xp.Device(f"device{index + 1}"))
    return devices.device_of(data) == devices.device("cuda", index)
