"""PyTorch's ``torch.distributed`` surface over a ``ProcessGroup``.

Arrays travel through mpi4py's buffer methods (upper-case: ``Iallreduce``, ``Ibcast``),
in place, without pickling; only ``all_gather_object`` pickles. Every collective is
started non-blocking and waited for with the group's deadline (see ``ProcessGroup.wait``).
"""

from __future__ import annotations

import enum
import pickle
from datetime import timedelta
from typing import Any

import numpy as np

from chainrule.distributed import faults
from chainrule.distributed.group import ProcessGroup, mpi, seconds_of
from chainrule.tensor.primitive import mark_modified
from chainrule.tensor.tensor import Tensor


class ReduceOp(enum.Enum):
    """How ``all_reduce`` combines the ranks' values (``AVG``: the sum over the world size)."""

    SUM = "SUM"
    PRODUCT = "PROD"
    MIN = "MIN"
    MAX = "MAX"
    AVG = "AVG"


class _Default:
    """The group the functions use when none is passed; ``destroy_process_group`` clears it."""

    group: ProcessGroup | None = None


def init_process_group(
    backend: str = "mpi", *, timeout: float | timedelta = 1800.0, handle_faults: bool = True
) -> ProcessGroup:
    """Join the job: rank and world size as ``mpiexec`` started this process.

    A process started without ``mpiexec`` is a world of one. With more than one rank, an
    uncaught exception on any rank prints ``rank R: <error>`` and aborts the whole job
    (``handle_faults=False`` leaves ``sys.excepthook`` alone).

    Args:
        backend: ``"mpi"``, the only one (MPI through mpi4py).
        timeout: how long a rank waits in one collective before it raises
            ``DistributedTimeoutError`` naming the operation and the ranks (seconds or a
            ``timedelta``; default 30 minutes, as PyTorch).
        handle_faults: install the excepthook that aborts every rank on an error.

    Returns:
        the default process group.

    Example:
        >>> import chainrule.distributed as dist
        >>> g = dist.init_process_group("mpi")
        >>> dist.get_rank(), dist.get_world_size()
        (0, 1)
        >>> dist.destroy_process_group()
    """
    if backend != "mpi":
        raise ValueError(
            f"init_process_group: backend {backend!r} is not available; chainrule "
            "communicates through MPI: init_process_group('mpi')."
        )
    if _Default.group is not None:
        raise RuntimeError(
            "init_process_group: this process is already in a process group; call "
            "destroy_process_group() first."
        )
    seconds = seconds_of(timeout)
    group = ProcessGroup(mpi().COMM_WORLD, timeout=seconds)
    _Default.group = group
    if handle_faults and group.size > 1:
        faults.install(group)
    return group


def is_initialized() -> bool:
    """Whether ``init_process_group`` has been called (and not undone)."""
    return _Default.group is not None


def _group(group: ProcessGroup | None, what: str) -> ProcessGroup:
    g = group if group is not None else _Default.group
    if g is None:
        raise RuntimeError(
            f"{what}: the default process group is not initialised; call "
            "chainrule.distributed.init_process_group('mpi') first."
        )
    return g


def get_rank(group: ProcessGroup | None = None) -> int:
    """This process's rank, 0 .. world size - 1."""
    return _group(group, "get_rank").rank


def get_world_size(group: ProcessGroup | None = None) -> int:
    """How many ranks the group has."""
    return _group(group, "get_world_size").size


def destroy_process_group(group: ProcessGroup | None = None) -> None:
    """Leave the group: the default one is forgotten, the excepthook taken off."""
    g = _group(group, "destroy_process_group")
    if g is _Default.group:
        _Default.group = None
    faults.uninstall(g)
    g.free()


def barrier(group: ProcessGroup | None = None) -> None:
    """Wait until every rank of the group has reached this call."""
    g = _group(group, "barrier")
    seq = g.next_op()
    g.wait(g.comm.Ibarrier(), "barrier", seq)


def _array(tensor: Tensor | np.ndarray, what: str) -> np.ndarray:
    data = tensor._data if isinstance(tensor, Tensor) else tensor
    if not isinstance(data, np.ndarray):
        raise TypeError(f"{what}: expected a Tensor or NumPy array, got {type(tensor).__name__}.")
    if not data.flags.writeable:
        raise ValueError(f"{what}: the array of shape {data.shape} is read-only; pass a copy.")
    return data


def _written(tensor: Tensor | np.ndarray, data: np.ndarray, result: np.ndarray) -> None:
    if result is not data:  # a non-contiguous array went through a contiguous copy
        data[...] = result
    if isinstance(tensor, Tensor):
        mark_modified(tensor)  # a graph that saved the old value must not use the new one


def start_all_reduce(g: ProcessGroup, buf: np.ndarray, op: ReduceOp) -> Any:
    """Start an in-place sum/product/min/max of a contiguous array; returns the request."""
    MPI = mpi()
    mpi_op = MPI.SUM if op is ReduceOp.AVG else getattr(MPI, op.value)
    return g.comm.Iallreduce(MPI.IN_PLACE, buf, op=mpi_op)


def all_reduce(
    tensor: Tensor | np.ndarray, op: ReduceOp = ReduceOp.SUM, group: ProcessGroup | None = None
) -> None:
    """Combine the tensor across ranks, in place on every rank: x ← Σ_r x_r (or op).

    Args:
        tensor: a Tensor or NumPy array, the same shape and dtype on every rank.
        op: ``ReduceOp.SUM`` (default), ``PRODUCT``, ``MIN``, ``MAX`` or ``AVG``.
        group: the process group (default: the one ``init_process_group`` made).
    """
    g = _group(group, "all_reduce")
    if not isinstance(op, ReduceOp):
        raise TypeError(f"all_reduce: op must be a ReduceOp (e.g. ReduceOp.SUM), got {op!r}.")
    data = _array(tensor, "all_reduce")
    buf = np.ascontiguousarray(data)
    seq = g.next_op()
    g.wait(start_all_reduce(g, buf, op), "all_reduce", seq)
    if op is ReduceOp.AVG:
        buf /= g.size
    _written(tensor, data, buf)


def broadcast(tensor: Tensor | np.ndarray, src: int, group: ProcessGroup | None = None) -> None:
    """Copy rank ``src``'s tensor into the tensor of every rank, in place."""
    g = _group(group, "broadcast")
    if not 0 <= src < g.size:
        raise ValueError(f"broadcast: src must be a rank in 0..{g.size - 1}, got {src}.")
    data = _array(tensor, "broadcast")
    buf = np.ascontiguousarray(data)
    seq = g.next_op()
    g.wait(g.comm.Ibcast(buf, root=src), "broadcast", seq)
    _written(tensor, data, buf)


def all_gather_object(obj: Any, group: ProcessGroup | None = None) -> list[Any]:
    """Every rank's ``obj`` (any picklable object), as a list indexed by rank."""
    g = _group(group, "all_gather_object")
    payload = np.frombuffer(pickle.dumps(obj), dtype=np.uint8)
    sizes = np.zeros(g.size, dtype=np.int64)
    mine = np.array([payload.size], dtype=np.int64)
    seq = g.next_op()
    g.wait(g.comm.Iallgather(mine, sizes), "all_gather_object", seq)
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    MPI = mpi()
    req = g.comm.Iallgatherv(payload, [out, sizes, offsets, MPI.BYTE])
    g.wait(req, "all_gather_object", seq)
    return [pickle.loads(out[o : o + s].tobytes()) for o, s in zip(offsets, sizes, strict=True)]
