"""PyTorch's ``torch.utils.data``: ``Dataset``, ``TensorDataset``, ``DataLoader``.

The same semantics as PyTorch's classes (a map-style dataset gives one sample per index;
the loader collates samples into batches, ``batch_size=1`` by default, shuffles from the
default generator that ``chainrule.manual_seed`` seeds). A ``TensorDataset`` is gathered a
whole batch at a time (one NumPy indexing, no Python loop per sample), as
``chainrule.data.DataLoader`` does; other datasets are read sample by sample.

Example:
    >>> import chainrule as torch
    >>> from chainrule.utils.data import DataLoader, TensorDataset
    >>> ds = TensorDataset(torch.arange(6.0).reshape(3, 2), torch.tensor([0, 1, 0]))
    >>> [y.tolist() for x, y in DataLoader(ds, batch_size=2)]
    [[0, 1], [0]]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from chainrule.tensor.random import as_generator
from chainrule.tensor.tensor import Tensor


class Dataset:
    """A map-style dataset: subclass it with ``__len__`` and ``__getitem__(i)`` -> a sample."""

    def __getitem__(self, index: int) -> Any:
        raise TypeError(
            f"{type(self).__name__}: a Dataset subclass must define __getitem__(index) "
            "returning one sample (and __len__)."
        )

    def __len__(self) -> int:
        raise TypeError(f"{type(self).__name__}: a Dataset subclass must define __len__().")


class TensorDataset(Dataset):
    """Tensors with the same first dimension: ``ds[i]`` is ``(t[i] for t in tensors)``."""

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset: pass at least one tensor, e.g. TensorDataset(x, y).")
        ts = tuple(t if isinstance(t, Tensor) else Tensor(np.asarray(t)) for t in tensors)
        lengths = {t.shape[0] if t.ndim else None for t in ts}
        if None in lengths or len(lengths) != 1:
            shapes = ", ".join(str(t.shape) for t in ts)
            raise ValueError(
                f"TensorDataset: every tensor needs the same size along its first axis; got "
                f"shapes {shapes}."
            )
        self.tensors: tuple[Tensor, ...] = ts

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:
        return tuple(Tensor._wrap(np.asarray(t._data[index])) for t in self.tensors)

    def __len__(self) -> int:
        return int(self.tensors[0].shape[0])


def default_collate(batch: Sequence[Any]) -> Any:
    """Samples to a batch, as PyTorch: tensors and arrays are stacked along a new first
    axis, Python floats give a float64 tensor, ints int64; tuples and lists are collated
    field by field (a list), dicts key by key."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return Tensor._wrap(np.stack([b._data for b in batch]))
    if isinstance(elem, np.ndarray | np.generic):
        return Tensor._wrap(np.stack([np.asarray(b) for b in batch]))
    if isinstance(elem, bool):
        return Tensor._wrap(np.asarray(batch, dtype=np.bool_))
    if isinstance(elem, int | float):
        dtype = np.float64 if isinstance(elem, float) else np.int64
        return Tensor._wrap(np.asarray(batch, dtype=dtype))
    if isinstance(elem, dict):
        return {k: default_collate([b[k] for b in batch]) for k in elem}
    if isinstance(elem, tuple | list):
        return [default_collate(list(field)) for field in zip(*batch, strict=True)]
    return list(batch)  # strings and other objects: a list, as PyTorch


class DataLoader:
    """Batches of a dataset, e.g. ``for X, y in DataLoader(ds, batch_size=64, shuffle=True)``.

    Args:
        dataset: a ``Dataset`` (or anything with ``__len__`` and ``__getitem__(int)``).
        batch_size: samples per batch (1 by default, as PyTorch); None yields samples.
        shuffle: a new random order each epoch, drawn from ``generator`` (a NumPy
            Generator or int seed) or the default generator (``chainrule.manual_seed``).
        drop_last: skip the final smaller batch.
        collate_fn: how samples become a batch (``default_collate``).
        num_workers, pin_memory, persistent_workers: accepted; loading runs in this process.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool = False,
        *,
        drop_last: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        generator: Any = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
    ) -> None:
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}.")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.generator = generator
        self.num_workers = num_workers

    def __len__(self) -> int:
        n, b = len(self.dataset), self.batch_size or 1
        return n // b if self.drop_last else -(-n // b)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if self.shuffle:
            return np.asarray(as_generator(self.generator).permutation(n))
        return np.arange(n)

    def __iter__(self) -> Iterator[Any]:
        order = self._order()
        if self.batch_size is None:
            for i in order:
                yield self.dataset[int(i)]
            return
        b = self.batch_size
        stop = len(order) - len(order) % b if self.drop_last else len(order)
        whole_batches = isinstance(self.dataset, TensorDataset) and self.collate_fn is None
        for start in range(0, stop, b):
            positions = order[start : start + b]
            if whole_batches:
                # One gather per tensor (a copy): what collating the samples would give.
                yield list(self.dataset[positions])
            else:
                collate = self.collate_fn or default_collate
                yield collate([self.dataset[int(i)] for i in positions])


__all__ = ["DataLoader", "Dataset", "TensorDataset", "default_collate"]
