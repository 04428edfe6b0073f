"""``chainrule pipeline``: train a deep MLP split into K stages on K MPI ranks, and show it.

``chainrule pipeline --stages K --microbatches M --schedule gpipe|1f1b`` starts
``mpiexec -n K`` itself (``mpiexec -n K chainrule pipeline ...`` works too), trains the
model of ``chainrule.lecture.pipeline`` and writes ``timeline.png`` in ``--out``: one row
per stage, a forward and a backward block per micro-batch, from the last step's real
timestamps. It prints the measured bubble next to the tick model's (K - 1)/(M + K - 1),
and each stage's peak activation memory. ``--memory-cap MB`` limits every rank's memory
(see ``chainrule.lecture.pipeline``): a model too big for one process fails with a
one-line out-of-memory error and writes nothing, and trains on enough stages.
Exit status 0 on success, 1 when a stage failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chainrule.cli import UsageError

OPTIONS = ("stages", "microbatches", "schedule", "steps", "batch", "width", "layers", "lr",
           "seed", "memory_cap")  # fmt: skip


def _number(kind: type, minimum: float, what: str) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not value >= minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


def register(sub: Any) -> None:
    from chainrule.cli import plain

    p = sub.add_parser("pipeline", help="pipeline-parallel training on K ranks; timeline.png",
                       description=plain(__doc__.split("\n\n")[0]))  # fmt: skip
    positive = _number(int, 1, "a positive integer")
    p.add_argument("--stages", type=positive, default=2, help="K stages = ranks (default 2)")
    p.add_argument("--microbatches", type=positive, default=4, help="M per batch (default 4)")
    p.add_argument("--schedule", choices=["gpipe", "1f1b"], default="1f1b")
    p.add_argument("--steps", type=positive, default=20, help="optimizer steps (default 20)")
    p.add_argument("--batch", type=positive, default=64, help="batch size (default 64)")
    p.add_argument("--width", type=positive, default=256, help="units per layer (default 256)")
    p.add_argument("--layers", type=positive, default=8, help="Linear layers (default 8)")
    p.add_argument("--lr", type=_number(float, 1e-300, "a positive number"), default=1e-3)
    p.add_argument("--seed", type=_number(int, 0, "a non-negative integer"), default=0)
    p.add_argument("--memory-cap", type=_number(float, 1e-300, "a positive number of MiB"),
                   metavar="MB", help="memory per process for the model (MiB)")  # fmt: skip
    p.add_argument("--recompute", action="store_true",
                   help="keep stage inputs only; recompute the rest in backward")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("."), help="folder for timeline.png")
    p.add_argument("--rank-worker", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    if args.layers < args.stages:
        raise UsageError(
            f"--stages {args.stages} needs at least as many layers, got --layers {args.layers}"
        )
    if args.batch % args.microbatches:
        raise UsageError(
            f"--batch {args.batch} cannot be cut into --microbatches {args.microbatches} equal "
            "micro-batches; use a batch divisible by the number of micro-batches"
        )
    if not args.out.is_dir():
        raise UsageError(f"--out {args.out}: no such directory; create it first")


def run(args: argparse.Namespace) -> int:
    _check(args)
    from chainrule.distributed.launch import launched_by_mpiexec

    if args.rank_worker or launched_by_mpiexec():
        return _worker(args)
    from chainrule.distributed.pipelining._comm import launch

    argv = [sys.executable, "-m", "chainrule.cli", "pipeline", "--rank-worker",
            "--out", str(args.out)]  # fmt: skip
    if args.recompute:
        argv.append("--recompute")
    for name in OPTIONS:
        value = getattr(args, name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    # With a memory cap, a fixed malloc threshold: every array over 64 KiB gets its own
    # mapping, returned to the OS when freed, so a rank's private memory (what the cap
    # limits) follows its live arrays instead of the heap's high-water mark.
    env = {"MALLOC_MMAP_THRESHOLD_": "65536"} if args.memory_cap else {}
    try:
        code = launch(args.stages, argv, extra_env=env)
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    return 0 if code == 0 else 1


def _config(args: argparse.Namespace) -> Any:
    from chainrule.lecture.pipeline import PipelineConfig

    return PipelineConfig(
        stages=args.stages, microbatches=args.microbatches, schedule=args.schedule,
        steps=args.steps, batch=args.batch, width=args.width, layers=args.layers, lr=args.lr,
        seed=args.seed, memory_cap_mb=args.memory_cap, recompute=args.recompute,
    )  # fmt: skip


def _worker(args: argparse.Namespace) -> int:
    from chainrule.distributed.pipelining._comm import abort, communicator
    from chainrule.lecture.pipeline import OutOfMemory, run_rank

    comm = communicator()
    if comm.Get_size() != args.stages:
        message = (f"chainrule pipeline: error: --stages {args.stages} needs {args.stages} "
                   f"ranks, but mpiexec started {comm.Get_size()}")  # fmt: skip
        if comm.Get_rank() == 0:
            print(message, file=sys.stderr, flush=True)
        comm.Barrier()
        return 2
    config = _config(args)
    try:
        reports = run_rank(config)
    except OutOfMemory as exc:  # one stage: nothing to abort, nothing was written
        print(f"chainrule pipeline: error: {exc}", file=sys.stderr)
        return 1
    if reports is None:
        return 0
    try:
        _report(config, reports, args.out / "timeline.png")
    except Exception as exc:  # rank 0 must not leave the others waiting
        if comm.Get_size() == 1:
            raise
        abort(comm, f"pipeline stopped: rank 0 could not report: {type(exc).__name__}: {exc}")
    return 0


def _report(config: Any, reports: list[Any], png: Path) -> None:
    from chainrule.distributed.pipelining.timeline import draw_timeline
    from chainrule.lecture.pipeline import summarize

    s = summarize(config, reports)
    k, m = config.stages, config.microbatches
    print(f"pipeline: {k} stages × {m} micro-batches, schedule {config.schedule}, "
          f"{config.steps} steps of batch {config.batch} (MLP {config.width} × "
          f"{config.layers} layers, float32, Adam"
          f"{', recomputation' if config.recompute else ''})")  # fmt: skip
    print(f"bubble: measured {s.measured_bubble:.3f} (median of {s.measured_steps} steps), "
          f"tick model {s.tick_bubble:.3f} = {s.formula}")  # fmt: skip
    print(f"{'stage':>5}  {'layers':>7}  {'parameters':>10}  {'peak activations':>16}  "
          f"{'F ms':>6}  {'B ms':>6}  {'memory':>9}")  # fmt: skip
    for r, (f_ms, b_ms) in zip(reports, s.stage_ms, strict=True):
        layers = f"{r.layers[0]}-{r.layers[1]}"
        print(f"{r.stage:>5}  {layers:>7}  {r.parameters:>10}  "
              f"{r.peak_activation_bytes / 1024:>13.1f} KiB  {f_ms:>6.2f}  {b_ms:>6.2f}  "
              f"{r.private_bytes / 2**20:>5.0f} MiB")  # fmt: skip
    cap = f" (cap {config.memory_cap_mb:g} MiB)" if config.memory_cap_mb else ""
    print(f"memory: a stage's private memory over its start-up baseline, after each step{cap}")
    losses = reports[-1].losses
    print(f"loss (mean squared error): step 1 {losses[0]:.4f} → step {len(losses)} "
          f"{losses[-1]:.4f}")  # fmt: skip
    title = (f"{config.schedule.upper()}: {k} stages, {m} micro-batches, step {config.steps} "
             f"(bubble measured {s.measured_bubble:.2f}, ticks {s.tick_bubble:.2f})")  # fmt: skip
    draw_timeline([r.events[-1] for r in reports], png, title)
    print(f"wrote {png}")
