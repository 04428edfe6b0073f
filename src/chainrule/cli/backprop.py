"""``chainrule backprop``: the lecture's matrix backward pass, checked, and what it costs.

For a network of ``--layers`` K hidden layers of ``--width`` D (``chainrule.lecture.backprop``)
it prints a per-layer table (shapes of f_k, h_k, ∂ℓ/∂f_k, ∂ℓ/∂Ω_k, and the largest
differences formulas vs tensor engine and formulas vs finite differences), a cost table
(FLOPs of forward, loss and backward; bytes kept for backward) and a one-line verdict.
Exit status 0 when every check holds, 1 when one does not, 2 for bad arguments.

``--json`` prints one object instead, with the keys:

- ``config``: ``layers``, ``width``, ``inputs``, ``outputs``, ``batch``, ``seed``, ``loss``.
- ``loss``: ``formulas``, ``engine`` (the value of ℓ, summed over the batch).
- ``gradient_scale``: max |entry| of the formulas' gradients; the unit of ``*_rel``.
- ``layers``: one object per layer k = 0..K with ``k``, ``f_shape``, ``h_shape``,
  ``dl_df_shape``, ``dl_domega_shape``, ``dl_dbeta_shape`` (lists, lecture layout: one
  column per input), ``engine_max_abs``, ``engine_rel``, ``fd_max_abs``, ``fd_rel``,
  ``fd_checked``, ``fd_total``, ``fd_kinks`` (entries left out at a ReLU kink).
- ``max_engine_rel``, ``max_fd_rel``, ``tolerance``: the largest relative differences and
  the bound they are held to.
- ``flops``: ``forward``, ``loss``, ``backward``, each ``{"matmul", "matmul_count",
  "other", "total"}``; ``backward_over_forward_matmul``; ``skipped_dl_dx`` (FLOPs the
  first layer's ∂ℓ/∂x would have cost); ``counting`` (what a FLOP is, in words).
- ``memory``: ``predicted_bytes`` and ``predicted_arrays`` (the lecture: all f_k, h_k),
  ``engine_saved_bytes`` (``saved_bytes``), ``activation_bytes``, ``extra_bytes``,
  ``extras`` (list of ``{"op", "role", "shape", "nbytes"}``), ``leaf_bytes`` (x, y and the
  parameters, not counted), ``input_bytes`` (x = h_0).
- ``ok`` (bool) and ``verdict`` (the one-line verdict).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chainrule.lecture.backprop import (
    LOSSES,
    MAX_LAYERS,
    BackpropCheck,
    check_backprop,
    make_problem,
)
from chainrule.lecture.backprop_cost import (
    FlopCount,
    MemoryCount,
    PhaseFlops,
    count_flops,
    measure_memory,
)
from chainrule.tensor.inspect import SavedTensor

SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
#: Both comparisons must hold to this, relative to the largest gradient entry.
TOLERANCE = 1e-8
#: Refuse networks too big to check in seconds (the finite differences rerun the network).
MAX_PARAMETERS = 2_000_000
MAX_ACTIVATIONS = 20_000_000

FLOP_COUNTING = (
    "counted from the shapes of the ufuncs the lecture's NumPy formulas executed: a matrix "
    "product (m×n)(n×p) is 2·m·n·p (a multiply-add = 2 FLOPs); every other elementwise "
    "operation (bias add, ReLU, comparison, mask multiply, exp, log) 1 per output element; "
    "a reduction n−1 adds per output"
)


def _int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer >= minimum, else an error that says so."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}")
        return value

    return parse


_positive = _int_at_least(1, "positive")
_seed = _int_at_least(0, "non-negative")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "backprop",
        help="the lecture's matrix backward pass: checked three ways, FLOPs and memory",
        description="f₀ = β₀ + Ω₀x, h_{k+1} = ReLU[f_k], f_k = β_k + Ω_k h_k. Computes every "
        "∂ℓ/∂f_k, ∂ℓ/∂Ω_k, ∂ℓ/∂β_k by the lecture's formulas, by the tensor engine and by "
        "finite differences, counts the FLOPs of the forward and backward pass, and "
        "compares the bytes the engine keeps for backward with the lecture's prediction.",
    )
    p.add_argument("--layers", type=_positive, default=5, help="K hidden layers (default 5)")
    p.add_argument("--width", type=_positive, default=6, help="D units per layer (default 6)")
    p.add_argument("--inputs", type=_positive, default=1, help="D_in (default 1)")
    p.add_argument("--outputs", type=_positive, default=1, help="D_out (default 1)")
    p.add_argument("--batch", type=_positive, default=1, help="I inputs per batch (default 1)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument(
        "--loss", choices=LOSSES, default="least-squares",
        help="least-squares ℓ = Σ‖f − y‖² or cross-entropy (summed over the batch)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(func=run)


def _check_sizes(args: argparse.Namespace) -> None:
    from chainrule.cli import UsageError

    if args.loss == "cross-entropy" and args.outputs < 2:
        raise UsageError(
            f"--outputs must be at least 2 with --loss cross-entropy (one class per output), "
            f"got {args.outputs}; pass e.g. --outputs 3"
        )
    d, k = args.width, args.layers
    if k > MAX_LAYERS:
        raise UsageError(
            f"--layers {k}: at most {MAX_LAYERS} layers are checked here (the finite "
            "differences grow with the square of the depth); lower --layers"
        )
    params = (args.inputs + 1) * d + (k - 1) * (d + 1) * d + (d + 1) * args.outputs
    if params > MAX_PARAMETERS:
        raise UsageError(
            f"--width {d} with --layers {k} makes {params:,} parameters; at most "
            f"{MAX_PARAMETERS:,} are checked here: lower --width or --layers"
        )
    acts = args.batch * (2 * k * d + args.outputs)
    if acts > MAX_ACTIVATIONS:
        raise UsageError(
            f"--batch {args.batch} makes {acts:,} activations (f_k and h_k); at most "
            f"{MAX_ACTIVATIONS:,}: lower --batch, --width or --layers"
        )


def run(args: argparse.Namespace) -> int:
    _check_sizes(args)
    problem = make_problem(
        args.layers, args.width, args.inputs, args.outputs, args.batch, args.seed, args.loss
    )
    report = Report(check_backprop(problem), count_flops(problem), measure_memory(problem))
    if args.json:
        print(json.dumps(to_json(args, report), ensure_ascii=False, indent=2))
    else:
        _print_tables(args, report)
    return 0 if report.ok else 1


@dataclass(frozen=True)
class Report:
    """The check, the FLOP count and the memory count of one network, and the verdict."""

    check: BackpropCheck
    flops: FlopCount
    memory: MemoryCount

    @property
    def ok(self) -> bool:
        """Both comparisons within TOLERANCE and the loss the same."""
        c = self.check
        return (
            c.max_engine_rel <= TOLERANCE and c.max_fd_rel <= TOLERANCE and c.loss_rel <= TOLERANCE
        )

    def verdict(self) -> str:
        """One line: do the three agree, the FLOP ratio, and the bytes kept."""
        c, f, m = self.check, self.flops, self.memory
        kinks = sum(layer.fd_kinks for layer in c.layers)
        kink_text = f", {kinks} entries at a ReLU kink left out" if kinks else ""
        head = "backprop checks out" if self.ok else f"MISMATCH (tolerance {TOLERANCE:.0e})"
        return (
            f"{head}: formulas = engine to {c.max_engine_rel:.1e} and = finite differences "
            f"to {c.max_fd_rel:.1e} (relative{kink_text}); backward/forward matrix-product "
            f"FLOPs = {f.matmul_ratio:.3f} (2 less the skipped ∂ℓ/∂x); the engine keeps "
            f"{m.engine_bytes:,} B for backward = {m.activation_bytes:,} B of the lecture's "
            f"{m.predicted_bytes:,} B of activations (what its rules read) + "
            f"{m.extra_bytes:,} B of loss intermediates"
        )


def _phase(p: PhaseFlops) -> dict[str, int]:
    return {"matmul": p.matmul, "matmul_count": p.matmul_count, "other": p.other, "total": p.total}


def to_json(args: argparse.Namespace, report: Report) -> dict[str, Any]:
    """The ``--json`` object (keys in the module docstring)."""
    c, f, m = report.check, report.flops, report.memory
    keys = ("layers", "width", "inputs", "outputs", "batch", "seed", "loss")
    return {
        "config": {key: getattr(args, key) for key in keys},
        "loss": {"formulas": c.formulas.loss, "engine": c.engine.loss},
        "gradient_scale": c.scale,
        "layers": [
            {
                "k": layer.k,
                "f_shape": list(layer.f_shape),
                "h_shape": list(layer.h_shape),
                "dl_df_shape": list(layer.dl_df_shape),
                "dl_domega_shape": list(layer.dl_domega_shape),
                "dl_dbeta_shape": list(layer.dl_dbeta_shape),
                "engine_max_abs": layer.engine_abs,
                "engine_rel": layer.engine_abs / c.scale,
                "fd_max_abs": layer.fd_abs,
                "fd_rel": layer.fd_abs / c.scale,
                "fd_checked": layer.fd_checked,
                "fd_total": layer.fd_total,
                "fd_kinks": layer.fd_kinks,
            }
            for layer in c.layers
        ],
        "max_engine_rel": c.max_engine_rel,
        "max_fd_rel": c.max_fd_rel,
        "tolerance": TOLERANCE,
        "flops": {
            "forward": _phase(f.forward),
            "loss": _phase(f.loss),
            "backward": _phase(f.backward),
            "backward_over_forward_matmul": f.matmul_ratio,
            "skipped_dl_dx": f.skipped_dl_dx,
            "counting": FLOP_COUNTING,
        },
        "memory": {
            "predicted_bytes": m.predicted_bytes,
            "predicted_arrays": m.predicted_arrays,
            "engine_saved_bytes": m.engine_bytes,
            "activation_bytes": m.activation_bytes,
            "extra_bytes": m.extra_bytes,
            "extras": [
                {"op": s.op, "role": s.role, "shape": list(s.shape), "nbytes": s.nbytes}
                for s in m.extras
            ],
            "leaf_bytes": sum(s.nbytes for s in m.leaves),
            "input_bytes": m.input_bytes,
        },
        "ok": report.ok,
        "verdict": report.verdict(),
    }


#: What the loss's saved arrays are, by the engine operation and role that saved them.
LOSS_ARRAYS = {
    ("mul", "input 0"): "f_K − y",
    ("mul", "input 1"): "f_K − y",
    ("cross_entropy", "residual"): "softmax(f_K) and the target positions",
}


def _loss_array(s: SavedTensor) -> str:
    return LOSS_ARRAYS.get((s.op, s.role), "")


def explain_memory(m: MemoryCount) -> str:
    """Why the engine's bytes differ from the lecture's prediction, from what it saved."""
    extras = ", ".join(
        f"{_loss_array(s) or s.op + ' ' + s.role} ({s.nbytes:,} B)" for s in m.extras
    )
    f_bytes = sum(s.nbytes for s in m.kept_f)
    h_bytes = sum(s.nbytes for s in m.kept_h)
    return (
        f"The engine keeps {m.activation_bytes:,} B of the lecture's {m.predicted_bytes:,} B "
        f"of f_k and h_k: only what its rules read. Every h_k ({h_bytes:,} B; ReLU's rule "
        "reads its mask 𝕀[f_k > 0] = 𝕀[h_k > 0] from h_k, the next layer's ∂ℓ/∂Ω rule reads "
        f"it too: kept once), and of the f_k only those another rule reads ({f_bytes:,} B: "
        "the logits a cross-entropy reads). Plus the arrays the loss's own operations keep: "
        f"{extras or 'none'}. x (h₀) and the parameters belong to the caller and are not "
        "counted."
    )


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(n) for n in shape) if shape else "scalar"


def _print_tables(args: argparse.Namespace, report: Report) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    # markup off: the lecture's brackets (ReLU[f_k], 𝕀[f > 0]) are text, not rich styles.
    console = Console(file=sys.stdout, highlight=False, markup=False)
    c, f, m = report.check, report.flops, report.memory
    k_max = args.layers
    console.print(
        f"K = {k_max} hidden layers of width D = {args.width}, D_in = {args.inputs}, "
        f"D_out = {args.outputs}, batch I = {args.batch}, seed {args.seed}, loss "
        f"{args.loss}: ℓ = {c.formulas.loss:.12g} (engine {c.engine.loss:.12g}); "
        "shapes with one column per input",
        soft_wrap=True,
    )

    def table(title: str, *headers: str) -> Any:
        t = Table(title=title, title_justify="left")
        t.add_column(headers[0], no_wrap=True)
        for h in headers[1:]:
            t.add_column(h, justify="right", no_wrap=True)
        return t

    layers = table(
        f"Per layer: f_k = β_k + Ω_k h_k (differences relative to max|∂ℓ/∂·| = {c.scale:.3g})",
        "k", "f_k", "h_k", "∂ℓ/∂f_k", "∂ℓ/∂Ω_k", "formulas vs engine", "formulas vs FD",
        "FD entries",
    )  # fmt: skip
    for layer in c.layers:
        h_name = "x " if layer.k == 0 else ""
        kinks = f" ({layer.fd_kinks} at kink)" if layer.fd_kinks else ""
        layers.add_row(
            str(layer.k),
            _shape(layer.f_shape),
            h_name + _shape(layer.h_shape),
            _shape(layer.dl_df_shape),
            _shape(layer.dl_domega_shape),
            f"{layer.engine_abs / c.scale:.1e}",
            f"{layer.fd_abs / c.scale:.1e}",
            f"{layer.fd_checked}/{layer.fd_total}{kinks}",
        )

    flops = table(
        "FLOPs (counted from the executed operations; multiply-add = 2)",
        "phase", "matrix products", "matrix-product FLOPs", "other FLOPs", "total FLOPs",
    )  # fmt: skip
    phases = (
        ("forward: f_k, h_k", f.forward),
        ("loss: ℓ, ∂ℓ/∂f_K", f.loss),
        ("backward: ∂ℓ/∂f_k, ∂ℓ/∂Ω_k, ∂ℓ/∂β_k", f.backward),
    )
    for name, p in phases:
        flops.add_row(name, str(p.matmul_count), f"{p.matmul:,}", f"{p.other:,}", f"{p.total:,}")

    memory = table("Memory kept for the backward pass (float64)", "what", "arrays", "bytes")
    memory.add_row(
        f"lecture: all f_k and h_k (f₀..f{k_max}, h₁..h{k_max})".translate(SUB),
        str(m.predicted_arrays),
        f"{m.predicted_bytes:,}",
    )
    memory.add_row(
        "engine: saved_bytes(ℓ)", str(len(m.activations) + len(m.extras)), f"{m.engine_bytes:,}"
    )
    memory.add_row(
        "  of which h_k (relu) and f_k a rule reads",
        str(len(m.activations)),
        f"{m.activation_bytes:,}",
    )
    for s in m.extras:
        what = _loss_array(s)
        memory.add_row(
            f"  of which {s.op} {s.role} {what} ({_shape(s.shape)})", "1", f"{s.nbytes:,}"
        )
    memory.add_row(
        "not counted: x, y, Ω_k, β_k (leaves)",
        str(len(m.leaves)),
        f"{sum(s.nbytes for s in m.leaves):,}",
    )

    unlimited = console.options.update_width(10_000)
    console.width = max(
        console.width,
        *(console.measure(t, options=unlimited).maximum for t in (layers, flops, memory)),
    )
    console.print(layers)
    console.print(flops)
    with_dx = f.backward.matmul + f.skipped_dl_dx
    console.print(
        f"backward/forward in matrix products: {f.backward.matmul:,} / {f.forward.matmul:,} = "
        f"{f.matmul_ratio:.3f}. Each Ω_k h_k of the forward pass has two backward products, "
        f"∂ℓ/∂f_k h_kᵀ and Ω_kᵀ ∂ℓ/∂f_k, but Ω₀ᵀ ∂ℓ/∂f₀ = ∂ℓ/∂x is skipped "
        f"({f.skipped_dl_dx:,} FLOPs); with it the ratio would be "
        f"{with_dx / f.forward.matmul:.3f}.",
        soft_wrap=True,
    )
    console.print(memory)
    console.print(explain_memory(m), soft_wrap=True)
    console.print(report.verdict(), soft_wrap=True)
