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


class no_grad(ContextDecorator):
    """Record nothing inside: results have ``requires_grad=False`` and keep no graph."""

    def __init__(self) -> None:
        self._saved: list[bool] = []  # a stack: one instance may be entered recursively

    def __enter__(self) -> None:
        self._saved.append(_State.enabled)
        _State.enabled = False

    def __exit__(self, *exc: Any) -> None:
        _State.enabled = self._saved.pop()


class enable_grad(ContextDecorator):
    """Record operations inside, even within ``no_grad``."""

    def __init__(self) -> None:
        self._saved: list[bool] = []  # a stack: one instance may be entered recursively

    def __enter__(self) -> None:
        self._saved.append(_State.enabled)
        _State.enabled = True

    def __exit__(self, *exc: Any) -> None:
        _State.enabled = self._saved.pop()
