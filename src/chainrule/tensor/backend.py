"""The array library of the data at hand: NumPy, CuPy, array-api-strict, or any other.

The array library is a property of the data, as in Chainer (``get_array_module``) and in
scikit-learn and SciPy (the Python array API standard): ``array_namespace(x)`` is the module
whose functions compute on ``x``. NumPy arrays get NumPy itself, without asking
``array_api_compat`` (a fast path: every operation asks); other arrays get the namespace
``array_api_compat.array_namespace`` gives them. ``namespace(x)`` is the same for arrays and
chainrule's own namespace (``chainrule.tensor.array_api``) for Tensors, so that a VJP rule
written against the standard also runs, recorded, on Tensors (``create_graph=True``).

And the few things the standard lacks, per library:

- ``index_add``: scatter-add (the VJP of integer indexing): ``np.add.at`` on NumPy,
  ``cupyx.scatter_add`` on CuPy, and for any other library a one-hot matrix product over
  flat positions (exact, loop-free, standard functions only; O(selected × size) memory,
  which is fine for a reference library, not for a large embedding);
- ``getitem``: NumPy's indexing (partial indices, integer arrays next to slices) spelled
  with the standard's ``take`` and full indices;
- ``erf``: SciPy's or CuPy's, else a host round-trip through NumPy;
- ``generator``: a seeded random generator on the library's device;
- ``fingerprint`` / ``same_fingerprint``: a sample of an array, taken and compared on the
  array's device (no host copy), to catch writes made behind the engine's back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat
import numpy as np

_ndarray = np.ndarray
_SCALARS = (int, float, bool, complex, np.generic)


class MixedLibrariesError(TypeError):
    """An operation was given arrays of two array libraries (e.g. NumPy and CuPy)."""


def library_name(xp: Any) -> str:
    """The name users know an array library by: 'numpy', 'cupy', 'array_api_strict'."""
    name: str = getattr(xp, "__name__", type(xp).__name__)
    return name.removeprefix("array_api_compat.")


def array_namespace(*arrays: Any, op: str = "operation") -> Any:
    """The array library of ``arrays`` (Tensors count as the library of their data).

    Python numbers and None are ignored; with no array at all, NumPy. Arrays of two
    libraries raise ``MixedLibrariesError`` naming ``op`` and both libraries.
    """
    found: list[Any] = []
    for a in arrays:
        data = getattr(a, "_data", a)  # a chainrule Tensor: its array
        if type(data) is _ndarray or isinstance(data, _ndarray):  # (and NumPy's subclasses)
            continue
        if data is None or isinstance(data, _SCALARS) or not is_library_array(data):
            continue
        found.append(data)
    if not found:
        return np  # NumPy arrays only (the common case: no array_api_compat call)
    has_numpy = any(isinstance(getattr(a, "_data", a), _ndarray) for a in arrays)
    kinds = {type(data) for data in found}
    xp = None
    if len(kinds) == 1:  # one array type: its namespace, asked of array_api_compat once
        kind = kinds.pop()
        xp = _BY_TYPE.get(kind)
        if xp is None:
            xp = _BY_TYPE[kind] = array_api_compat.array_namespace(found[0])
    else:
        try:
            xp = array_api_compat.array_namespace(*found)
        except TypeError:
            xp = None
    if xp is None or has_numpy:
        libraries = sorted({library_name(array_api_compat.array_namespace(a)) for a in found})
        if has_numpy:
            libraries = ["numpy", *libraries]
        raise MixedLibrariesError(
            f"{op}: its inputs come from two array libraries ({' and '.join(libraries)}); "
            "every array of one operation must come from the same library. Convert one "
            "side first (e.g. xp.asarray(...) of the other's library, or .to()/.cpu())."
        )
    return xp


# The namespace of each array type met so far (a GPU step asks at every operation).
_BY_TYPE: dict[type, Any] = {}


def is_library_array(a: Any) -> bool:
    """True for an array of an array API library: one with ``__array_namespace__``, or a
    CuPy array (recognised by array_api_compat whether or not it has that method)."""
    return hasattr(a, "__array_namespace__") or array_api_compat.is_cupy_array(a)


def namespace(*xs: Any) -> Any:
    """The namespace a VJP rule calls for ``xs``: chainrule's own (``array_api``) when one
    of them is a Tensor (the backward pass is recorded), else the arrays' library."""
    for x in xs:
        if type(x) is _ndarray:
            continue
        if hasattr(x, "_data"):
            from chainrule.tensor import array_api

            return array_api
    return array_namespace(*xs)


