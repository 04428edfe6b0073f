"""A failing, killed, mismatched or interrupted rank stops the whole job, with a message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from .mpi_helpers import HERE, env, mpiexec, run_ranks


def test_a_rank_that_raises_stops_every_rank_with_its_error() -> None:
    start = time.monotonic()
    r = run_ranks(3, "rank_faults.py", "raise", timeout=60)
    assert time.monotonic() - start < 30
    assert r.returncode != 0
    assert "rank 1: ValueError: the data of rank 1 ran out" in r.stderr


def test_a_rank_killed_with_sigkill_stops_every_rank() -> None:
    start = time.monotonic()
    r = run_ranks(2, "rank_faults.py", "kill", timeout=60)
    assert time.monotonic() - start < 30
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "rank 1" in out and "signal 9" in out, out  # mpiexec names the rank and signal


def test_models_that_differ_across_ranks_fail_at_construction_on_every_rank() -> None:
    r = run_ranks(2, "rank_faults.py", "structure", timeout=60)
    assert r.returncode != 0
    assert "DistributedDataParallel: the model differs across ranks" in r.stderr
    assert "'layers.0.weight' of shape (8, 4) (float32) on rank 0" in r.stderr
    assert "(9, 4) (float32) on rank 1" in r.stderr


def test_a_collective_some_ranks_skip_times_out_naming_the_op_and_the_ranks() -> None:
    start = time.monotonic()
    r = run_ranks(3, "rank_faults.py", "partial", timeout=60)
    assert time.monotonic() - start < 30
    assert r.returncode != 0
    assert "all_reduce (collective #1 of the process group) timed out after 2 s" in r.stderr
    assert "rank(s) [0, 1] called it; rank(s) [2] did not call it" in r.stderr


@pytest.mark.parametrize("fault", ["ddp_partial", "ddp_partial_overlap"])
def test_a_ddp_backward_some_ranks_skip_times_out_naming_the_op_and_the_ranks(
    fault: str,
) -> None:
    start = time.monotonic()
    r = run_ranks(3, "rank_faults.py", fault, timeout=60)
    assert time.monotonic() - start < 30
    assert r.returncode != 0
    assert "DistributedDataParallel gradient all_reduce (collective #" in r.stderr
    assert "timed out after 2 s" in r.stderr
    assert "rank(s) [0, 1] called it; rank(s) [2] did not call it" in r.stderr


def test_ctrl_c_stops_every_rank() -> None:
    cmd = [*mpiexec(2), sys.executable, str(HERE / "rank_faults.py"), "forever"]
    p = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        start_new_session=True,
    )
    try:
        assert p.stdout is not None
        seen = [p.stdout.readline() for _ in range(2)]
        assert all("ready" in line for line in seen), seen
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)  # what the terminal sends mpiexec on Ctrl-C
        p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode != 0
    for line in seen:  # every rank process is gone, not only mpiexec
        assert gone(int(line.split()[-1]))


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False
