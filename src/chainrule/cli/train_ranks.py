"""``chainrule train --nproc N``: the same training on N MPI ranks.

The first process checks the options (errors are reported once, before any rank starts)
and runs ``mpiexec -n N python -m chainrule.cli train ... --out FOLDER``; ``mpiexec -n N
chainrule train ...`` works as well. Every rank trains on its share of each batch; rank 0
alone prints the progress and writes the run folder (with ``world_size`` in
``config.json``). Ctrl-C makes mpiexec send SIGTERM to the ranks, which is turned into
KeyboardInterrupt here, so rank 0 keeps the last finished epoch as one process would.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chainrule.cli.train import Prepared
    from chainrule.distributed import ProcessGroup


def launched() -> bool:
    """Whether this process is a rank that mpiexec started."""
    from chainrule.distributed.launch import launched_by_mpiexec

    return launched_by_mpiexec()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def join() -> ProcessGroup | None:
    """Join the process group (None for a world of one: train as a single process)."""
    from chainrule import distributed as dist

    group = dist.init_process_group("mpi")
    if group.size == 1:
        dist.destroy_process_group()
        return None
    signal.signal(signal.SIGTERM, _interrupt)  # mpiexec's answer to Ctrl-C
    return group


def follow(p: Prepared, group: ProcessGroup) -> int:
    """A rank other than 0: train silently, write nothing."""
    from chainrule.training import TrainingDiverged, fit

    try:
        fit(p.model, p.splits, p.config, None, threads=p.threads, process_group=group)
    except KeyboardInterrupt:
        return 130
    except TrainingDiverged:
        return 1  # rank 0 reports it (every rank sees the same all-reduced loss)
    return 0


def rank_argv(args: argparse.Namespace, out: Path) -> list[str]:
    """The ``chainrule train`` options of this call, for the ranks (``--out`` fixed)."""
    from chainrule.cli.train import OVERRIDES

    argv = ["train", "--dataset", args.dataset, "--out", str(out), "--threads", str(args.threads)]
    for name in OVERRIDES:
        value = getattr(args, name)
        if value is None:
            continue
        text = ",".join(map(str, value)) if name == "hidden" else repr(value)
        argv += ["--" + name.replace("_", "-"), text.strip("'")]
    if args.no_plots:
        argv.append("--no-plots")
    return argv


def launch(nproc: int, argv: list[str], out: Path) -> int:
    """Run ``python -m chainrule.cli ARGV`` on ``nproc`` ranks; returns mpiexec's status.

    On Ctrl-C mpiexec stops the ranks (and stops forwarding their output), so this
    process says what the run folder ``out`` kept, as a one-process run would.
    """
    from chainrule.cli import UsageError
    from chainrule.distributed.launch import mpiexec_command

    try:
        cmd = mpiexec_command(nproc, [sys.executable, "-m", "chainrule.cli", *argv])
    except FileNotFoundError as exc:
        raise UsageError(f"--nproc {nproc}: {exc}") from None
    proc = subprocess.Popen(cmd)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        print(f"chainrule train: interrupted: stopped {nproc} ranks; {_kept(out)}", file=sys.stderr)
        return 130


def _kept(out: Path) -> str:
    """What the interrupted run's folder holds (removed if no epoch finished)."""
    from chainrule.training.runs import CONFIG_FILE, METRICS_FILE, MODEL_FILE, read_metrics

    if not out.is_dir():
        return "no run folder was written"
    if {f.name for f in out.iterdir()} <= {CONFIG_FILE}:
        (out / CONFIG_FILE).unlink(missing_ok=True)
        out.rmdir()
        return f"no epoch finished, removed {out}"
    done = len(read_metrics(out / METRICS_FILE))
    return f"kept {out / METRICS_FILE} and {out / MODEL_FILE} of epoch {done} (no pictures)"
