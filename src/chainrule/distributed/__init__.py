"""Data-parallel training across processes: a process group over MPI (mpi4py).

PyTorch's ``torch.distributed`` names: ``init_process_group("mpi")``, ``get_rank``,
``get_world_size``, ``barrier``, ``all_reduce``, ``broadcast``, ``all_gather_object``,
``destroy_process_group``. Start the ranks with ``mpiexec -n 2 python script.py`` (or
``chainrule train --nproc 2``). Needs the extra: ``pip install 'chainrule[distributed]'``;
importing this package does not import mpi4py, the first collective does.
"""

from chainrule.distributed.collectives import (
    ReduceOp,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    destroy_process_group,
    get_rank,
    get_world_size,
    init_process_group,
    is_initialized,
)
from chainrule.distributed.group import DistributedTimeoutError, ProcessGroup

__all__ = [
    "DistributedTimeoutError",
    "ProcessGroup",
    "ReduceOp",
    "all_gather_object",
    "all_reduce",
    "barrier",
    "broadcast",
    "destroy_process_group",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "is_initialized",
]
