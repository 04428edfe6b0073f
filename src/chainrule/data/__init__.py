"""Data for training: mini-batch loading and built-in data sets made without downloads.

- ``DataLoader`` / ``TensorDataset``: mini-batches of Tensors, shuffled per epoch.
- ``DistributedSampler``: each rank's share of a data set in data-parallel training.
- ``load_dataset(name)``: two moons, circles, 8x8 digits, MNIST-1D as seeded,
  standardised train/test splits; ``list_datasets()``, ``dataset_info(name)``.

The data sets need the optional ``data`` extra: ``pip install 'chainrule[data]'``.
"""

from chainrule.data.cache import cache_dir
from chainrule.data.datasets import (
    DatasetInfo,
    DatasetSplits,
    dataset_info,
    list_datasets,
    load_dataset,
)
from chainrule.data.loader import ArrayDataset, BatchDataset, DataLoader, TensorDataset
from chainrule.data.sampler import DistributedSampler

__all__ = [
    "ArrayDataset",
    "BatchDataset",
    "DataLoader",
    "DatasetInfo",
    "DatasetSplits",
    "DistributedSampler",
    "TensorDataset",
    "cache_dir",
    "dataset_info",
    "list_datasets",
    "load_dataset",
]
