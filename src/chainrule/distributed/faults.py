"""Failure handling: one rank's error stops the whole job instead of hanging it.

A rank that raises would otherwise leave the others waiting in their next collective for
ever. The excepthook prints ``rank R: <error>`` (with the traceback) and calls
``comm.Abort(1)``, which makes ``mpiexec`` kill every rank; ``mpiexec`` itself kills the
others when a rank dies of a signal (``kill -9``) and forwards Ctrl-C to all of them.
"""

from __future__ import annotations

import sys
import traceback
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chainrule.distributed.group import ProcessGroup


class _Installed:
    previous: Any = None
    group: ProcessGroup | None = None


def format_error(rank: int, exc: BaseException, tb: TracebackType | None) -> str:
    """``rank R: Type: message`` after the traceback, each line prefixed by the rank."""
    lines = "".join(traceback.format_exception(type(exc), exc, tb)).rstrip().splitlines()
    body = "\n".join(f"[rank {rank}] {line}" for line in lines)
    what = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else str(exc)
    return f"{body}\nrank {rank}: {type(exc).__name__}: {what}"


def install(group: ProcessGroup) -> None:
    """Replace ``sys.excepthook``: print the rank and its error, then abort every rank."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        print(format_error(group.rank, exc, tb), file=sys.stderr, flush=True)
        group.comm.Abort(1)

    if _Installed.group is None:
        _Installed.previous = sys.excepthook
    _Installed.group = group
    sys.excepthook = hook


def uninstall(group: ProcessGroup) -> None:
    """Put back the excepthook that was there before ``install(group)``."""
    if _Installed.group is group:
        sys.excepthook = _Installed.previous
        _Installed.group = _Installed.previous = None
