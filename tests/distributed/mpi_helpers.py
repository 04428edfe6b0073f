"""Starting a worker script on several ranks with the venv's ``mpiexec``, bounded in time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
MPIEXEC = Path(sys.executable).parent / "mpiexec"


def mpiexec(n: int) -> list[str]:
    cmd = [str(MPIEXEC), "-n", str(n), "--oversubscribe"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    return cmd


def env() -> dict[str, str]:
    e = dict(os.environ)
    src = str(HERE.parents[1] / "src")
    e["PYTHONPATH"] = src + os.pathsep + e.get("PYTHONPATH", "")
    # One BLAS thread per rank: the machine has few cores, and results must not depend on
    # how a product is split between threads.
    e["OMP_NUM_THREADS"] = e["OPENBLAS_NUM_THREADS"] = "1"
    # Loopback and shared memory only.
    e["OMPI_MCA_btl_tcp_if_include"] = "lo"
    e["OMPI_MCA_oob_tcp_if_include"] = "lo"
    return e


def run_ranks(
    n: int, script: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``mpiexec -n N python tests/distributed/SCRIPT ARGS``; raises TimeoutExpired on a hang."""
    cmd = [*mpiexec(n), sys.executable, str(HERE / script), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env())
