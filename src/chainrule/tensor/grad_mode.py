"""Whether operations are recorded for backpropagation: ``no_grad`` and ``enable_grad``.

Both work as context managers and as decorators::

    with no_grad():            # evaluation: nothing recorded, no memory kept
        logits = model(x)

    @no_grad()
    def update(params): ...
"""

from __future__ import annotations

from contextlib import ContextDecorator
from typing import Any


class _State:
    enabled = True  # read by every operation: a plain class attribute is the fastest lookup


def is_grad_enabled() -> bool:
    """True when new operations are recorded for backward (the default)."""
    return _State.enabled


class set_grad_enabled:
    """Turn recording on or off: ``set_grad_enabled(False)`` or ``with set_grad_enabled(m):``."""

    def __init__(self, mode: bool) -> None:
        self.prev = _State.enabled
        self.mode = bool(mode)
        _State.enabled = self.mode

    def __enter__(self) -> None:
        _State.enabled = self.mode

    def __exit__(self, *exc: Any) -> None:
        _State.enabled = self.prev


class FlagContext(ContextDecorator):
    """Set a global switch (``state.enabled``) inside a ``with`` block or a decorated call.

    The previous values are kept on a stack, so one instance may be entered recursively
    (a decorated recursive function) and still restore the right value on each exit.
    """

    state: Any  # a class with a boolean ``enabled`` attribute
    value: bool

    def __init__(self) -> None:
        self._saved: list[bool] = []

    def __enter__(self) -> None:
        self._saved.append(self.state.enabled)
        self.state.enabled = self.value

    def __exit__(self, *exc: Any) -> None:
        self.state.enabled = self._saved.pop()


class no_grad(FlagContext):
    """Record nothing inside: results have ``requires_grad=False`` and keep no graph."""

    state, value = _State, False


class enable_grad(FlagContext):
    """Record operations inside, even within ``no_grad``."""

    state, value = _State, True
