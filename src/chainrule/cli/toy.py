"""``chainrule toy``: the lecture's scalar toy network, forward and backward, step by step.

Prints the forward pass, the backward pass and each parameter's gradient three ways
(formula, ``Value`` engine, finite difference) as tables; ``--json`` prints the same as one
JSON object; ``--graph toy.svg`` draws the computation graph.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import IO, Any

import numpy as np

from chainrule.lecture.toy import ACTIVATIONS, PARAMETERS, ToyResult, resolve_activations

SUB = str.maketrans("0123", "₀₁₂₃")
PICTURE_FORMATS = ("svg", "png", "pdf")


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _four_numbers(symbol: str) -> Any:
    def parse(text: str) -> tuple[float, ...]:
        parts = text.split(",")
        if len(parts) != 4:
            names = ",".join(f"{symbol}{k}".translate(SUB) for k in range(4))
            raise argparse.ArgumentTypeError(
                f"expected 4 comma-separated numbers ({names}), got {len(parts)}: {text!r}"
            )
        try:
            return tuple(_number(p.strip()) for p in parts)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{exc} in {text!r}") from None

    parse.__name__ = f"{symbol} list"
    return parse


def _activations(text: str) -> tuple[str, str, str]:
    try:
        return resolve_activations(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _picture_path(text: str) -> Path:
    path = Path(text)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in PICTURE_FORMATS:
        raise argparse.ArgumentTypeError(
            f"the picture format comes from the file name's suffix; {text!r} does not end "
            f"in {', '.join('.' + f for f in PICTURE_FORMATS)}"
        )
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"directory {str(path.parent)!r} does not exist")
    return path


def register(sub: Any) -> None:
    p = sub.add_parser(
        "toy",
        help="the lecture's scalar toy network: forward, backward, gradients three ways",
        description="f[x, φ] = β3 + ω3·a[β2 + ω2·a[β1 + ω1·a[β0 + ω0·x]]], ℓ = (f − y)². "
        "Prints every forward and backward quantity and each parameter's gradient by the "
        "formulas, by the Value engine and by finite differences.",
    )
    # argparse takes '-1,2,3,4' (and '-1e5') for an option name unless it looks like a
    # negative number; widen that test so '--beta -1,2,3,4' works (the toy has no options
    # spelled like numbers). A private attribute: if it ever goes, '--beta=-1,2,3,4' works.
    p._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,.*)?$")
    p.add_argument("--x", type=_number, default=2.3, help="the input x (default 2.3)")
    p.add_argument("--y", type=_number, default=2.0, help="the target y (default 2.0)")
    p.add_argument(
        "--beta", type=_four_numbers("β"), default="1,2,-3,0.4",
        help="biases β0,β1,β2,β3 (default 1,2,-3,0.4)",
    )  # fmt: skip
    p.add_argument(
        "--omega", type=_four_numbers("ω"), default="0.1,-0.4,2,3",
        help="weights ω0,ω1,ω2,ω3 (default 0.1,-0.4,2,3)",
    )  # fmt: skip
    p.add_argument(
        "--activation", type=_activations, default="relu",
        help=f"one for all layers or three for layers 1..3, e.g. sin,exp,cos; "
        f"choose from {', '.join(ACTIVATIONS)} (default relu)",
    )  # fmt: skip
    p.add_argument(
        "--graph", type=_picture_path, metavar="FILE",
        help="draw the computation graph with data and grads to FILE (.svg, .png or .pdf)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from chainrule.lecture.toy import toy_network

    with np.errstate(all="ignore"):  # overflow is reported below, once
        result = toy_network(args.x, args.y, args.beta, args.omega, args.activation)
    overflowed = not all(math.isfinite(v) for v in vars(result.forward).values()) or not all(
        math.isfinite(g.autograd) and math.isfinite(g.formula) for g in result.grads.values()
    )
    if args.graph is not None:
        _draw(result, args.graph)
    if args.json:
        print(json.dumps(to_json(result), ensure_ascii=False, indent=2))
    else:
        _print_tables(result, args.graph)
    if overflowed:
        print(
            "chainrule toy: error: the values overflowed (inf or nan in the forward pass or "
            "the gradients): use smaller --x, --beta, --omega or another --activation",
            file=sys.stderr,
        )
        return 1
    return 0


def _draw(result: ToyResult, path: Path) -> None:
    from chainrule.cli import UsageError
    from chainrule.draw import GraphvizNotFoundError, draw_dot

    fmt = path.suffix.lower().lstrip(".")
    try:
        picture = draw_dot(result.graph().loss, fmt=fmt).pipe(format=fmt)
    except GraphvizNotFoundError as exc:
        raise UsageError(f"--graph: {exc}") from None
    from chainrule.io import atomic_write

    # Atomic, as model files are: a symbolic link at the target is replaced, never
    # written through, and a failed write leaves the old picture.
    def write(f: IO[bytes]) -> None:
        f.write(picture)

    try:
        atomic_write(path, write)
    except OSError as exc:
        raise UsageError(f"--graph: cannot write '{path}': {exc.strerror or exc}") from None


def _finite_or_none(v: float) -> float | None:
    # JSON has no inf or nan; a value that overflowed is written as null.
    return v if math.isfinite(v) else None


def to_json(result: ToyResult) -> dict[str, Any]:
    """The ``--json`` object: inputs, forward, backward, grads three ways, max disagreement."""
    num = _finite_or_none
    return {
        "inputs": {
            "x": result.x,
            "y": result.y,
            "beta": list(result.beta),
            "omega": list(result.omega),
            "activations": list(result.activations),
        },
        "forward": {k: num(v) for k, v in vars(result.forward).items()},
        "backward": {k: num(v) for k, v in vars(result.backward).items()},
        "grads": {
            p: {
                "formula": num(g.formula),
                "autograd": num(g.autograd),
                "finite_difference": num(g.finite_difference),
            }
            for p, g in result.grads.items()
        },
        "max_disagreement": num(result.max_disagreement),
    }


def _fmt(v: float) -> str:
    # Fixed point keeps the decimal points aligned; tiny and huge values switch to e-notation.
    if v == 0.0 or (math.isfinite(v) and 1e-4 <= abs(v) < 1e7):
        return f"{v:.10f}"
    return f"{v:.10e}"


def _symbol(param: str) -> str:
    greek = "β" if param.startswith("beta") else "ω"
    return (greek + param[-1]).translate(SUB)


def _print_tables(result: ToyResult, graph: Path | None) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    # markup off: the lecture's brackets (a[f₀], 𝕀[f₂ > 0]) are text, not rich styles.
    console = Console(file=sys.stdout, highlight=False, markup=False)
    acts = result.activations
    fwd, bwd = result.forward, result.backward
    if len(set(acts)) == 1:
        act_text = f"a = {acts[0]}"
    else:
        act_text = ", ".join(f"a{k + 1} = {n}".translate(SUB) for k, n in enumerate(acts))
    console.print(
        "f[x, φ] = β₃ + ω₃·a[β₂ + ω₂·a[β₁ + ω₁·a[β₀ + ω₀·x]]],  ℓ = (f − y)²,  "
        f"{act_text};  x = {result.x!r}, y = {result.y!r}",
        soft_wrap=True,
    )

    def table(title: str, *headers: str) -> Any:
        t = Table(title=title, title_justify="left")
        t.add_column(headers[0], no_wrap=True)
        t.add_column(headers[1], no_wrap=True)
        for h in headers[2:]:
            t.add_column(h, justify="right", no_wrap=True)
        return t

    forward = table("Forward pass", "quantity", "formula", "value")
    h_prev = "x"
    for k in range(4):
        f = f"f{k}".translate(SUB)
        forward.add_row(f, f"β{k} + ω{k}·{h_prev}".translate(SUB), _fmt(getattr(fwd, f"f{k}")))
        if k < 3:
            h_prev = f"h{k + 1}".translate(SUB)
            forward.add_row(h_prev, f"{acts[k]}[{f}]", _fmt(getattr(fwd, f"h{k + 1}")))
    forward.add_row("ℓ", "(f₃ − y)²", _fmt(fwd.loss))

    backward = table("Backward pass", "quantity", "formula", "value")
    backward.add_row("∂ℓ/∂f₃", "2(f₃ − y)", _fmt(bwd.dl_df3))
    for k in (3, 2, 1):
        f, h = f"f{k - 1}".translate(SUB), f"h{k}".translate(SUB)
        da = ACTIVATIONS[acts[k - 1]].derivative.format(z=f)
        backward.add_row(
            f"∂ℓ/∂{h}", f"ω{k}·∂ℓ/∂f{k}".translate(SUB), _fmt(getattr(bwd, f"dl_dh{k}"))
        )
        backward.add_row(f"∂ℓ/∂{f}", f"{da}·∂ℓ/∂{h}", _fmt(getattr(bwd, f"dl_df{k - 1}")))

    grads = table(
        "Parameter gradients three ways",
        "p", "∂ℓ/∂p", "by formula", "Value engine", "finite difference", "max |diff|",
    )  # fmt: skip
    for p in PARAMETERS:
        g, layer = result.grads[p], p[-1]
        h = "x" if layer == "0" else f"h{layer}"
        text = f"∂ℓ/∂f{layer}" if p.startswith("beta") else f"{h}·∂ℓ/∂f{layer}"
        grads.add_row(
            _symbol(p), text.translate(SUB), _fmt(g.formula), _fmt(g.autograd),
            _fmt(g.finite_difference), f"{g.disagreement:.1e}",
        )  # fmt: skip

    # Numbers are never cut: if a table is wider than the terminal, lines wrap instead.
    unlimited = console.options.update_width(10_000)
    console.width = max(
        console.width, *(console.measure(t, options=unlimited).maximum for t in (backward, grads))
    )
    for t in (forward, backward, grads):
        console.print(t)
    console.print(
        f"largest disagreement: {result.max_disagreement:.1e}  (formula vs Value engine "
        f"{result.max_autograd_disagreement:.1e}, formula vs finite difference "
        f"{result.max_fd_disagreement:.1e})",
        soft_wrap=True,
    )
    if graph is not None:
        console.print(f"computation graph written to {graph}", soft_wrap=True)
