"""The stand-in GPU as a fixture (see ``stand_in.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.devices.stand_in import STRICT_AVAILABLE, stand_in_cuda


@pytest.fixture
def gpu() -> Iterator[Any]:
    """``"cuda"`` is array-api-strict's two devices for this test; yields its module."""
    if not STRICT_AVAILABLE:
        pytest.fail("array-api-strict is a dev dependency (pip install -e '.[dev]')")
    with stand_in_cuda() as xp:
        yield xp
