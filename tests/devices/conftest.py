"""The GPU of the device tests: the stand-in (array-api-strict's devices registered as
``"cuda"``, see ``stand_in.py``) unless ``--array-backend cupy`` asks for the real one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import chainrule as cr
from tests.devices.stand_in import STRICT_AVAILABLE, stand_in_cuda


@pytest.fixture
def stand_in() -> Iterator[Any]:
    """Always the stand-in (two devices): for tests of the stand-in itself."""
    if not STRICT_AVAILABLE:
        pytest.fail("array-api-strict is a dev dependency (pip install -e '.[dev]')")
    with stand_in_cuda() as xp:
        yield xp


@pytest.fixture
def gpu(request: pytest.FixtureRequest) -> Iterator[Any]:
    """``"cuda"`` for this test: CuPy on a real GPU with ``--array-backend cupy``, else the
    stand-in; yields the array library that holds the GPU's arrays."""
    if "cupy" in request.config.getoption("array_backend"):
        if not cr.cuda.is_available():
            pytest.fail(f"--array-backend cupy needs a GPU: {cr.cuda.why_unavailable()}")
        import cupy

        yield cupy
        return
    if not STRICT_AVAILABLE:
        pytest.fail("array-api-strict is a dev dependency (pip install -e '.[dev]')")
    with stand_in_cuda() as xp:
        yield xp


@pytest.fixture
def two_gpus(gpu: Any) -> Any:
    """Like ``gpu``, for tests that move between two GPUs (the stand-in has two)."""
    if cr.cuda.device_count() < 2:
        pytest.skip(f"moves between two GPUs; this machine has {cr.cuda.device_count()}")
    return gpu
