"""Shared test settings: hypothesis profiles and float64 tolerances."""

from __future__ import annotations

import math
import os
from typing import Any

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60
)
settings.register_profile(
    "thorough", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=600
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def close(a: float, b: float, rel: float = 1e-12, abs_: float = 1e-300) -> bool:
    """Relative closeness that treats equal infinities and two NaNs as equal."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


# -- array backends -----------------------------------------------------------------------

ARRAY_BACKENDS = ("numpy", "array_api_strict", "cupy")
#: Read by test modules at import time (pytest_configure sets it from --array-backend).
ARRAY_BACKEND_ENV = "CHAINRULE_TEST_ARRAY_BACKENDS"


def pytest_addoption(parser: Any) -> None:
    parser.addoption(
        "--array-backend",
        action="append",
        choices=ARRAY_BACKENDS,
        default=[],
        help="array library the backend-parametrised tests run chainrule on (repeatable; "
        "default numpy and array_api_strict). cupy needs an NVIDIA GPU (scripts/gpu-check); "
        "it also puts the device tests (tests/devices) on the real GPU instead of the stand-in.",
    )


def pytest_configure(config: Any) -> None:
    chosen = config.getoption("array_backend")
    if chosen:
        os.environ[ARRAY_BACKEND_ENV] = ",".join(chosen)


def array_backends() -> list[str]:
    """The array libraries chosen with --array-backend (numpy and array_api_strict when
    none was), for test modules to parametrise over."""
    text = os.environ.get(ARRAY_BACKEND_ENV, "")
    return [b for b in text.split(",") if b] or ["numpy", "array_api_strict"]
