"""The ``chainrule`` command's entry point.

It lives outside the ``chainrule`` package so that a Ctrl-C while Python is still importing
the package (NumPy and the engine take a moment) is one line and exit status 130, like a
Ctrl-C at any later moment, instead of Python's traceback.
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from chainrule.cli import main as run
    except (KeyboardInterrupt, ImportError) as exc:
        # An extension module interrupted while it initialises raises ImportError from the
        # KeyboardInterrupt (pybind11 does; chainrule.extras handles the general case).
        if not isinstance(exc, KeyboardInterrupt) and not isinstance(
            exc.__cause__, KeyboardInterrupt
        ):
            raise
        print("chainrule: interrupted (Ctrl-C) while starting; nothing written", file=sys.stderr)
        return 130
    return run()
