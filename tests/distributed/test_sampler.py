"""DistributedSampler: PyTorch's shares, padding and drop_last; reshuffled by set_epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch.utils.data as tud
from hypothesis import given
from hypothesis import strategies as st

from chainrule.data import DataLoader, DistributedSampler, TensorDataset


@given(n=st.integers(1, 40), world=st.integers(1, 5), drop_last=st.booleans())
def test_unshuffled_shares_match_pytorch(n: int, world: int, drop_last: bool) -> None:
    for rank in range(world):
        ours = DistributedSampler(range(n), world, rank, shuffle=False, drop_last=drop_last)
        theirs = tud.DistributedSampler(range(n), world, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs)
        assert len(ours) == len(theirs)


@given(n=st.integers(1, 40), world=st.integers(1, 5), epoch=st.integers(0, 3))
def test_shuffled_shares_are_equal_in_length_and_cover_the_data(
    n: int, world: int, epoch: int
) -> None:
    shares = []
    for rank in range(world):
        s = DistributedSampler(range(n), world, rank, seed=3)
        s.set_epoch(epoch)
        shares.append(list(s))
    assert len({len(s) for s in shares}) == 1  # no rank waits for a batch the others lack
    together = [i for s in shares for i in s]
    assert set(together) == set(range(n))
    assert len(together) == -(-n // world) * world  # padded with repeats only


def test_set_epoch_reshuffles_the_same_way_on_every_rank() -> None:
    a, b = DistributedSampler(range(50), 2, 0), DistributedSampler(range(50), 2, 1)
    first = list(a)
    assert set(first).isdisjoint(b)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) != first
    assert set(a).isdisjoint(b)
    again = DistributedSampler(range(50), 2, 0)
    again.set_epoch(1)
    assert list(again) == list(a)


def test_data_loader_reads_the_samplers_share() -> None:
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    s = DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False)
    batches = [yb.tolist() for _, yb in DataLoader(TensorDataset(x, y), 2, sampler=s)]
    assert batches == [[1, 4], [7, 0]]  # 10 samples padded to 12: rank 1 gets 1, 4, 7, 0
    assert len(DataLoader(TensorDataset(x, y), 3, sampler=s, drop_last=True)) == 1


def test_bad_arguments_say_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"rank must be in 0\.\.num_replicas-1"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))
    with pytest.raises(ValueError, match="sampler and shuffle=True"):
        DataLoader((np.zeros(4),), 2, shuffle=True, sampler=DistributedSampler(range(4), 1, 0))
