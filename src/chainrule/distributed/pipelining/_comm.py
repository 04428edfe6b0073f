"""The one place where pipelining touches MPI: the communicator, aborting, launching.

Issue 11's ``chainrule.distributed`` owns the process group. Until a pipeline branch and
that layer are merged, this module reads mpi4py directly (``COMM_WORLD``); merging them
means changing ``communicator()`` (take the group's communicator when it is initialized)
and ``mpiexec_command()`` (use the launcher of ``chainrule.distributed``), nothing else.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

EXTRA = "pip install 'chainrule[distributed]'"


def mpi() -> Any:
    """mpi4py's ``MPI`` module, or an ImportError that names the extra to install."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(
            f"chainrule.distributed.pipelining needs mpi4py and an MPI library ({exc}); "
            f"install them with: {EXTRA}"
        ) from exc
    return MPI


def communicator() -> Any:
    """The communicator that stages talk over: MPI's world (one rank = one stage)."""
    return mpi().COMM_WORLD


def abort(comm: Any, message: str) -> NoReturn:
    """Print ``message`` and the current traceback, then stop every rank of ``comm``.

    A stage that fails cannot tell its neighbours, which would wait in ``Recv`` forever;
    ``MPI_Abort`` makes the launcher end all of them (Open MPI: within a second).
    """
    traceback.print_exc(file=sys.stderr)
    print(message, file=sys.stderr, flush=True)
    sys.stdout.flush()
    comm.Abort(1)
    raise SystemExit(1)  # pragma: no cover - Abort does not return


def mpiexec_command(n: int, argv: Sequence[str]) -> list[str]:
    """``mpiexec -n n ... argv`` with the venv's mpiexec, loopback/shared memory only."""
    exe = Path(sys.executable).parent / "mpiexec"
    cmd = [str(exe) if exe.exists() else "mpiexec", "-n", str(n), "--oversubscribe"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    # Stay on this machine: TCP only over loopback, shared memory between ranks.
    cmd += ["--mca", "btl_tcp_if_include", "lo"]
    return cmd + list(argv)


_RANK_DIED = re.compile(r"process rank (\d+) with PID \d+ on node \S+ exited on\s+signal (\d+)")


def launch(
    n: int,
    argv: Sequence[str],
    timeout: float | None = None,
    extra_env: dict[str, str] | None = None,
) -> int:
    """Run ``argv`` on ``n`` ranks; return the exit status, naming a stage that was killed.

    The ranks' output passes through. When a rank dies by a signal, Open MPI's launcher
    reports the rank; rank k runs stage k, so the stage is named in one extra line.
    ``extra_env`` is added to the ranks' environment.
    """
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # one BLAS thread per rank: ranks share the cores
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.update(extra_env or {})
    try:
        proc = subprocess.run(
            mpiexec_command(n, argv), env=env, stderr=subprocess.PIPE, text=True, timeout=timeout
        )
    except FileNotFoundError as exc:
        raise ImportError(f"cannot start mpiexec ({exc}); install it with: {EXTRA}") from exc
    sys.stderr.write(proc.stderr)
    died = _RANK_DIED.search(" ".join(proc.stderr.split()))
    if proc.returncode != 0 and died:
        print(
            f"pipeline stopped: stage {died.group(1)} (rank {died.group(1)}) was killed by "
            f"signal {died.group(2)}",
            file=sys.stderr,
            flush=True,
        )
    return proc.returncode
