"""``load_dataset``: the built-in data sets as seeded, standardised train/test splits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.data import sources
from chainrule.data.loader import TensorDataset
from chainrule.tensor.dtypes import get_default_dtype


@dataclass(frozen=True)
class DatasetInfo:
    """What a data set is, known without loading it.

    Attributes:
        name: the name ``load_dataset`` takes.
        description: one line for listings.
        n_features: the length of one input vector.
        n_classes: the number of classes (labels are ``0 .. n_classes - 1``).
        class_names: a name per label.
    """

    name: str
    description: str
    n_features: int
    n_classes: int
    class_names: tuple[str, ...]

    @property
    def is_2d(self) -> bool:
        """Two input features: decision boundaries can be drawn in the input plane."""
        return self.n_features == 2


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """Train and test parts of a data set, and how they were made.

    Attributes:
        x_train, y_train, x_test, y_test: features (float, ``dtype``) and int64 labels.
        info: the data set's ``DatasetInfo``.
        mean, std: per-feature statistics of the *training* part used to standardise both
            parts (``None`` without standardisation); see ``transform``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: DatasetInfo
    mean: np.ndarray | None
    std: np.ndarray | None

    @property
    def train(self) -> TensorDataset:
        """The training part, for ``DataLoader(splits.train, batch_size, shuffle=True)``."""
        return TensorDataset(self.x_train, self.y_train)

    @property
    def test(self) -> TensorDataset:
        return TensorDataset(self.x_test, self.y_test)

    def transform(self, x: Any) -> np.ndarray:
        """Map raw inputs (e.g. new points) the way the splits were mapped:
        ``(x - mean) / std`` with the training statistics, in the splits' dtype."""
        arr = np.asarray(x, dtype=np.float64)
        if self.mean is not None and self.std is not None:
            arr = (arr - self.mean) / self.std
        return arr.astype(self.x_train.dtype)

    def __repr__(self) -> str:
        return (
            f"DatasetSplits({self.info.name!r}, train={self.x_train.shape}, "
            f"test={self.x_test.shape}, dtype={self.x_train.dtype}, "
            f"standardized={self.mean is not None})"
        )


@dataclass(frozen=True)
class _Source:
    info: DatasetInfo
    make: Callable[[int, int, float], sources.RawData]  # (seed, n_samples, noise)
    default_test_size: float
    synthetic: bool  # generated from a seed: n_samples and noise apply


def _fixed(load: Callable[[], sources.RawData]) -> Callable[[int, int, float], sources.RawData]:
    return lambda seed, n_samples, noise: load()


_DIGITS = tuple(str(d) for d in range(10))
_SOURCES: dict[str, _Source] = {
    "moons": _Source(
        DatasetInfo(
            "moons", "two interleaving half circles (scikit-learn)", 2, 2, ("upper", "lower")
        ),
        sources.moons,
        0.25,
        True,
    ),
    "circles": _Source(
        DatasetInfo("circles", "a circle inside another (scikit-learn)", 2, 2, ("outer", "inner")),
        sources.circles,
        0.25,
        True,
    ),
    "digits": _Source(
        DatasetInfo(
            "digits", "1,797 handwritten digits, 8x8 pixels (scikit-learn)", 64, 10, _DIGITS
        ),
        _fixed(sources.digits),
        0.25,
        False,
    ),
    "mnist1d": _Source(
        DatasetInfo("mnist1d", "MNIST-1D: 5,000 signals of length 40 (generated)", 40, 10, _DIGITS),
        _fixed(sources.mnist1d),
        0.2,
        False,
    ),
}
DEFAULT_N_SAMPLES = 500
DEFAULT_NOISE = 0.1


def list_datasets() -> list[str]:
    """The names ``load_dataset`` knows."""
    return list(_SOURCES)


def _source(name: str, op: str) -> _Source:
    key = name.lower().replace("-", "").replace("_", "") if isinstance(name, str) else name
    if key not in _SOURCES:
        raise ValueError(
            f"{op}: unknown data set {name!r}; known data sets: {', '.join(_SOURCES)}."
        )
    return _SOURCES[key]


def dataset_info(name: str) -> DatasetInfo:
    """A data set's ``DatasetInfo`` (features, classes, names) without loading it."""
    return _source(name, "dataset_info").info


