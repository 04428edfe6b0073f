"""The raw built-in data sets, made locally without any download.

scikit-learn (two moons, circles, the 8x8 digits it ships) and ``mnist1d`` (the MNIST-1D
generator) are optional: they are imported here, lazily, with an error that names the
``data`` extra when they are missing (and a Ctrl-C during the import stays a Ctrl-C).
"""

from __future__ import annotations

import importlib.metadata
import random
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from chainrule.data.cache import cached_arrays
from chainrule.extras import import_module

EXTRA_HINT = "pip install 'chainrule[data]'"

# The arguments of MNIST-1D's reference data set (``mnist1d.data.get_dataset_args()``),
# spelled out so the cache key needs no import of mnist1d (importing it loads matplotlib,
# scipy and requests, which takes longer than reading the cache). The download URL is left
# out: chainrule only ever generates.
MNIST1D_ARGS: dict[str, object] = {
    "num_samples": 5000,
    "train_split": 0.8,
    "template_len": 12,
    "padding": [36, 60],
    "scale_coeff": 0.4,
    "max_translation": 48,
    "corr_noise_scale": 0.25,
    "iid_noise_scale": 2e-2,
    "shear_scale": 0.75,
    "shuffle_seq": False,
    "final_seq_length": 40,
    "seed": 42,
}


@dataclass(frozen=True, eq=False)
class RawData:
    """Features ``x``, integer labels ``y``, and the size of a published training part
    (``x[:n_train]``), if the data set comes with its own split."""

    x: np.ndarray
    y: np.ndarray
    n_train: int | None = None


def require(module: str, package: str, dataset: str) -> ModuleType:
    """Import ``module`` or explain which package and extra the data set needs."""
    try:
        return import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"load_dataset({dataset!r}) needs the '{package}' package, which cannot be "
            f"imported ({exc}). Install chainrule's data extra: {EXTRA_HINT}"
        ) from exc


def moons(seed: int, n_samples: int, noise: float) -> RawData:
    """Two interleaving half circles; label 0 is the upper moon, 1 the lower."""
    datasets = require("sklearn.datasets", "scikit-learn", "moons")
    x, y = datasets.make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    return RawData(x, y.astype(np.int64))


def circles(seed: int, n_samples: int, noise: float) -> RawData:
    """A circle inside another (radius ratio 0.5); label 0 is the outer circle, 1 the inner."""
    datasets = require("sklearn.datasets", "scikit-learn", "circles")
    x, y = datasets.make_circles(n_samples=n_samples, noise=noise, factor=0.5, random_state=seed)
    return RawData(x, y.astype(np.int64))


def digits() -> RawData:
    """The 1,797 8x8 handwritten digits shipped inside scikit-learn (pixels 0..16)."""
    datasets = require("sklearn.datasets", "scikit-learn", "digits")
    bunch = datasets.load_digits()
    return RawData(np.asarray(bunch.data, dtype=np.float64), bunch.target.astype(np.int64))


def _generate_mnist1d() -> dict[str, np.ndarray]:
    data = require("mnist1d.data", "mnist1d", "mnist1d")
    args = data.get_dataset_args()  # an ObjectView, the type make_dataset expects
    for key, value in MNIST1D_ARGS.items():
        setattr(args, key, value)
    # make_dataset seeds Python's and NumPy's global generators (mnist1d.utils.set_seed);
    # restore them so that loading data leaves the caller's random numbers unchanged.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        made = data.make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {
        "x": np.concatenate([made["x"], made["x_test"]]),
        "y": np.concatenate([made["y"], made["y_test"]]).astype(np.int64),
        "n_train": np.asarray(len(made["y"])),
    }


def mnist1d() -> RawData:
    """MNIST-1D: 5,000 signals of length 40 (10 classes), made by the ``mnist1d`` generator
    with the reference arguments and cached; its own split is 4,000 train / 1,000 test."""
    try:
        version = importlib.metadata.version("mnist1d")
    except importlib.metadata.PackageNotFoundError as exc:
        raise ImportError(
            f"load_dataset('mnist1d') needs the 'mnist1d' package, which is not installed. "
            f"Install chainrule's data extra: {EXTRA_HINT}"
        ) from exc
    params = {"generator": MNIST1D_ARGS, "mnist1d": version, "layout": 1}
    arrays = cached_arrays("mnist1d", params, ("x", "y", "n_train"), _generate_mnist1d)
    return RawData(arrays["x"], arrays["y"], int(arrays["n_train"]))