def on(a: Any) -> dict[str, Any]:
    """``device=`` for a creation function, to make an array where ``a`` lives (nothing for
    NumPy: one device, and NumPy before 2.0 has no such argument)."""
    data = getattr(a, "_data", a)
    if isinstance(data, _ndarray | np.generic):
        return {}
    return {"device": array_api_compat.device(data)}


def is_numpy(a: Any) -> bool:
    """True for NumPy arrays and scalars (and Tensors holding them)."""
    data = getattr(a, "_data", a)
    return isinstance(data, _ndarray | np.generic)


def is_floating(dtype: Any) -> bool:
    """True for real floating-point dtypes of any library."""
    kind = getattr(dtype, "kind", None)
    if kind is not None:  # NumPy's (and CuPy's, which are NumPy's)
        return bool(kind == "f")
    name = str(dtype).rsplit(".", 1)[-1]
    return name in ("float16", "bfloat16", "float32", "float64")


def convert_dtype(xp: Any, dtype: Any) -> Any:
    """``dtype`` (a NumPy dtype, a type or a name) as the dtype object of library ``xp``."""
    if xp is np or dtype is None:
        return dtype
    if isinstance(dtype, str | type | np.dtype):
        name = np.dtype(dtype).name
        return getattr(xp, "bool" if name == "bool" else name)
    return dtype  # already the library's own


def to_numpy(a: Any) -> np.ndarray:
    """A NumPy array with ``a``'s values (a copy from a GPU; shared memory where possible)."""
    if isinstance(a, _ndarray):
        return a
    if isinstance(a, _SCALARS):
        return np.asarray(a)
    get = getattr(a, "get", None)  # CuPy: an explicit device-to-host copy
    if callable(get) and library_name(array_namespace(a)) == "cupy":
        return np.asarray(get())
    return np.from_dlpack(a)


def copy_array(data: Any, dtype: Any, op: str) -> Any:
    """A copy of another array library's array (CuPy, array-api-strict), kept in it: what
    ``Tensor(data)`` holds. Real numbers only, as for NumPy data."""
    xp = array_namespace(data, op=op)
    arr = xp.asarray(data, dtype=convert_dtype(xp, dtype), copy=True)
    if not xp.isdtype(arr.dtype, ("real floating", "integral", "bool")):
        raise TypeError(
            f"{op}: tensors hold real numbers (bool, int, float), got a "
            f"{library_name(xp)} array of dtype {arr.dtype}; pass a real-valued one."
        )
    return arr


def seed(data: Any, gradient: Any, op: str) -> Any:
    """The seed of a backward pass from an output ``data`` of another library: ones for a
    one-element output, else a copy of ``gradient`` made by that library."""
    xp = array_namespace(data)
    shape = tuple(data.shape)
    if gradient is None:
        if math.prod(shape) != 1:
            raise RuntimeError(
                f"{op}: the output has shape {shape}; a gradient can only be created "
                "implicitly for a scalar output. Reduce it (out.sum().backward()) or pass "
                f"gradient= an array of shape {shape} (d loss / d out)."
            )
        return xp.ones(shape, dtype=data.dtype, **on(data))
    g = xp.asarray(gradient, dtype=data.dtype, copy=True, **on(data))
    if tuple(g.shape) != shape:
        raise ValueError(
            f"{op}: gradient has shape {tuple(g.shape)} but the output has shape {shape}; "
            "they must match."
        )
    return g