def _n_test(test_size: float | int, n: int, name: str) -> int:
    if isinstance(test_size, bool):
        raise TypeError(f"load_dataset({name!r}): test_size must be a number, got {test_size!r}.")
    if isinstance(test_size, int | np.integer):
        n_test = int(test_size)
    elif isinstance(test_size, float) and 0.0 < test_size < 1.0:
        n_test = round(test_size * n)
    else:
        raise ValueError(
            f"load_dataset({name!r}): test_size must be a fraction in (0, 1) or a number of "
            f"samples, got {test_size!r}."
        )
    if not 1 <= n_test <= n - 1:
        raise ValueError(
            f"load_dataset({name!r}): test_size={test_size!r} leaves {n_test} of {n} samples "
            "for testing; both parts need at least one sample."
        )
    return n_test


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    test_size: float | int | None = None,
    standardize: bool = True,
    dtype: Any = None,
    n_samples: int | None = None,
    noise: float | None = None,
) -> DatasetSplits:
    """Load a built-in data set as train/test splits. Nothing is downloaded.

    Known names: ``moons``, ``circles`` (2 features, 2 classes, generated from ``seed``),
    ``digits`` (8x8 images, 64 features, 10 classes) and ``mnist1d`` (40 features, 10
    classes, made by the MNIST-1D generator with its reference arguments and cached in
    ``chainrule.data.cache_dir()``).

    Args:
        name: the data set (case and ``-``/``_`` are ignored).
        seed: seeds the generation of ``moons``/``circles`` and the random train/test split.
        test_size: a fraction in (0, 1) or a number of test samples. Default 0.25; for
            ``mnist1d``, its published split (the first 4,000 train, the last 1,000 test),
            which then does not depend on ``seed``.
        standardize: ``x <- (x - mean) / std`` per feature, with mean and std computed on
            the training part only (so nothing about the test part leaks into training).
        dtype: the float dtype of the features; default ``chainrule.get_default_dtype()``.
        n_samples, noise: size and noise level of ``moons``/``circles`` (default 500, 0.1).

    Example:
        >>> splits = load_dataset("moons", seed=1)
        >>> splits.x_train.shape, splits.x_test.shape, splits.info.is_2d
        ((375, 2), (125, 2), True)
    """
    source = _source(name, "load_dataset")
    info = source.info
    if not (isinstance(seed, int | np.integer) and not isinstance(seed, bool)
            and 0 <= seed < 2**32):  # fmt: skip
        raise ValueError(
            f"load_dataset({info.name!r}): seed must be an integer in [0, 2**32), got {seed!r}."
        )
    if not source.synthetic and (n_samples is not None or noise is not None):
        raise ValueError(
            f"load_dataset({info.name!r}): n_samples and noise apply to generated 2-D data "
            "(moons, circles) only; leave them out."
        )
    float_dtype = np.dtype(get_default_dtype() if dtype is None else dtype)
    if float_dtype.kind != "f":
        raise TypeError(
            f"load_dataset({info.name!r}): dtype must be a float dtype (float32/float64), got "
            f"{float_dtype}."
        )
    n_samples = DEFAULT_N_SAMPLES if n_samples is None else n_samples
    raw = source.make(seed, n_samples, DEFAULT_NOISE if noise is None else noise)
    x, y, n = np.asarray(raw.x, dtype=np.float64), np.asarray(raw.y, dtype=np.int64), len(raw.y)

    if test_size is None and raw.n_train is not None:
        train, test = np.arange(raw.n_train), np.arange(raw.n_train, n)
    else:
        n_test = _n_test(source.default_test_size if test_size is None else test_size, n, info.name)
        order = np.random.default_rng(seed).permutation(n)
        train, test = order[n_test:], order[:n_test]
    x_train, x_test = x[train], x[test]

    mean = std = None
    if standardize:
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        # A feature constant on the training part (3 of the digits' 64 pixels are always
        # blank) would divide by zero: leave it centred but unscaled.
        std[std == 0.0] = 1.0
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    return DatasetSplits(
        x_train.astype(float_dtype),
        y[train],
        x_test.astype(float_dtype),
        y[test],
        info,
        mean,
        std,
    )
