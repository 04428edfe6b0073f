"""The ``chainrule`` command line: one subcommand per module of this package.

Each subcommand module has ``register(subparsers)``, which adds its parser and sets
``func=run`` where ``run(args) -> int``. Bad input is reported by raising ``UsageError``
(or by argparse itself): one line on stderr, exit status 2, nothing written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from chainrule import __version__

# Subcommand modules, in the order `chainrule --help` lists them.
SUBCOMMANDS = ["demo", "train", "evaluate", "toy", "backprop", "memory", "pipeline"]


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but errors are one line (``chainrule toy: error: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = OneLineParser(prog="chainrule", description="Backpropagation made visible and fast.")
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"chainrule.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"chainrule {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
