"""``DistributedSampler``: which samples each rank of a data-parallel job reads.

Every rank draws the same permutation (the seed plus the epoch), pads it by repeating its
first samples until its length divides by the number of ranks (or drops the tail with
``drop_last``), and takes every ``num_replicas``-th index from ``rank`` on, as PyTorch: the
ranks see disjoint parts of equal length, so no rank waits for a batch the others lack.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

import numpy as np


class DistributedSampler:
    """Indices of this rank's share of a dataset, reshuffled by ``set_epoch``.

    Args:
        dataset: anything with ``len()``.
        num_replicas: the number of ranks (default: the world size of the process group).
        rank: this rank (default: the rank in the process group).
        shuffle: a new permutation per epoch (the same on every rank).
        seed: seeds the permutation; must be the same on every rank.
        drop_last: drop the tail that does not divide evenly instead of padding.

    Example:
        >>> s = DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False)
        >>> list(s)  # padded with sample 0 so both ranks get 3
        [1, 3, 0]
    """

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None or rank is None:
            from chainrule import distributed as dist  # data sits below distributed

            if not dist.is_initialized():
                raise RuntimeError(
                    "DistributedSampler: pass num_replicas and rank, or call "
                    "chainrule.distributed.init_process_group('mpi') first."
                )
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(
                f"DistributedSampler: rank must be in 0..num_replicas-1; got rank={rank}, "
                f"num_replicas={num_replicas}."
            )
        self.dataset = dataset
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = shuffle, int(seed), drop_last
        self.epoch = 0
        n = len(dataset)
        if drop_last:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = -(-n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of this epoch (call it before each epoch, on every rank)."""
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        """This rank's positions in the dataset for the current epoch."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        else:
            order = np.arange(n)
        if self.total_size > n:  # pad by repeating the start (several times if n is tiny)
            order = np.resize(order, self.total_size)
        order = order[: self.total_size]
        return order[self.rank : self.total_size : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples
