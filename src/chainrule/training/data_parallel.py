"""One training step on N ranks: each rank's share of a global batch, gradients averaged.

The loop keeps the batches one process would draw (``world × batch_size`` samples, in the
same order) and gives rank r the r-th contiguous share of each. Each rank's loss is its
*sum* of cross-entropies times N / m (m: the global batch's size), so that the average
DDP takes over the ranks is the mean over the m samples, even when m does not divide by
N (the last batch of an epoch): N ranks then train the model one process would.
"""

from __future__ import annotations

import numpy as np

from chainrule import distributed as dist
from chainrule import nn
from chainrule.distributed.group import ProcessGroup
from chainrule.nn.parallel import DistributedDataParallel
from chainrule.tensor import Tensor
from chainrule.tensor.ops.loss import cross_entropy
from chainrule.training.config import TrainConfig

__all__ = ["ProcessGroup", "data_parallel", "shard_step"]


def data_parallel(model: nn.Module, config: TrainConfig, group: ProcessGroup) -> nn.Module:
    """Wrap ``model`` in DDP; give each rank's dropout layers their own stream.

    Dropout masks must differ between ranks (each rank drops units of different samples),
    and be reproducible: rank r's layers draw from ``default_rng([seed, 1000 + r])``. So a
    run with dropout on N ranks is reproducible, but not the same run as on one process.
    """
    for k, m in enumerate(model.modules()):
        if isinstance(m, nn.Dropout):
            m._rng = np.random.default_rng([config.seed, 1000 + group.rank, k])
    return DistributedDataParallel(model, process_group=group)


def share(m: int, world: int, rank: int) -> slice:
    """Rank's contiguous part of m rows: sizes differ by at most one."""
    base, extra = divmod(m, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


def shard_step(
    model: nn.Module, x: Tensor, target: np.ndarray, group: ProcessGroup
) -> tuple[float, int]:
    """Forward and backward of this rank's share; returns the global batch's mean loss and
    correct predictions (all-reduced: every rank sees the same loss, so all stop together
    if it is not finite)."""
    m = len(target)
    mine = share(m, group.size, group.rank)
    xs, ts = Tensor.from_numpy(x.numpy()[mine]), target[mine]
    logits = model(xs)
    loss_sum = cross_entropy(logits, ts, "sum")
    (loss_sum * (group.size / m)).backward()
    right = int(np.count_nonzero(logits.numpy().argmax(axis=1) == ts))
    stats = np.array([float(loss_sum.item()), right], dtype=np.float64)
    dist.all_reduce(stats, group=group)
    return float(stats[0]) / m, int(stats[1])