# -- indexing -----------------------------------------------------------------------------


def _integer_array(item: Any, xp: Any) -> bool:
    return hasattr(item, "dtype") and hasattr(item, "shape") and xp.isdtype(item.dtype, "integral")


def getitem(xp: Any, x: Any, index: Any) -> Any:
    """``x[index]`` with NumPy's meaning, on a library that only has the standard's.

    The standard needs an index for every axis (or an Ellipsis), allows integer arrays only
    among integers, and a boolean mask only as the sole index. NumPy's partial indices are
    completed with a trailing Ellipsis, and one run of adjacent integer arrays among full
    slices (``x[i]``, ``x[:, i]``, ``x[i, j]``) becomes ``take`` over the merged axes.
    """
    items = index if isinstance(index, tuple) else (index,)
    if len(items) == 1 and hasattr(items[0], "dtype") and xp.isdtype(items[0].dtype, "bool"):
        return x[items[0]]  # a mask as the sole index
    arrays = [k for k, item in enumerate(items) if _integer_array(item, xp)]
    if not arrays:
        if Ellipsis not in items:
            items = (*items, Ellipsis)
        return x[items]
    first, last = arrays[0], arrays[-1]
    rest = items[:first] + items[last + 1 :]
    if last - first + 1 != len(arrays) or any(
        not (item is Ellipsis or isinstance(item, slice)) for item in rest
    ):
        raise IndexError(
            f"getitem: on {library_name(xp)} arrays, integer-array indices must be adjacent "
            "and the other indices slices (x[i], x[:, i], x[i, j], x[i, 1:3]); got "
            f"{index!r}. Index in two steps: x[ints][arrays]."
        )
    if any(isinstance(item, slice) and item != slice(None) for item in rest):
        # Slices first (they keep every axis), then the arrays over full slices.
        full = tuple(slice(None) if k in arrays else item for k, item in enumerate(items))
        x = x[full if Ellipsis in full else (*full, Ellipsis)]
        items = tuple(item if k in arrays else slice(None) for k, item in enumerate(items))
    if Ellipsis in items[:first]:  # x[..., i]: count the axes before the arrays from the end
        first = x.ndim - (len(items) - first - (Ellipsis in items[last + 1 :]))
    k = len(arrays)
    sizes = x.shape[first : first + k]
    picks = xp.broadcast_arrays(*(items[j] for j in arrays))
    flat = picks[0] * 0
    for pick, n in zip(picks, sizes, strict=True):
        flat = flat * n + xp.where(pick < 0, pick + n, pick)  # NumPy's negative indices
    merged = xp.reshape(x, (*x.shape[:first], math.prod(sizes), *x.shape[first + k :]))
    out = xp.take(merged, xp.reshape(flat, (-1,)), axis=first)
    return xp.reshape(out, (*x.shape[:first], *flat.shape, *x.shape[first + k :]))


def index_add(xp: Any, g: Any, shape: tuple[int, ...], index: Any) -> Any:
    """``zeros(shape)`` with ``g`` added at ``index``; repeated positions add up."""
    if xp is np:
        out = np.zeros(shape, dtype=g.dtype)
        np.add.at(out, index, g)
        return out
    if library_name(xp) == "cupy":
        import cupyx

        out = xp.zeros(shape, dtype=g.dtype, **on(g))
        cupyx.scatter_add(out, index, g)
        return out
    # Any library: the flat position of each selected element (the same indexing applied
    # to 0, 1, ..., size-1), then a sum per position as one matrix product with a one-hot.
    size = math.prod(shape)
    flat = xp.arange(size, **on(g))
    positions = getitem(xp, xp.reshape(flat, shape), index)
    hit = xp.reshape(positions, (-1, 1)) == xp.reshape(flat, (1, -1))
    summed = xp.reshape(g, (1, -1)) @ xp.astype(hit, g.dtype)
    return xp.reshape(summed, shape)


