"""``detect_anomaly()``: name the first operation that makes a NaN or an infinity.

Inside the block every operation checks its result, and the backward pass checks every
gradient it computes; the first non-finite value raises ``AnomalyError`` naming the
operation, the shapes, and where in your code the operation was created. The checks cost
a pass over each array, so use it to debug, not to train.
"""

from __future__ import annotations

from chainrule.tensor.grad_mode import FlagContext


class AnomalyError(FloatingPointError):
    """A NaN or infinity appeared in the forward or backward pass under detect_anomaly()."""


class _State:
    enabled = False


def is_anomaly_enabled() -> bool:
    return _State.enabled


class detect_anomaly(FlagContext):
    """Check every forward result and every gradient for NaN and infinity."""

    state, value = _State, True
