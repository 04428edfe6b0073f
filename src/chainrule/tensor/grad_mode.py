"""Whether operations are recorded for backpropagation: ``no_grad`` and ``enable_grad``.

Both work as context managers and as decorators::

    with no_grad():            # evaluation: nothing recorded, no memory kept
        logits = model(x)

    @no_grad()
    def update(params): ...

The mode belongs to the running thread and asyncio task, as in PyTorch: it is a
``contextvars.ContextVar``, so ``no_grad()`` in one thread (or task) never changes what
another records, and a backward pass switching recording off for its hooks does not
switch it off for anyone else. A new thread starts with recording on.
"""

from __future__ import annotations

from contextlib import ContextDecorator
from contextvars import ContextVar, Token
from typing import Any

# Read by every operation (``_enabled.get()``, one C call): True means "record".
_enabled: ContextVar[bool] = ContextVar("chainrule.grad_enabled", default=True)


def is_grad_enabled() -> bool:
    """True when new operations are recorded for backward (the default)."""
    return _enabled.get()


class set_grad_enabled:
    """Turn recording on or off: ``set_grad_enabled(False)`` or ``with set_grad_enabled(m):``.

    Called as a function it switches the mode of the current thread (or task) at once;
    used as a context manager it restores the previous mode on exit.
    """

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._token: Token[bool] | None = _enabled.set(self.mode)

    def __enter__(self) -> None:
        if self._token is None:  # entered again after an exit: switch again
            self._token = _enabled.set(self.mode)

    def __exit__(self, *exc: Any) -> None:
        if self._token is not None:
            _enabled.reset(self._token)
            self._token = None


class FlagContext(ContextDecorator):
    """Set a per-context switch (the ContextVar ``var``) inside a ``with`` block or a call.

    The tokens of earlier values are kept on a stack, so one instance may be entered
    recursively (a decorated recursive function) and still restore the right value on each
    exit. As a decorator, each call gets a fresh instance (``_recreate_cm``), so a decorated
    function can run in several threads at once.
    """

    var: ContextVar[bool]
    value: bool

    def __init__(self) -> None:
        self._tokens: list[Token[bool]] = []

    def _recreate_cm(self) -> FlagContext:
        return type(self)()

    def __enter__(self) -> None:
        self._tokens.append(self.var.set(self.value))

    def __exit__(self, *exc: Any) -> None:
        self.var.reset(self._tokens.pop())


class no_grad(FlagContext):
    """Record nothing inside: results have ``requires_grad=False`` and keep no graph."""

    var, value = _enabled, False


class enable_grad(FlagContext):
    """Record operations inside, even within ``no_grad``."""

    var, value = _enabled, True
