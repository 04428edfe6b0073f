"""chainrule.data: mini-batch loading and the built-in data sets."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chainrule import Tensor, default_dtype
from chainrule.data import (
    ArrayDataset,
    DataLoader,
    TensorDataset,
    cache_dir,
    dataset_info,
    list_datasets,
    load_dataset,
    sources,
)
from chainrule.data import cache as crcache

# -- DataLoader -----------------------------------------------------------------------------


def _ids(loader: DataLoader) -> list[np.ndarray]:
    """The sample ids (y) of each batch of one epoch."""
    return [yb.numpy().copy() for _, yb in loader]


def _data(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(3.0 * n).reshape(n, 3), np.arange(n)


@pytest.mark.parametrize(("n", "batch_size"), [(10, 3), (12, 4), (5, 8), (7, 1), (1, 1)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_an_epoch_visits_every_sample_exactly_once(n: int, batch_size: int, shuffle: bool) -> None:
    x, y = _data(n)
    loader = DataLoader(TensorDataset(x, y), batch_size, shuffle=shuffle, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) == -(-n // batch_size)
    sizes = [len(yb) for _, yb in batches]
    assert sizes[:-1] == [batch_size] * (len(sizes) - 1) and 1 <= sizes[-1] <= batch_size
    ids = np.concatenate([yb.numpy() for _, yb in batches])
    np.testing.assert_array_equal(np.sort(ids), y)
    if not shuffle:
        np.testing.assert_array_equal(ids, y)
    for xb, yb in batches:  # features stay with their labels
        np.testing.assert_array_equal(xb.numpy(), x[yb.numpy()])


@pytest.mark.parametrize(("n", "batch_size"), [(10, 3), (12, 4), (5, 8), (7, 2)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_drop_last_gives_full_batches_of_distinct_samples(
    n: int, batch_size: int, shuffle: bool
) -> None:
    loader = DataLoader(_data(n), batch_size, shuffle=shuffle, seed=1, drop_last=True)
    batches = _ids(loader)
    assert len(batches) == len(loader) == n // batch_size
    assert all(len(b) == batch_size for b in batches)
    ids = np.concatenate([*batches, np.array([], dtype=np.int64)])
    assert len(set(ids.tolist())) == len(ids) == n - n % batch_size


@given(
    n=st.integers(1, 60),
    batch_size=st.integers(1, 70),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_coverage_property(n: int, batch_size: int, drop_last: bool, seed: int) -> None:
    loader = DataLoader(_data(n), batch_size, shuffle=True, seed=seed, drop_last=drop_last)
    for _ in range(2):  # two epochs
        batches = _ids(loader)
        assert len(batches) == len(loader)
        ids = np.concatenate([*batches, np.array([], dtype=np.int64)]).tolist()
        assert len(ids) == len(set(ids)) == (n - n % batch_size if drop_last else n)


def test_shuffle_is_reproducible_with_a_seed_and_new_each_epoch() -> None:
    data = _data(100)

    def epochs(seed: int) -> Iterator[np.ndarray]:
        loader = DataLoader(data, batch_size=16, shuffle=True, seed=seed)
        for _ in range(3):
            yield np.concatenate(_ids(loader))

    a, b, c = list(epochs(7)), list(epochs(7)), list(epochs(8))
    for ea, eb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], np.arange(100))


def test_batches_are_tensors_with_the_data_dtypes() -> None:
    x64, y = _data(6)
    for x in (x64, x64.astype(np.float32)):
        xb, yb = next(iter(DataLoader(ArrayDataset(x, y), batch_size=4, shuffle=True, seed=0)))
        assert isinstance(xb, Tensor) and isinstance(yb, Tensor)
        assert xb.dtype == x.dtype and xb.shape == (4, 3)
        assert yb.dtype == np.int64 and yb.shape == (4,)
        assert not xb.requires_grad


@pytest.mark.parametrize("shuffle", [False, True])
def test_changing_a_batch_leaves_the_dataset_intact(shuffle: bool) -> None:
    x, y = _data(4)
    original = x.copy()
    for xb, _ in DataLoader((x, y), batch_size=2, shuffle=shuffle, seed=0):
        xb.numpy()[...] = -1.0
    np.testing.assert_array_equal(x, original)


def test_tensor_dataset_accepts_tensors_and_a_custom_dataset_works() -> None:
    x, y = _data(5)
    ds = TensorDataset(Tensor(x), Tensor(y))
    assert len(ds) == 5 and ds[np.array([3])][1].tolist() == [3]

    class Squares:
        def __len__(self) -> int:
            return 9

        def __getitem__(self, index: Any) -> tuple[np.ndarray, np.ndarray]:
            i = np.arange(9)[index]
            return i[:, None] ** 2.0, i

    batches = list(DataLoader(Squares(), batch_size=4, shuffle=True, seed=3))
    assert sorted(np.concatenate([yb.numpy() for _, yb in batches]).tolist()) == list(range(9))
    for xb, yb in batches:
        np.testing.assert_array_equal(xb.numpy()[:, 0], yb.numpy() ** 2.0)


def test_loader_and_dataset_errors() -> None:
    with pytest.raises(ValueError, match=r"same number of samples.*\(3, 2\), \(4,\)"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="at least one array"):
        TensorDataset()
    with pytest.raises(ValueError, match="at least 1"):
        DataLoader(_data(3), batch_size=0)
    with pytest.raises(TypeError, match="must be an int"):
        DataLoader(_data(3), batch_size=True)


# -- load_dataset ---------------------------------------------------------------------------


def test_the_known_data_sets_and_their_metadata() -> None:
    assert list_datasets() == ["moons", "circles", "digits", "mnist1d"]
    moons = dataset_info("moons")
    assert (moons.n_features, moons.n_classes, moons.is_2d) == (2, 2, True)
    assert dataset_info("circles").class_names == ("outer", "inner")
    digits = dataset_info("digits")
    assert (digits.n_features, digits.n_classes, digits.is_2d) == (64, 10, False)
    assert digits.class_names == tuple("0123456789")
    assert dataset_info("MNIST-1D").n_features == 40


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown data set 'mnist'.*moons, circles, digits"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="unknown data set 'spirals'"):
        dataset_info("spirals")


@pytest.mark.parametrize("name", ["moons", "circles"])
def test_two_d_sets_split_sizes_dtypes_and_labels(name: str) -> None:
    s = load_dataset(name, seed=3)
    assert s.x_train.shape == (375, 2) and s.x_test.shape == (125, 2)
    assert s.x_train.dtype == np.float32 and s.y_train.dtype == np.int64
    assert set(s.y_train.tolist()) | set(s.y_test.tolist()) == {0, 1}
    s = load_dataset(name, seed=3, test_size=100, n_samples=300, dtype=np.float64)
    assert s.x_train.shape == (200, 2) and s.x_test.shape == (100, 2)
    assert s.x_train.dtype == np.float64
    with default_dtype(np.float64):
        assert load_dataset(name).x_test.dtype == np.float64


def _rows(x: np.ndarray, y: np.ndarray) -> list[tuple[float, ...]]:
    return sorted(map(tuple, np.column_stack([x, y]).tolist()))


def test_the_split_is_a_partition_of_scikit_learns_data() -> None:
    from sklearn.datasets import load_digits, make_moons

    s = load_dataset("moons", seed=5, standardize=False, dtype=np.float64, noise=0.2)
    x, y = make_moons(n_samples=500, noise=0.2, random_state=5)
    both = _rows(np.concatenate([s.x_train, s.x_test]), np.concatenate([s.y_train, s.y_test]))
    assert both == _rows(x, y)

    d = load_dataset("digits", seed=0, standardize=False, dtype=np.float64)
    ref = load_digits()
    assert len(d.y_train) + len(d.y_test) == 1797
    assert d.x_train.shape[1] == d.x_test.shape[1] == 64
    assert set(d.y_train.tolist()) == set(range(10))
    both = _rows(np.concatenate([d.x_train, d.x_test]), np.concatenate([d.y_train, d.y_test]))
    assert both == _rows(ref.data, ref.target)


def test_seeds_fix_the_split_and_different_seeds_change_it() -> None:
    a, b = load_dataset("digits", seed=1), load_dataset("digits", seed=1)
    c = load_dataset("digits", seed=2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)
    assert load_dataset("digits", test_size=0.5).x_test.shape == (898, 64)  # round(898.5)


def test_standardisation_uses_training_statistics_only() -> None:
    raw = load_dataset("digits", seed=4, standardize=False, dtype=np.float64)
    s = load_dataset("digits", seed=4, dtype=np.float64)
    assert s.mean is not None and s.std is not None
    np.testing.assert_allclose(s.mean, raw.x_train.mean(axis=0), rtol=1e-12, atol=1e-12)
    spread = raw.x_train.std(axis=0)
    constant = spread == 0
    assert constant.any()  # some pixels are blank in every training image
    np.testing.assert_allclose(s.std[~constant], spread[~constant], rtol=1e-12)
    np.testing.assert_array_equal(s.std[constant], 1.0)
    assert np.isfinite(s.x_train).all() and np.isfinite(s.x_test).all()
    np.testing.assert_allclose(s.x_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(s.x_train.std(axis=0)[~constant], 1.0, rtol=1e-12)
    # The test part is mapped with the training statistics, not its own.
    expected = (raw.x_test - raw.x_train.mean(axis=0)) / np.where(constant, 1.0, spread)
    np.testing.assert_allclose(s.x_test, expected, rtol=1e-12, atol=1e-12)
    assert np.abs(s.x_test.mean(axis=0)).max() > 1e-3
    np.testing.assert_allclose(s.transform(raw.x_test), s.x_test, rtol=1e-12, atol=1e-12)
    assert raw.mean is None and raw.std is None


def test_splits_feed_a_data_loader() -> None:
    s = load_dataset("circles", seed=0)
    ids_seen = sum(len(yb) for _, yb in DataLoader(s.train, batch_size=64, shuffle=True, seed=0))
    assert ids_seen == len(s.y_train) == 375
    assert len(s.test) == 125


def test_bad_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="n_samples and noise apply to generated 2-D data"):
        load_dataset("digits", n_samples=100)
    with pytest.raises(ValueError, match="fraction in"):
        load_dataset("moons", test_size=1.5)
    with pytest.raises(ValueError, match="both parts need at least one sample"):
        load_dataset("moons", test_size=500)
    with pytest.raises(TypeError, match="float dtype"):
        load_dataset("moons", dtype=np.int32)


def test_a_missing_optional_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"scikit-learn.*pip install 'chainrule\[data\]'"):
        load_dataset("digits")


# -- MNIST-1D and the cache ---------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist1d_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh cache directory, with MNIST-1D generated into it once for the module."""
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(crcache.CACHE_ENV, str(path))
        py_state, np_state = random.getstate(), np.random.get_state()
        load_dataset("mnist1d")
        # The generator seeds the global generators; they must come back unchanged.
        assert random.getstate() == py_state
        after = np.random.get_state()
        np.testing.assert_array_equal(after[1], np_state[1])
        assert after[2:] == np_state[2:]
        yield path


