"""Starting a command on several ranks with the ``mpiexec`` next to this Python.

``pip install 'chainrule[distributed]'`` puts Open MPI's ``mpiexec`` in the environment's
``bin`` folder; on a cluster pass ``--hostfile`` to ``mpiexec`` yourself instead.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from chainrule.distributed.group import INSTALL_HINT


def find_mpiexec() -> str:
    """The ``mpiexec`` beside the running interpreter, else the first one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise FileNotFoundError(
            f"mpiexec was not found beside {sys.executable} or on PATH: {INSTALL_HINT}."
        )
    return found


def mpiexec_command(nproc: int, argv: list[str]) -> list[str]:
    """``mpiexec -n N`` for this machine (oversubscribed: more ranks than cores is allowed)."""
    if nproc < 1:
        raise ValueError(f"mpiexec_command: nproc must be at least 1, got {nproc}.")
    cmd = [find_mpiexec(), "-n", str(nproc), "--oversubscribe"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")  # Open MPI refuses root unless told
    return cmd + argv


def launched_by_mpiexec() -> bool:
    """Whether this process is a rank that ``mpiexec`` started (Open MPI/PMIx set these)."""
    return any(k in os.environ for k in ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"))
