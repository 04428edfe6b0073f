"""Devices as PyTorch spells them, each backed by an array library.

A tensor's device is where its array lives: ``"cpu"`` is NumPy; ``"cuda"`` / ``"cuda:N"``
is CuPy on NVIDIA GPU number N (when CuPy is installed, ``pip install 'chainrule[cuda]'``,
and a GPU is present: ``chainrule.cuda.is_available()``). A ``device`` object is only a
name, as in PyTorch: ``device("cuda:1")`` can be made anywhere; putting a tensor there is
what needs the library and the GPU, and fails with an error that says what to install.

What chainrule knows of one kind of device is a ``DeviceType`` in a small registry: how
many devices there are, which arrays live on them, how to copy an array there and back to
the host, and the array library that computes there. ``register_device_type`` adds or
replaces one, so the tests run the whole movement logic on a stand-in accelerator (the
array API's strict reference library, whose arrays also refuse to be read as NumPy
arrays) on machines without a GPU.

Example:
    >>> device("cpu")
    device(type='cpu')
    >>> device("cuda:1")
    device(type='cuda', index=1)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The extra that brings CuPy; named by every error about a missing GPU library.
CUDA_EXTRA = "pip install 'chainrule[cuda]'"


class device:
    """A place for tensors: ``device("cpu")``, ``device("cuda")``, ``device("cuda", 1)``.

    Two devices are equal when their types and indices are (``cuda`` and ``cuda:0`` differ,
    as in PyTorch; a tensor's ``.device`` always has its index). For the CPU the index is
    ignored. A string compares as the device it names.
    """

    __slots__ = ("index", "type")
    type: str
    index: int | None

    def __init__(self, type: Any, index: int | None = None) -> None:
        name = type
        if isinstance(type, device):
            name = type.type
            index = type.index if index is None else index
        if not isinstance(name, str):
            raise TypeError(f"device: expected a string such as 'cpu' or 'cuda:0', got {name!r}.")
        kind, colon, number = name.partition(":")
        if kind not in _TYPES:
            raise RuntimeError(
                f"device: unknown device type {kind!r} in {name!r}; chainrule knows "
                f"{sorted(_TYPES)} (e.g. 'cpu', 'cuda', 'cuda:1')."
            )
        if colon:
            if not number.isdigit() or index is not None:
                raise RuntimeError(
                    f"device: invalid device string {name!r}; write 'type' or 'type:N' with "
                    "a non-negative integer N (or device('cuda', N))."
                )
            index = int(number)
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)
                                  or index < 0):  # fmt: skip
            raise RuntimeError(f"device: the index must be a non-negative int, got {index!r}.")
        self.type = kind
        self.index = index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (TypeError, RuntimeError):
                return False
        if not isinstance(other, device) or other.type != self.type:
            return False
        return self.type == "cpu" or other.index == self.index

    def __hash__(self) -> int:
        return hash(self.type) if self.type == "cpu" else hash((self.type, self.index))

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type={self.type!r}{index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


@dataclass(frozen=True)
class DeviceType:
    """What chainrule needs to know of one kind of device (see the module doc).

    Attributes:
        name: the type in device strings (``"cuda"``).
        count: how many such devices are usable now (0 when the library or hardware is
            missing).
        unavailable: why ``count()`` is 0 and what to do about it (a sentence for errors).
        index_of: the device index of an array of this type, or None for any other array.
            Must be cheap for arrays of other libraries (called to find a tensor's device).
        put: ``put(array, index)``: a copy of ``array`` (a NumPy array or one of this
            type's) on device ``index``.
        to_host: a NumPy copy of one of this type's arrays.
        namespace: the array library that computes on these devices (``cupy``).
        current: the index that ``device("cuda")`` without an index means.
        synchronize: wait until device ``index`` has finished the work queued on it.
        manual_seed: seed the library's own generators on every device of this type
            (``chainrule.manual_seed`` calls it, as ``torch.manual_seed`` seeds CUDA's).
    """

    name: str
    count: Callable[[], int]
    unavailable: Callable[[], str]
    index_of: Callable[[Any], int | None]
    put: Callable[[Any, int], Any]
    to_host: Callable[[Any], np.ndarray]
    namespace: Callable[[], Any]
    current: Callable[[], int] = lambda: 0
    synchronize: Callable[[int], None] = lambda index: None
    manual_seed: Callable[[int], None] = lambda seed: None


_TYPES: dict[str, DeviceType] = {}


def register_device_type(kind: DeviceType) -> DeviceType | None:
    """Add (or replace) a device type; returns the one it replaced, to put back later."""
    if kind.name == "cpu":
        raise ValueError("register_device_type: 'cpu' is NumPy and cannot be replaced.")
    previous = _TYPES.get(kind.name)
    _TYPES[kind.name] = kind
    return previous


def unregister_device_type(name: str, previous: DeviceType | None = None) -> None:
    """Remove a device type, or put back ``previous`` (what ``register_device_type`` gave)."""
    if previous is not None:
        _TYPES[name] = previous
    elif name != "cpu":
        _TYPES.pop(name, None)


def device_type(name: str) -> DeviceType:
    """The registered type ``name`` (``"cpu"``, ``"cuda"``...)."""
    try:
        return _TYPES[name]
    except KeyError:
        raise RuntimeError(
            f"device: unknown device type {name!r}; chainrule knows {sorted(_TYPES)}."
        ) from None


def device_of(array: Any) -> device:
    """The device holding ``array``: the CPU for NumPy arrays (and any array that no
    registered device type claims, e.g. array-api-strict's on its CPU device)."""
    if type(array) is np.ndarray:  # the common case first: one type test
        return CPU
    for kind in _TYPES.values():
        if kind.name != "cpu":
            index = kind.index_of(array)
            if index is not None:
                return device(kind.name, index)
    return CPU


def resolve(dev: Any, op: str, instead: str | None = None) -> device:
    """``dev`` as a usable device with its index, or an error saying why it is not usable
    (the library or the hardware missing, or an index out of range) and what to do
    (``instead``: the advice that ends the error; by default how to choose in code)."""
    d = dev if isinstance(dev, device) else device(dev)
    if d.type == "cpu":
        return CPU
    kind = device_type(d.type)
    n = kind.count()
    if n == 0:
        if instead is None:
            instead = (
                f"Use 'cpu', or pick the device with '{d.type}' if "
                f"chainrule.{d.type}.is_available() else 'cpu'."
            )
        raise RuntimeError(
            f"{op}: device {str(d)!r} is not available: {kind.unavailable()} {instead}"
        )
    index = kind.current() if d.index is None else d.index
    if index >= n:
        raise RuntimeError(
            f"{op}: device {str(d)!r} does not exist: there {'is' if n == 1 else 'are'} {n} "
            f"{d.type} device{'' if n == 1 else 's'} (indices 0 to {n - 1})."
        )
    return device(d.type, index)


def move(array: Any, dev: device) -> Any:
    """A copy of ``array`` on ``dev`` (a resolved device), or ``array`` itself when it is
    already there. Between two non-CPU devices of different types it goes through the host."""
    here = device_of(array)
    if here == dev:
        return array
    if dev.type == "cpu":
        return to_host(array)
    kind = _TYPES[dev.type]
    assert dev.index is not None
    if here.type not in ("cpu", dev.type):
        array = to_host(array)
    elif here.type == "cpu" and type(array) is not np.ndarray:
        array = np.asarray(array)  # another library's host array
    return kind.put(array, dev.index)


def to_host(array: Any) -> np.ndarray:
    """``array`` as a NumPy array: itself when it is one, else a copy in host memory."""
    if type(array) is np.ndarray:
        return array
    here = device_of(array)
    if here.type == "cpu":
        return np.asarray(array)
    return _TYPES[here.type].to_host(array)


def host_dtype(array: Any) -> np.dtype[Any]:
    """The NumPy dtype of ``array`` (CuPy's already are; others' from an empty host copy)."""
    dt = array.dtype
    if isinstance(dt, np.dtype):
        return dt
    empty = array[(slice(0, 0),) * array.ndim] if array.ndim else array
    return to_host(empty).dtype


def seed_devices(seed: int) -> None:
    """Seed the generators of every device type's library (``chainrule.manual_seed``)."""
    for kind in _TYPES.values():
        kind.manual_seed(seed)


def on_host(array: Any) -> bool:
    """True when ``array`` is a NumPy array (the engine's fast paths may use NumPy on it)."""
    return type(array) is np.ndarray or device_of(array).type == "cpu"


# -- the CPU: NumPy ------------------------------------------------------------------------


_TYPES["cpu"] = DeviceType(
    name="cpu",
    count=lambda: 1,
    unavailable=lambda: "",
    index_of=lambda a: None,
    put=lambda a, index: np.array(a, copy=True),
    to_host=lambda a: np.asarray(a),
    namespace=lambda: np,
)
CPU = device("cpu")


# -- NVIDIA GPUs: CuPy ---------------------------------------------------------------------


def _cupy() -> Any:
    """The CuPy module, or None when it is not installed (or does not import)."""
    try:
        import cupy
    except Exception:  # ImportError, or a broken CUDA install raising at import
        return None
    return cupy


def _cuda_count() -> int:
    cupy = _cupy()
    if cupy is None:
        return 0
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # no driver, no GPU: CUDARuntimeError
        return 0


def _cuda_unavailable() -> str:
    cupy = _cupy()
    if cupy is None:
        return (
            "chainrule computes on NVIDIA GPUs with CuPy, which is not installed; install it "
            f"with {CUDA_EXTRA} (CuPy for CUDA 12; an NVIDIA driver is needed)."
        )
    try:
        n = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:
        return (
            f"CuPy {cupy.__version__} is installed but cannot reach a GPU ({exc}); check the "
            "NVIDIA driver (nvidia-smi) and that CuPy's CUDA version matches it "
            f"({CUDA_EXTRA} installs CuPy for CUDA 12)."
        )
    return "" if n else f"CuPy {cupy.__version__} is installed but finds no GPU."


def _cuda_index_of(array: Any) -> int | None:
    cupy = sys.modules.get("cupy")  # not imported: no array can be a CuPy array
    if cupy is None or not isinstance(array, cupy.ndarray):
        return None
    return int(array.device.id)


def _cuda_put(array: Any, index: int) -> Any:
    import cupy

    with cupy.cuda.Device(index):
        if isinstance(array, cupy.ndarray):
            return array.copy()  # CuPy copies to the current device (peer to peer)
        return cupy.asarray(array)  # host to device


def _cuda_to_host(array: Any) -> np.ndarray:
    return array.get()  # type: ignore[no-any-return]


def _cuda_current() -> int:
    import cupy

    return int(cupy.cuda.Device().id)


def _cuda_synchronize(index: int) -> None:
    import cupy

    cupy.cuda.Device(index).synchronize()


def _cuda_manual_seed(seed: int) -> None:
    cupy = sys.modules.get("cupy")  # not imported yet: nothing has drawn from it to reseed
    if cupy is None or _cuda_count() == 0:
        return
    for index in range(_cuda_count()):
        with cupy.cuda.Device(index):
            cupy.random.seed(seed)


CUDA = DeviceType(
    name="cuda",
    count=_cuda_count,
    unavailable=_cuda_unavailable,
    index_of=_cuda_index_of,
    put=_cuda_put,
    to_host=_cuda_to_host,
    namespace=lambda: _cupy(),
    current=_cuda_current,
    synchronize=_cuda_synchronize,
    manual_seed=_cuda_manual_seed,
)
_TYPES["cuda"] = CUDA


# -- the default device of creation functions ---------------------------------------------

_default: ContextVar[device] = ContextVar("chainrule.default_device", default=CPU)


def set_default_device(dev: Any) -> None:
    """Where creation functions (``zeros``, ``randn``, layers...) put new tensors when
    they are given no ``device=`` (per thread/context; None: the CPU). Checked now: an
    unavailable device raises here, not at the next ``zeros``."""
    _default.set(CPU if dev is None else resolve(dev, "set_default_device"))


def get_default_device() -> device:
    """The device that creation functions use by default (the CPU unless changed)."""
    return _default.get()


def target(dev: Any, op: str) -> device:
    """The device a creation function puts its result on: ``dev``, or the default."""
    if dev is None:
        return _default.get()
    return resolve(dev, op)