def test_mnist1d_default_split_shapes(mnist1d_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(crcache.CACHE_ENV, str(mnist1d_cache))
    s = load_dataset("mnist1d")
    assert s.x_train.shape == (4000, 40) and s.x_test.shape == (1000, 40)
    assert s.y_train.dtype == np.int64 and set(s.y_train.tolist()) == set(range(10))
    assert s.info.n_classes == 10 and not s.info.is_2d
    resplit = load_dataset("mnist1d", test_size=0.1, seed=1)
    assert resplit.x_train.shape == (4500, 40) and resplit.x_test.shape == (500, 40)


def test_mnist1d_is_the_generators_reference_data(
    mnist1d_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnist1d.data import get_dataset_args, make_dataset

    reference_args = vars(get_dataset_args())
    reference_args.pop("url")
    assert reference_args == sources.MNIST1D_ARGS
    monkeypatch.setenv(crcache.CACHE_ENV, str(mnist1d_cache))
    s = load_dataset("mnist1d", standardize=False, dtype=np.float64)
    state = np.random.get_state()
    ref = make_dataset(get_dataset_args())
    np.random.set_state(state)
    np.testing.assert_array_equal(s.x_train, ref["x"])
    np.testing.assert_array_equal(s.x_test, ref["x_test"])
    np.testing.assert_array_equal(s.y_train, ref["y"])
    np.testing.assert_array_equal(s.y_test, ref["y_test"])


def test_mnist1d_comes_from_the_cache_once_generated(
    mnist1d_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(crcache.CACHE_ENV, str(mnist1d_cache))
    assert cache_dir() == mnist1d_cache
    assert [p.suffix for p in mnist1d_cache.iterdir()] == [".safetensors"]  # no temporary files
    first = load_dataset("mnist1d")

    def must_not_run() -> dict[str, np.ndarray]:
        raise AssertionError("regenerated although the cache holds the data")

    monkeypatch.setattr(sources, "_generate_mnist1d", must_not_run)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)  # not even imported
    second = load_dataset("mnist1d")
    np.testing.assert_array_equal(first.x_train, second.x_train)


def test_mnist1d_without_the_package_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(crcache.CACHE_ENV, str(tmp_path))  # empty: must generate
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match=r"'mnist1d' package.*chainrule\[data\]"):
        load_dataset("mnist1d")


def _counting_maker(calls: list[int]) -> Any:
    def make() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"a": np.arange(5.0), "b": np.eye(2)}

    return make


