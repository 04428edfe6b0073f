"""The process group: what MPI gives a process (its rank, the world size, a communicator).

mpi4py does the messaging; this module only keeps the communicator in an object and waits
on its non-blocking requests with a deadline, so that a collective that some ranks never
call is reported instead of hanging the job. mpi4py is imported lazily: the rest of
chainrule works without it.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

INSTALL_HINT = "install the extra: pip install 'chainrule[distributed]' (mpi4py and Open MPI)"

#: Tag of the messages ranks send each other when a collective times out (on a separate
#: communicator, so they never mix with the collectives' own traffic).
_STUCK_TAG = 17


def mpi() -> Any:
    """The ``mpi4py.MPI`` module (importing it initialises MPI), or a clear ImportError."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"chainrule.distributed needs mpi4py: {INSTALL_HINT}.") from e
    return MPI


class DistributedTimeoutError(RuntimeError):
    """A collective did not complete in time: not every rank called it."""


def seconds_of(timeout: float | timedelta) -> float:
    """A timeout as seconds (PyTorch passes a ``timedelta``; a number of seconds is fine)."""
    s = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if not s > 0:
        raise ValueError(f"init_process_group: timeout must be positive, got {timeout!r}.")
    return s


class ProcessGroup:
    """A communicator with its rank and size, and a deadline for every collective.

    Args:
        comm: an mpi4py intracommunicator (``MPI.COMM_WORLD`` for the whole job).
        timeout: seconds a rank waits in one collective before it raises
            ``DistributedTimeoutError``.
    """

    def __init__(self, comm: Any, timeout: float = 1800.0) -> None:
        self.comm = comm
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()
        self.timeout = float(timeout)
        # Diagnostics go through their own communicator (same ranks, separate context).
        self._diag = comm.Dup()
        self._seq = 0  # collectives started so far: the same count on every rank

    def next_op(self) -> int:
        """Number the next collective (every rank numbers them alike when all is well)."""
        self._seq += 1
        return self._seq

    def wait(self, request: Any, op: str, seq: int) -> None:
        """Wait for a non-blocking request, or raise after ``timeout`` seconds."""
        self.wait_all([request], op, seq)

    def wait_all(self, requests: list[Any], op: str, seq: int, start: float | None = None) -> None:
        """Wait for every request; poll with a growing pause so a waiting rank yields the CPU."""
        deadline = (time.monotonic() if start is None else start) + self.timeout
        pause = 1e-6
        pending = [r for r in requests if r is not None]
        while pending:
            pending = [r for r in pending if not r.Test()]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise self._timed_out(op, seq)
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)

    def _timed_out(self, op: str, seq: int) -> DistributedTimeoutError:
        """Tell the other ranks where this one is stuck, listen briefly, and name who is where.

        Ranks stuck in the same collective time out at about the same moment, so each one
        hears from the others within the grace period; a rank that never called the
        collective says nothing (or names the collective it is waiting in instead).
        """
        MPI = mpi()
        note = f"{seq}:{op}"
        sends = [
            self._diag.isend(note, dest=r, tag=_STUCK_TAG)
            for r in range(self.size)
            if r != self.rank
        ]
        heard: dict[int, str] = {}
        grace_end = time.monotonic() + min(2.0, max(0.5, self.timeout))
        status = MPI.Status()
        while time.monotonic() < grace_end and len(heard) < self.size - 1:
            if self._diag.iprobe(source=MPI.ANY_SOURCE, tag=_STUCK_TAG, status=status):
                src = status.Get_source()
                heard[src] = self._diag.recv(source=src, tag=_STUCK_TAG)
            else:
                time.sleep(0.01)
        for s in sends:
            s.Cancel()
        joined = sorted([self.rank] + [r for r, n in heard.items() if n == note])
        elsewhere = {r: n.split(":", 1) for r, n in heard.items() if n != note}
        missing = [r for r in range(self.size) if r not in joined and r not in elsewhere]
        parts = [f"rank(s) {joined} called it"]
        if missing:
            parts.append(f"rank(s) {missing} did not call it")
        for r, (s, o) in sorted(elsewhere.items()):
            parts.append(f"rank {r} is waiting in {o} (collective #{s}) instead")
        return DistributedTimeoutError(
            f"{op} (collective #{seq} of the process group) timed out after {self.timeout:g} s "
            f"on rank {self.rank} of {self.size}: {'; '.join(parts)}. Every rank must call the "
            "same collectives in the same order; raise init_process_group(timeout=...) if a "
            "rank is only slow."
        )

    def free(self) -> None:
        """Release the diagnostics communicator (the world communicator is MPI's own)."""
        MPI = mpi()
        if self._diag != MPI.COMM_NULL:
            self._diag.Free()

    def __repr__(self) -> str:
        return f"ProcessGroup(rank={self.rank}, size={self.size}, timeout={self.timeout:g})"
