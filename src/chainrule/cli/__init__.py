"""The ``chainrule`` command line: one subcommand per module of this package.

Each subcommand module has ``register(subparsers)``, which adds its parser and sets
``func=run`` where ``run(args) -> int``. Bad input is reported by raising ``UsageError``
(or by argparse itself): one line on stderr, exit status 2, nothing written.

Exit statuses (``EXIT_*``): 0 done; 1 the job failed after it started (training diverged,
a file could not be written, a model gave non-finite results), with one line saying what
was kept; 2 bad input or a missing optional dependency (one line naming the extra to
install); 130 interrupted by Ctrl-C (one line, no traceback, saying what was kept).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from chainrule import __version__
from chainrule.extras import interrupt_behind

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# Optional dependencies the commands import, and the extra of chainrule that brings each.
EXTRAS = {"sklearn": "data", "mnist1d": "data", "scipy": "data", "matplotlib": "viz",
          "graphviz": "viz"}  # fmt: skip

# Subcommand modules, in the order `chainrule --help` lists them.
SUBCOMMANDS = ["demo", "train", "evaluate", "toy", "backprop", "memory", "pipeline"]


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but errors are one line (``chainrule toy: error: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def plain(text: str) -> str:
    """A docstring paragraph as help text: one line, without reST's double backticks."""
    return " ".join(text.replace("``", "").split())


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = OneLineParser(prog="chainrule", description="Backpropagation made visible and fast.")
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"chainrule.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (see the module's docstring)."""
    command = "chainrule"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = f"chainrule {args.command}"
        return int(args.func(args))
    except (KeyboardInterrupt, Exception) as exc:
        # Commands that write catch Ctrl-C themselves once they have written something;
        # one that reaches here was still starting (imports, data loading). It may come
        # wrapped: an extension module interrupted while it initialises raises ImportError
        # from the KeyboardInterrupt (see chainrule.extras).
        if interrupt_behind(exc) is None:
            return _failed(command, exc)
        print(f"{command}: interrupted (Ctrl-C) before anything was written", file=sys.stderr)
        return EXIT_INTERRUPTED


def _failed(command: str, exc: Exception | KeyboardInterrupt) -> int:
    """Bad input and missing extras as one line with exit status 2; raises anything else."""
    if isinstance(exc, UsageError):
        print(f"{command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, ModuleNotFoundError):
        root = (exc.name or "").split(".")[0]
        if root in EXTRAS:
            print(
                f"{command}: error: this needs the Python package '{root}', which is not "
                f"installed: pip install 'chainrule[{EXTRAS[root]}]' (or 'chainrule[all]')",
                file=sys.stderr,
            )
            return EXIT_USAGE
    raise exc


if __name__ == "__main__":
    sys.exit(main())
