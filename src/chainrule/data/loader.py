"""Datasets indexed by batch and the ``DataLoader`` that walks them in mini-batches.

A dataset here is anything with ``len(ds)`` and ``ds[index]`` -> a tuple of arrays, where
``index`` may be an integer array or a slice: the loader asks for a whole batch at once,
so no Python loop runs per sample.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from chainrule.tensor import Tensor
from chainrule.tensor.random import default_generator


class BatchDataset(Protocol):
    """What ``DataLoader`` needs: a length and indexing by an array of positions."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: Any) -> tuple[Any, ...]: ...


class Sampler(Protocol):
    """An order of dataset positions per epoch, of known length (``DistributedSampler``)."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[int]: ...


class TensorDataset:
    """Arrays (or Tensors) with the same first dimension, indexed together.

    ``ds[i]`` is ``(x[i], y[i], ...)``; ``i`` may be an int, a slice or an integer array.
    The arrays are kept as given (no copy); the loader copies each batch.

    Args:
        *arrays: NumPy arrays or Tensors, one row per sample along the first axis.

    Example:
        >>> import numpy as np
        >>> ds = TensorDataset(np.zeros((5, 3)), np.arange(5))
        >>> len(ds), ds[np.array([4, 0])][1].tolist()
        (5, [4, 0])
    """

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("TensorDataset: pass at least one array, e.g. TensorDataset(x, y).")
        converted = tuple(np.asarray(a) for a in arrays)  # a Tensor gives its array, no copy
        lengths = [a.shape[0] if a.ndim else None for a in converted]
        if None in lengths or len(set(lengths)) != 1:
            shapes = ", ".join(str(a.shape) for a in converted)
            raise ValueError(
                f"TensorDataset: every array needs the same number of samples along its first "
                f"axis; got shapes {shapes}."
            )
        self.arrays: tuple[np.ndarray, ...] = converted

    def __len__(self) -> int:
        return int(self.arrays[0].shape[0])

    def __getitem__(self, index: Any) -> tuple[np.ndarray, ...]:
        return tuple(a[index] for a in self.arrays)

    def __repr__(self) -> str:
        parts = ", ".join(f"{a.dtype}{list(a.shape)}" for a in self.arrays)
        return f"TensorDataset({parts})"


ArrayDataset = TensorDataset  # the same class under the name NumPy users may look for


class DataLoader:
    """Iterate over a dataset in mini-batches of Tensors, e.g. ``for x, y in loader:``.

    Each epoch (each ``for`` loop over the loader) visits every sample exactly once. With
    ``shuffle=True`` the order is a fresh permutation per epoch, drawn from a generator
    seeded once with ``seed``: two loaders with the same seed give the same batches, epoch
    after epoch, and one loader gives a different order in each epoch.

    Args:
        dataset: a ``TensorDataset``, any object with ``__len__`` and batch indexing, or a
            tuple ``(x, y)`` of arrays.
        batch_size: samples per batch; the last batch may be smaller.
        shuffle: draw a new random order each epoch (for training sets).
        seed: seeds the shuffling (this loader's own stream); ``None`` draws each epoch's
            order from the default generator, so ``chainrule.manual_seed`` fixes it.
        drop_last: skip the final smaller batch, so every batch has ``batch_size`` samples.
        sampler: an iterable of dataset positions giving the order of each epoch (e.g. a
            ``DistributedSampler``: this rank's share); excludes ``shuffle``.

    Yields:
        tuples of Tensors, one per dataset array (features keep their dtype, integer class
        labels stay int64). Each batch is a copy: changing it leaves the dataset intact.

    Example:
        >>> import numpy as np
        >>> x, y = np.arange(10.0).reshape(5, 2), np.arange(5)
        >>> [yb.tolist() for xb, yb in DataLoader((x, y), batch_size=2)]
        [[0, 1], [2, 3], [4]]
    """

    def __init__(
        self,
        dataset: BatchDataset | Sequence[Any],
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        sampler: Sampler | None = None,
    ) -> None:
        if sampler is not None and shuffle:
            raise ValueError(
                "DataLoader: sampler and shuffle=True exclude each other; the sampler decides "
                "the order (DistributedSampler(..., shuffle=True) shuffles)."
            )
        if isinstance(dataset, tuple | list):
            dataset = TensorDataset(*dataset)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise TypeError(f"DataLoader: batch_size must be an int, got {batch_size!r}.")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be at least 1, got {batch_size}.")
        self.dataset: BatchDataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.sampler = sampler
        self._rng = None if seed is None else np.random.default_rng(seed)

    def __len__(self) -> int:
        """The number of batches per epoch."""
        n, b = self._n(), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def _n(self) -> int:
        return len(self.dataset) if self.sampler is None else len(self.sampler)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        n, b = self._n(), self.batch_size
        stop = n - n % b if self.drop_last else n
        # One permutation per epoch, sliced per batch: indexing with an array gathers the
        # whole batch in C (no Python loop per sample) and already returns a copy.
        order: np.ndarray | None = None
        if self.sampler is not None:
            order = np.fromiter(self.sampler, dtype=np.int64, count=n)
        elif self.shuffle:
            gen = default_generator() if self._rng is None else self._rng
            order = gen.permutation(n)
        for start in range(0, stop, b):
            if order is None:
                # A slice gives views into the dataset; copy so that an in-place change to a
                # batch cannot alter the data of later epochs.
                batch = tuple(np.array(part) for part in self.dataset[start : start + b])
            else:
                batch = tuple(np.asarray(part) for part in self.dataset[order[start : start + b]])
            yield tuple(Tensor.from_numpy(part) for part in batch)

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last})"
        )
