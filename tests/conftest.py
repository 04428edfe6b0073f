"""Shared test settings: hypothesis profiles and float64 tolerances."""

from __future__ import annotations

import math
import os

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
