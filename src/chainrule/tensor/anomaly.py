"""``detect_anomaly()``: name the first operation that makes a NaN or an infinity.

Inside the block every operation checks its result, and the backward pass checks every
gradient it computes; the first non-finite value raises ``AnomalyError`` naming the
operation, the shapes, and where in your code the operation was created. The checks cost
a pass over each array, so use it to debug, not to train.

Like grad mode, the switch belongs to the running thread and asyncio task (a ContextVar).
"""

from __future__ import annotations

from contextvars import ContextVar

from chainrule.tensor.grad_mode import FlagContext


class AnomalyError(FloatingPointError):
    """A NaN or infinity appeared in the forward or backward pass under detect_anomaly()."""


_enabled: ContextVar[bool] = ContextVar("chainrule.anomaly_enabled", default=False)


def is_anomaly_enabled() -> bool:
    return _enabled.get()


class detect_anomaly(FlagContext):
    """Check every forward result and every gradient for NaN and infinity."""

    var, value = _enabled, True
