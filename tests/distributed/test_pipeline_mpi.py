"""Pipeline training on 2 and 4 MPI ranks (started here, each run bounded by a timeout)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from chainrule.distributed.pipelining._comm import mpiexec_command

WORKER = str(Path(__file__).with_name("pipeline_worker.py"))


def run_ranks(
    n: int, mode: str, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], float]:
    # python -m mpi4py: an exception outside a schedule's step aborts every rank too.
    cmd = mpiexec_command(n, [sys.executable, "-m", "mpi4py", WORKER, mode])
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return proc, time.monotonic() - t0


@pytest.mark.parametrize("n", [2, 4])
def test_gradients_and_parameters_equal_single_process_training(n: int) -> None:
    proc, _ = run_ranks(n, "equiv")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for rank in range(n):
        # Each rank compared its stage, for both schedules and M in {1, 2, 8}, against one
        # process training the whole model on the same batches (float64, 1e-10), and
        # checked 1F1B's peak activation bytes below GPipe's at M = 8; with recomputation
        # too (GPipe's peak then lower than without).
        assert f"rank {rank}: EQUIV OK" in proc.stdout, proc.stdout + proc.stderr
        for sched in ("ScheduleGPipe", "Schedule1F1B"):
            for m in (1, 2, 8):
                assert f"rank {rank}: {sched} M={m} " in proc.stdout
        assert f"rank {rank}: ScheduleGPipe M=8 recompute " in proc.stdout
        if n == 4:  # this run trains under chainrule.distributed's default process group
            assert f"rank {rank}: stages use the default process group" in proc.stdout
        assert f"rank {rank}: Schedule1F1B M=2 recompute " in proc.stdout


def test_a_stage_that_raises_stops_every_rank_with_the_stage_named() -> None:
    proc, seconds = run_ranks(2, "raise", timeout=60)
    assert proc.returncode != 0
    assert seconds < 30
    assert "pipeline stopped: stage 1 of 2 (rank 1) failed in step 1: RuntimeError" in proc.stderr
    assert "finished without the fault" not in proc.stdout


def test_a_killed_stage_stops_every_rank_with_the_stage_named() -> None:
    code = (
        "import sys; from chainrule.distributed.pipelining._comm import launch; "
        f"sys.exit(launch(2, [sys.executable, '-m', 'mpi4py', {WORKER!r}, 'kill'], timeout=60))"
    )
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    assert proc.returncode != 0
    assert time.monotonic() - t0 < 30
    assert "pipeline stopped: stage 1 (rank 1) was killed by signal 9" in proc.stderr
    assert "finished without the fault" not in proc.stdout


def test_mismatched_stage_shapes_are_reported_at_the_first_send() -> None:
    proc, seconds = run_ranks(2, "mismatch", timeout=60)
    assert proc.returncode != 0 and seconds < 30
    assert "failed in step 0: PipelineShapeError" in proc.stderr
    assert "takes float64 inputs of shape (*, 8), but stage 0 sends float64 of shape (4, 5)" in (
        proc.stderr
    )


def test_a_bad_call_on_one_stage_stops_every_rank_with_the_stage_named() -> None:
    proc, seconds = run_ranks(2, "badbatch", timeout=60)
    assert proc.returncode != 0 and seconds < 30
    assert (
        "pipeline stopped: stage 0 of 2 (rank 0) failed in step 1: ValueError: "
        "ScheduleGPipe.step: x of shape (10, 6) cannot be cut into 4 equal micro-batches"
    ) in " ".join(proc.stderr.split())