# -- what the standard lacks --------------------------------------------------------------


def erf(xp: Any, x: Any) -> Any:
    """The error function, elementwise, on ``x``'s library."""
    return _special(xp, x, "erf")


def erfc(xp: Any, x: Any) -> Any:
    """1 - erf(x), accurate where erf(x) is close to 1 (large x)."""
    return _special(xp, x, "erfc")


def _special(xp: Any, x: Any, name: str) -> Any:
    if xp is np:
        return _numpy_special(name)(x)
    if library_name(xp) == "cupy":
        import cupyx.scipy.special

        return getattr(cupyx.scipy.special, name)(x)
    # Not in the standard: through NumPy on the host, and back (array-api-strict and other
    # CPU libraries; a GPU library should get its own branch above).
    return xp.asarray(_numpy_special(name)(to_numpy(x)), dtype=x.dtype, **on(x))


def _numpy_special(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """SciPy's vectorised function if installed (imported on first use), else math's."""
    try:
        import scipy.special
    except ImportError:  # pragma: no cover - scipy is in the dev extra
        vectorised = np.frompyfunc(getattr(math, name), 1, 1)
        return lambda x: np.asarray(vectorised(x), dtype=np.result_type(x, np.float32))
    return getattr(scipy.special, name)  # type: ignore[no-any-return]


class Generator:
    """A seeded random generator whose arrays are made by library ``xp``.

    NumPy and CuPy draw on their own device (``default_rng``); any other library draws
    with NumPy on the host and converts once per call (its arrays are on the CPU).
    """

    def __init__(self, xp: Any, seed: int | None = None) -> None:
        self.xp = xp
        self._native = xp is np or library_name(xp) == "cupy"
        module = np if xp is np or not self._native else __import__("cupy")
        self._rng = module.random.default_rng(seed)

    def _out(self, a: Any, dtype: Any) -> Any:
        if self._native:
            return a if dtype is None else a.astype(dtype, copy=False)
        return self.xp.asarray(a, dtype=convert_dtype(self.xp, dtype))

    def normal(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        """Standard normal samples of ``shape``."""
        return self._out(self._rng.standard_normal(shape), dtype)

    def uniform(
        self, shape: tuple[int, ...], low: float = 0.0, high: float = 1.0, dtype: Any = None
    ) -> Any:
        """Uniform samples in [low, high)."""
        return self._out(self._rng.uniform(low, high, shape), dtype)

    def integers(self, low: int, high: int, shape: tuple[int, ...]) -> Any:
        """Integers in [low, high), int64."""
        return self._out(self._rng.integers(low, high, shape), np.int64)


def generator(xp: Any, seed: int | None = None) -> Generator:
    """A seeded random generator for library ``xp`` (see ``Generator``)."""
    return Generator(xp, seed)


# -- samples that catch writes behind the engine's back -----------------------------------


def fingerprint(a: Any) -> Any:
    """Up to 64 evenly spaced elements of ``a``, kept where ``a`` is.

    NumPy: their bytes (NaN-safe to compare with ==). Other libraries: a copy of the sample
    on the array's own device: no host copy (for a GPU array, no synchronisation either),
    until ``same_fingerprint`` compares two of them.
    """
    if isinstance(a, _ndarray | np.generic):
        flat = a.reshape(-1)
        return flat[:: max(1, flat.size // 64)].tobytes()
    xp = array_namespace(a)
    flat = xp.reshape(a, (-1,))
    size = math.prod(flat.shape)
    return xp.asarray(flat[:: max(1, size // 64)], copy=True)


def same_fingerprint(a: Any, b: Any) -> bool:
    """True when two samples of ``fingerprint`` are equal (NaN equals NaN)."""
    if isinstance(a, bytes) or isinstance(b, bytes):
        return bool(a == b)
    if a.shape != b.shape:
        return False
    xp = array_namespace(a, b)
    same = (a == b) | ((a != a) & (b != b))
    return bool(xp.all(same))
