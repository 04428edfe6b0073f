"""``chainrule.cuda``: PyTorch's ``torch.cuda`` queries, answered by CuPy.

chainrule computes on NVIDIA GPUs with CuPy (``pip install 'chainrule[cuda]'``). Without
CuPy, or without a GPU, ``is_available()`` is False and ``device_count()`` 0, so programs
that pick their device with ``"cuda" if chainrule.cuda.is_available() else "cpu"`` run on
the CPU unchanged; asking for ``"cuda"`` then raises an error naming the extra to install.
"""

from __future__ import annotations

from typing import Any

from chainrule.tensor import device as devices


def is_available() -> bool:
    """True when CuPy is installed and finds at least one GPU."""
    return device_count() > 0


def device_count() -> int:
    """The number of GPUs CuPy can use (0 without CuPy or without a GPU)."""
    return devices.device_type("cuda").count()


def why_unavailable() -> str:
    """Why ``is_available()`` is False, and what to do ('' when it is True)."""
    return "" if is_available() else devices.device_type("cuda").unavailable()


def current_device() -> int:
    """The index of the GPU that ``"cuda"`` without an index means."""
    return devices.resolve("cuda", "chainrule.cuda.current_device").index or 0


def synchronize(device: Any = None) -> None:
    """Wait until the GPU has finished all the work queued on it (the current GPU, or
    ``device``: an index or ``'cuda:N'``)."""
    d = devices.device("cuda", device) if isinstance(device, int) else device
    where = devices.resolve("cuda" if d is None else d, "chainrule.cuda.synchronize")
    assert where.index is not None
    devices.device_type("cuda").synchronize(where.index)


def manual_seed(seed: int) -> None:
    """Seed CuPy's random generator on the current GPU (nothing to do without CuPy).

    chainrule's creation functions and layers draw on the host from the default generator
    (``chainrule.manual_seed``) and copy the values over, so that a model made on a GPU
    starts with the same numbers as on the CPU; this seeds what computes with CuPy's own
    generator (``cupy.random``)."""
    cupy = devices._cupy() if is_available() else None
    if cupy is not None:
        cupy.random.seed(seed)


def manual_seed_all(seed: int) -> None:
    """Seed CuPy's random generator on every GPU (nothing to do without CuPy; also done by
    ``chainrule.manual_seed`` once CuPy is in use)."""
    if is_available():
        devices._cupy()  # imported, so that the seeding below has a module to seed
        devices.device_type("cuda").manual_seed(seed)
