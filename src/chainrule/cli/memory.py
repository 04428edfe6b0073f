"""``chainrule memory``: what backprop keeps, over time, and what checkpointing trades for it.

Runs one forward and backward pass of the lecture's deep ReLU network (``--layers`` K
hidden layers of ``--width`` D, batch ``--batch``, float64) for each strategy of
``chainrule.lecture.memory`` (none, √n segments, every layer, the budget planner,
recursive halves), draws the bytes held after each operation as a PNG (``--png``,
written atomically) with the lecture's prediction Σ |f_k| + |h_k| as a line, and prints a
table: peak bytes, extra forward FLOPs (the recomputed operations) and step time.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chainrule.lecture.memory import MemoryProfile

#: Refuse runs that would take long or take much memory (the picture is for teaching).
MAX_ACTIVATIONS = 20_000_000


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _png(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"the picture is a PNG; {text!r} does not end in .png")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"directory {str(path.parent)!r} does not exist")
    return path


def register(sub: Any) -> None:
    from chainrule.cli import plain

    p = sub.add_parser(
        "memory",
        help="bytes held over a deep MLP's forward and backward pass, with and without "
        "gradient checkpointing",
        description=plain(__doc__.split("\n\n")[1]),
    )
    p.add_argument("--layers", type=_positive, default=16, help="K hidden layers (default 16)")
    p.add_argument("--width", type=_positive, default=64, help="D units per layer (default 64)")
    p.add_argument("--batch", type=_positive, default=512, help="inputs per batch (default 512)")
    p.add_argument(
        "--budget", type=_positive, default=None, metavar="BYTES",
        help="the planner's budget of activation memory (default: half of its estimate "
        "without checkpointing, or the least any plan needs if more)",
    )  # fmt: skip
    p.add_argument("--repeats", type=_positive, default=3, help="timed steps (median; default 3)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--png", type=_png, default=Path("memory.png"), help="default memory.png")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chainrule.cli import UsageError
    from chainrule.lecture.memory import memory_profile, plot_profile

    acts = args.batch * args.width * 2 * args.layers
    if acts > MAX_ACTIVATIONS:
        raise UsageError(
            f"--layers {args.layers} --width {args.width} --batch {args.batch} make "
            f"{acts:,} activations (f_k and h_k); at most {MAX_ACTIVATIONS:,}: lower one of them"
        )
    try:
        profile = memory_profile(
            args.layers, args.width, args.batch, args.budget, repeats=args.repeats, seed=args.seed
        )
    except ValueError as exc:  # the planner: no plan fits --budget
        raise UsageError(
            str(exc).replace("budget_bytes=", "--budget ").replace("budget_bytes", "--budget")
        ) from None
    try:
        plot_profile(profile, args.png)
    except OSError as exc:
        raise UsageError(f"cannot write {str(args.png)!r}: {exc.strerror or exc}") from None
    print_table(profile)
    print(f"picture: {args.png}")
    return 0


def print_table(profile: MemoryProfile) -> None:
    """Peak bytes, extra forward FLOPs and step time per strategy, against no checkpointing."""
    import sys

    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, highlight=False, markup=False)
    runs = profile.runs
    plain = next((r for r in runs if r.name == "none"), runs[0])
    table = Table(
        title=f"Deep ReLU MLP: {profile.layers} layers of width {profile.width}, batch "
        f"{profile.batch}, float64; lecture's prediction Σ |f_k| + |h_k| = "
        f"{profile.predicted_bytes:,} B",
        title_justify="left",
    )
    table.add_column("strategy", no_wrap=True)
    table.add_column("checkpointed", no_wrap=True)
    for head in (
        "peak bytes",
        "peak / none",
        "peak less param. grads",
        "extra forward FLOPs",
        "step time",
        "time / none",
    ):
        table.add_column(head, justify="right", no_wrap=True)
    for r in runs:
        table.add_row(
            r.name,
            r.segments,
            f"{r.peak_bytes:,}",
            f"{r.peak_bytes / plain.peak_bytes:.2f}",
            f"{r.peak_bytes - r.grad_bytes:,}",
            f"{r.extra_forward_flops:,} ({r.extra_forward_flops / r.forward_flops:.0%})",
            f"{1000 * r.step_seconds:.1f} ms",
            f"{r.step_seconds / plain.step_seconds:.2f}",
        )
    unlimited = console.options.update_width(10_000)
    console.width = max(console.width, console.measure(table, options=unlimited).maximum)
    console.print(table)
    console.print(
        "peak bytes: the most NumPy held beyond the parameters and the data at any moment "
        "of the pass (tracemalloc), gradients included; the planner's budget is for the "
        "peak less the parameters' gradients; extra forward FLOPs: the forward operations "
        "run again during backward (2·I·D·D' + I·D' a Linear, I·D a ReLU), as a share of "
        "the forward pass's.",
        soft_wrap=True,
    )
