"""The ``chainrule`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chainrule", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train an MLP on built-in data and report")
    demo.add_argument("--steps", type=int, default=100)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from chainrule.scalar.demo import train_moons

        train_moons(steps=args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
