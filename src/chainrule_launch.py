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
    except KeyboardInterrupt:
        print("chainrule: interrupted (Ctrl-C) while starting; nothing written", file=sys.stderr)
        return 130
    return run()
