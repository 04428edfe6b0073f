"""Parallel training wrappers: ``DistributedDataParallel`` (gradients averaged over MPI ranks)."""

from chainrule.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
