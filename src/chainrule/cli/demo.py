"""``chainrule demo``: the README's main job."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="train an MLP on built-in data (two moons) and report")
    p.add_argument("--steps", type=int, default=100, help="SGD steps (default 100)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chainrule.cli import UsageError
    from chainrule.scalar.demo import train_moons

    if args.steps <= 0:
        raise UsageError(f"--steps must be a positive integer, got {args.steps}")
    train_moons(steps=args.steps)
    return 0
