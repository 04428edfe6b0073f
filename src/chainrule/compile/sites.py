"""Where a traced call comes from: the user's line, the engine's function, the step's phase.

Read from the Python stack while tracing (a one-off cost): error messages name the user's
line, the generated source's comments name the operation, and the phase (forward,
backward, update) sections the program.
"""

from __future__ import annotations

import linecache
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # src/chainrule
_HERE = os.path.dirname(os.path.abspath(__file__))  # src/chainrule/compile
_NUMPY = os.path.dirname(np.__file__)


def _frames() -> Iterator[Any]:
    f: Any = sys._getframe(1)
    while f is not None:
        yield f
        f = f.f_back


def _outside(filename: str) -> bool:
    return not (filename.startswith(_HERE) or filename.startswith(_NUMPY))


def engine_site() -> tuple[str, str] | None:
    """(module, function) of the chainrule code converting a value, None if the user's.

    Tensor's own conversions (``.item()``, ``float(t)``) are the user's request.
    """
    for f in _frames():
        filename = f.f_code.co_filename
        if not _outside(filename):
            continue
        if filename.startswith(_PACKAGE) and not filename.endswith(
            os.path.join("tensor", "tensor.py")
        ):
            return (f.f_globals.get("__name__", "?"), f.f_code.co_name)
        return None
    return None


def user_line() -> str:
    """``file:line (source)`` of the innermost frame outside chainrule and NumPy."""
    for f in _frames():
        filename = f.f_code.co_filename
        if filename.startswith(_PACKAGE) or filename.startswith(_NUMPY):
            continue
        text = linecache.getline(filename, f.f_lineno).strip()
        return f"{os.path.basename(filename)}:{f.f_lineno} (`{text}`)"
    return "an unknown line"


def where() -> tuple[str, str]:
    """The phase of the step a call belongs to and a label for the source's comments."""
    phase, label, user = "forward", "", ""
    for f in _frames():
        code = f.f_code
        filename = code.co_filename
        if not user and not filename.startswith(_PACKAGE) and _outside(filename):
            text = linecache.getline(filename, f.f_lineno).strip()
            text = text if len(text) <= 60 else text[:57] + "..."
            user = f"{os.path.basename(filename)}:{f.f_lineno}" + (f": {text}" if text else "")
        if filename.startswith(_PACKAGE) and _outside(filename):
            module = f.f_globals.get("__name__", "")
            if module == "chainrule.tensor.backward" and phase == "forward":
                phase = "backward"
                prim = f.f_locals.get("prim")
                label = label or (f"∂ {prim.name}" if prim is not None else "store .grad")
            elif module.startswith("chainrule.optim") and phase == "forward":
                phase, label = "update", label or type(f.f_locals.get("self")).__name__
            elif code.co_name == "__call__" and module == "chainrule.tensor.primitive":
                label = label or getattr(f.f_locals.get("self"), "name", "")
    return phase, f"{label}  ({user})" if user else label