def test_cache_hits_misses_and_damaged_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(crcache.CACHE_ENV, str(tmp_path / "deep" / "cache"))
    calls: list[int] = []
    make = _counting_maker(calls)
    first = crcache.cached_arrays("toy", {"n": 5}, ("a", "b"), make)
    again = crcache.cached_arrays("toy", {"n": 5}, ("a", "b"), make)
    assert len(calls) == 1
    np.testing.assert_array_equal(first["a"], again["a"])
    crcache.cached_arrays("toy", {"n": 6}, ("a", "b"), make)  # other arguments, other entry
    assert len(calls) == 2
    entry = crcache.cache_path("toy", {"n": 5})
    entry.write_bytes(entry.read_bytes()[:40])  # damaged: regenerated and rewritten
    np.testing.assert_array_equal(
        crcache.cached_arrays("toy", {"n": 5}, "ab", make)["b"], np.eye(2)
    )
    assert len(calls) == 3
    crcache.cached_arrays("toy", {"n": 5}, ("a", "b", "c"), make)  # lacks a key: a miss
    assert len(calls) == 4


def test_an_unwritable_cache_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(crcache.CACHE_ENV, str(blocker / "cache"))
    calls: list[int] = []
    arrays = crcache.cached_arrays("toy", {"n": 1}, ("a",), _counting_maker(calls))
    np.testing.assert_array_equal(arrays["a"], np.arange(5.0))
    assert calls == [1]


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(crcache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert cache_dir() == Path("/somewhere/chainrule")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "chainrule"
