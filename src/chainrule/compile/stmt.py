"""The lines of a traced program, and the two exceptions that tracing and guards raise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

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


class ArrayInfo(NamedTuple):
    """What the passes over the lines need to know of a variable's array, as traced."""

    shape: tuple[int, ...]
    nbytes: int
    owner: int  # id of the array owning the memory (alive while the trace runs)
    owns: bool  # the array is that owner (not a view)
    dtype: str
    strides: tuple[int, ...]
