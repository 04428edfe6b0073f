"""Importing the optional dependencies (chainrule's extras) without mistaking a Ctrl-C.

A Ctrl-C that lands while an extension module initialises can come back as an
``ImportError``: a pybind11 module (scipy's, matplotlib's) turns whatever stopped its
initialisation into ``ImportError("initialization failed")`` raised *from* it. Reported
as "install the extra", the user's interrupt would become a wrong diagnosis and the wrong
exit status, so an import error that stands for an interrupt is raised again as the
``KeyboardInterrupt`` it was.

    >>> from chainrule.extras import import_module
    >>> import_module("json").__name__
    'json'
"""

from __future__ import annotations

import importlib
from types import ModuleType


def interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The ``KeyboardInterrupt`` that ``exc`` is, or that caused it (through ``__cause__``
    or ``__context__``, at any depth); None if no Ctrl-C is behind it."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if isinstance(e, KeyboardInterrupt):
            return e
        if id(e) in seen:  # chains can be cycles
            continue
        seen.add(id(e))
        todo.extend(x for x in (e.__cause__, e.__context__) if x is not None)
    return None


def import_module(name: str) -> ModuleType:
    """``importlib.import_module(name)``, except that an ``ImportError`` caused by a Ctrl-C
    is raised as that ``KeyboardInterrupt``; other import errors are raised unchanged."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        interrupt = interrupt_behind(exc)
        if interrupt is None:
            raise
        raise interrupt from None
