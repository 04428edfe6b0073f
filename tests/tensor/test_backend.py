"""The backend layer: which library an array belongs to, and what the standard lacks."""

from __future__ import annotations

import math
from typing import Any

import array_api_strict as xps
import numpy as np
import pytest

from chainrule.tensor import Tensor, backend

E = Ellipsis


def test_numpy_arrays_get_numpy_itself_and_strict_arrays_their_library() -> None:
    assert backend.array_namespace(np.ones(2), 2.0, None) is np
    assert backend.array_namespace() is np
    assert backend.array_namespace(xps.ones(2), 3) is xps
    assert backend.array_namespace(Tensor(np.ones(2))) is np


def test_two_libraries_in_one_operation_raise_naming_both_and_the_op() -> None:
    with pytest.raises(backend.MixedLibrariesError, match=r"mul: .*numpy and array_api_strict"):
        backend.array_namespace(np.ones(2), xps.ones(2), op="mul")


INDICES: list[tuple[str, Any]] = [
    ("int", 1), ("slice", slice(1, 3)), ("tuple", (slice(None), 1)), ("ellipsis", (E, 0)),
    ("newaxis", (None, 1)), ("repeated", np.array([0, 0, 2, 0])),
    ("negative", np.array([-1, 0, -1])), ("array_2d", np.array([[0, 1], [1, 1]])),
    ("pair", (np.array([0, 2, 0]), np.array([1, 1, 1]))),
    ("mixed", (slice(None), np.array([2, 2, 0]))), ("after_ellipsis", (E, np.array([4, 0]))),
    ("mixed_slice", (np.array([3, 3]), slice(1, 3))),
    ("sliced", (slice(1, None), E, np.array([0, 4]))),
    ("empty", np.array([], dtype=np.int64)), ("mask", np.array([True, False, True, True])),
]  # fmt: skip


def _strict(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(_strict(i) for i in index)
    return xps.asarray(index) if isinstance(index, np.ndarray | list) else index


@pytest.mark.parametrize(("name", "index"), INDICES, ids=[n for n, _ in INDICES])
def test_getitem_on_strict_arrays_means_what_numpy_indexing_means(name: str, index: Any) -> None:
    x = np.arange(60.0).reshape(4, 3, 5)
    got = backend.getitem(xps, xps.asarray(x), _strict(index))
    np.testing.assert_array_equal(backend.to_numpy(got), x[index])


def test_getitem_rejects_integer_arrays_split_by_a_slice_with_what_to_do() -> None:
    x = xps.zeros((4, 3, 5))
    with pytest.raises(IndexError, match=r"getitem: .*adjacent.*two steps"):
        backend.getitem(xps, x, (xps.asarray([0]), slice(1, 2), xps.asarray([0])))
    with pytest.raises(IndexError, match=r"getitem: .*adjacent.*two steps"):
        backend.getitem(xps, x, (1, xps.asarray([0])))


@pytest.mark.parametrize(("name", "index"), INDICES, ids=[n for n, _ in INDICES])
def test_index_add_on_strict_arrays_adds_repeated_positions_as_np_add_at(
    name: str, index: Any
) -> None:
    rng = np.random.default_rng(0)
    shape = (4, 3, 5)
    g = rng.standard_normal(np.zeros(shape)[index].shape)
    expected = np.zeros(shape)
    np.add.at(expected, index, g)
    got = backend.index_add(xps, xps.asarray(g), shape, _strict(index))
    np.testing.assert_allclose(backend.to_numpy(got), expected, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(backend.index_add(np, g, shape, index), expected)


def test_erf_on_each_library_matches_the_c_library() -> None:
    x = np.linspace(-4, 4, 17)
    expected = [math.erf(v) for v in x]
    np.testing.assert_allclose(backend.erf(np, x), expected, rtol=1e-14, atol=1e-16)
    strict = backend.erf(xps, xps.asarray(x))
    assert strict.dtype == xps.float64
    np.testing.assert_allclose(backend.to_numpy(strict), expected, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("xp", [np, xps], ids=["numpy", "array_api_strict"])
def test_a_seeded_generator_repeats_itself_in_the_library_and_dtype_asked(xp: Any) -> None:
    a = backend.generator(xp, 7).normal((3, 2), dtype=np.float32)
    b = backend.generator(xp, 7).normal((3, 2), dtype=np.float32)
    c = backend.generator(xp, 8).normal((3, 2), dtype=np.float32)
    assert backend.array_namespace(a) is xp
    assert a.dtype == backend.convert_dtype(xp, np.float32)
    np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
    assert not np.array_equal(backend.to_numpy(a), backend.to_numpy(c))
    u = backend.to_numpy(backend.generator(xp, 1).uniform((100,), -2.0, -1.0))
    assert ((u >= -2.0) & (u < -1.0)).all()
    k = backend.generator(xp, 1).integers(0, 3, (50,))
    assert set(backend.to_numpy(k).tolist()) <= {0, 1, 2}


@pytest.mark.parametrize("xp", [np, xps], ids=["numpy", "array_api_strict"])
def test_a_fingerprint_sees_a_whole_array_write_and_equals_itself_with_nan(xp: Any) -> None:
    a = xp.asarray(np.r_[np.arange(200.0), np.nan])
    before = backend.fingerprint(a)
    assert backend.same_fingerprint(before, backend.fingerprint(a))  # nan == nan here
    if xp is not np:
        assert backend.array_namespace(before) is xp  # kept on the array's device
    a *= 2
    assert not backend.same_fingerprint(before, backend.fingerprint(a))


def test_dtype_helpers_speak_for_each_library() -> None:
    assert backend.is_floating(np.dtype(np.float32)) and backend.is_floating(xps.float64)
    assert not backend.is_floating(xps.int64) and not backend.is_floating(np.dtype(bool))
    assert backend.convert_dtype(xps, np.float32) == xps.float32
    assert backend.convert_dtype(xps, np.bool_) == xps.bool
    assert backend.library_name(backend.array_namespace(xps.ones(1))) == "array_api_strict"
