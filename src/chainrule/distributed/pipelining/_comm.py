"""The one place where pipelining touches MPI: the communicator, aborting, launching.

``chainrule.distributed`` owns the process group and the ``mpiexec`` launcher: stages
talk over the communicator of the group they are given, else of the default group when
``init_process_group`` was called, else over MPI's world. ``launch`` adds to the
launcher what a pipeline needs: loopback only, and a killed rank named as its stage.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from chainrule.distributed.collectives import _Default
from chainrule.distributed.group import INSTALL_HINT, ProcessGroup
from chainrule.distributed.group import mpi as group_mpi
from chainrule.distributed.launch import mpiexec_command as launch_command


def mpi() -> Any:
    """mpi4py's ``MPI`` module, or an ImportError that names the extra to install."""
    return group_mpi()


def communicator(group: ProcessGroup | None = None) -> Any:
    """The communicator stages talk over (rank s of it runs stage s); see the module doc."""
    # The default group is read from where init_process_group keeps it (no public getter;
    # PyTorch's is private too, distributed_c10d._get_default_group).
    g = group if group is not None else _Default.group
    return g.comm if g is not None else mpi().COMM_WORLD


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
    """``chainrule.distributed``'s ``mpiexec -n n ...``, on loopback/shared memory only."""
    return launch_command(n, ["--mca", "btl_tcp_if_include", "lo", *argv])


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
        raise ImportError(f"cannot start mpiexec ({exc}): {INSTALL_HINT}") from exc
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
