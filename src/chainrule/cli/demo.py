"""``chainrule demo``: the README's main job.

Trains two MLPs on built-in data with the measured defaults (two moons, then the 8x8
digits) into a fresh folder ``runs/demo-<date>-<time>`` (a new one on every call, so the
demo can run twice in a row), and prints the final metrics and the paths of the pictures.
Takes a few seconds on 2 cores.

``chainrule demo --engine scalar`` runs micrograd's demo on chainrule's scalar ``Value``
engine instead (an MLP learns the two moons, one graph node per scalar operation).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

DEMO_DATASETS = ("moons", "digits")


def register(sub: Any) -> None:
    from chainrule.cli import plain

    p = sub.add_parser(
        "demo",
        help="train MLPs on built-in data (two moons, digits): metrics and pictures",
        description=plain(__doc__.split("\n\n", 1)[1]),
    )
    p.add_argument(
        "--engine", choices=("tensor", "scalar"), default="tensor",
        help="tensor (default): the NumPy tensor engine; scalar: micrograd's demo on Value",
    )  # fmt: skip
    p.add_argument(
        "--out", type=Path,
        help="the new folder for the runs (default runs/demo-DATE-TIME)",
    )  # fmt: skip
    p.add_argument("--steps", type=int, help="SGD steps of the scalar demo (default 100)")
    p.set_defaults(func=run)


def _demo_dir(root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = root / f"demo-{stamp}"
    candidate, k = base, 2
    while candidate.exists():  # two demos in the same second
        candidate = base.with_name(f"{base.name}-{k}")
        k += 1
    return candidate


def run(args: argparse.Namespace) -> int:
    from chainrule.cli import UsageError

    if args.engine == "scalar":
        from chainrule.scalar.demo import train_moons

        steps = 100 if args.steps is None else args.steps
        if steps <= 0:
            raise UsageError(f"--steps must be a positive integer, got {args.steps}")
        train_moons(steps=steps)
        return 0
    if args.steps is not None:
        raise UsageError("--steps applies to --engine scalar only; the tensor demo trains epochs")
    return _tensor_demo(args.out)


def _tensor_demo(out: Path | None) -> int:
    import importlib.util
    import sys

    from chainrule.cli.progress import make_console
    from chainrule.cli.train import Prepared, Stopped, execute, prepare
    from chainrule.training.runs import check_new_run_dir

    from . import UsageError

    missing = [m for m in ("sklearn", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"the demo needs {' and '.join(missing)} (its data sets and pictures): "
            "pip install 'chainrule[all]'"
        )
    start = time.perf_counter()
    folder = out if out is not None else _demo_dir()
    try:
        check_new_run_dir(folder)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    # Check and build both runs before writing anything.
    runs = [prepare(name, {}, folder / name, True, "auto") for name in DEMO_DATASETS]
    console = make_console()
    results: list[tuple[Prepared, list[Path]]] = []
    for p in runs:
        try:
            results.append((p, execute(p, console, max_rows=5)))
        except Stopped as exc:
            print(f"chainrule demo: {exc}", file=sys.stderr)
            return exc.status
        console.print()
    _print_results(console, results, time.perf_counter() - start, folder)
    return 0


def _print_results(
    console: Any, results: list[tuple[Any, list[Path]]], seconds: float, folder: Path
) -> None:
    from rich.table import Table

    from chainrule.cli.train import title_of

    table = Table(title="chainrule demo: final metrics", title_justify="left")
    for header in ("data set", "model", "epochs", "train time", "train acc", "test acc"):
        left = header in ("data set", "model")
        table.add_column(header, justify="left" if left else "right", no_wrap=True)
    for p, _ in results:
        last = p.history[-1]
        model = title_of(p).split(": ", 1)[1].split(";")[0]
        table.add_row(
            p.splits.info.name,
            model,
            str(len(p.history)),
            f"{sum(m.seconds for m in p.history):.1f} s",
            f"{100 * last.train_acc:.2f}%",
            f"{100 * last.test_acc:.2f}%",
        )
    unlimited = console.options.update_width(10_000)
    console.width = max(console.width, console.measure(table, options=unlimited).maximum)
    console.print(table)
    console.print(f"runs in {folder} ({seconds:.1f} s in all); pictures:", soft_wrap=True)
    for _, pictures in results:
        for path in pictures:
            console.print(f"  {path}", soft_wrap=True)
