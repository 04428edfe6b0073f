"""The lines of a traced program, and the two exceptions that tracing and guards raise."""

from __future__ import annotations

from dataclasses import dataclass

# Intermediates at least this large are freed after their last use (see program.py).
BIG = 256 * 1024


class TraceError(RuntimeError):
    """A step does something a trace cannot replay faithfully."""


class GuardFailed(Exception):
    """A decision the engine took while tracing goes the other way on this call."""


@dataclass
class Stmt:
    """One line of the program: ``code`` defines ``defs``, reads ``uses``, writes ``writes``
    in place; ``effect`` lines (draws, guards, opaque calls) are never removed."""

    code: str
    defs: tuple[str, ...]
    uses: tuple[str, ...]
    writes: tuple[str, ...] = ()
    effect: bool = False
    phase: str = "forward"
    label: str = ""
    guard: bool = False
