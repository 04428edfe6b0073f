"""Model files: ``save`` a state dict with JSON metadata, ``load`` it back.

Format: safetensors (https://github.com/huggingface/safetensors): an 8-byte header length,
a JSON header naming each tensor's dtype, shape and byte range, then the raw little-endian
bytes. Loading runs no code, the header is bounded, and every byte range is checked against
the file before anything is allocated. chainrule's own header goes into the safetensors
header's ``__metadata__`` (string values only) under two keys:

- ``chainrule``: JSON with ``format`` (``"chainrule.state_dict"``), ``format_version``
  (``FORMAT_VERSION``), ``chainrule_version``, ``tensors`` (name -> dtype, shape and the
  CRC-32 of its bytes, in the state dict's order) and the caller's ``metadata``;
- ``chainrule.crc32``: the CRC-32 of that JSON text.

safetensors has no checksums of its own; with these, a flipped bit anywhere in a chainrule
file is reported instead of loaded. Any safetensors reader opens the file
(``safetensors.torch.load_file``, ``safetensors.numpy.load_file``, JAX's ``flax``
loader), and ``load`` reads safetensors files that others wrote (no chainrule header:
``metadata`` is then ``{}``). chainrule's ``nn.Linear`` keeps ``weight`` as
(out_features, in_features) and ``bias`` as (out_features,), as PyTorch does, and modules
name parameters the way PyTorch does, so a PyTorch state dict loads as it is when its
module tree has the same attribute names (``nn.MLP``'s are ``layers.0.weight``,
``layers.0.bias``, ``layers.2.weight``...: a PyTorch ``nn.Sequential`` of Linear and
activation layers saved as ``model.layers`` matches it; a bare Sequential's keys need the
prefix ``layers.``). bfloat16 tensors cannot be held by NumPy: convert them to float32 in
PyTorch first.

The ``.npz`` files of chainrule 0.1 (format version 1) are still read, with bounds
(``chainrule.io.npz``); ``chainrule.save(ckpt, new_path, ckpt.metadata)`` converts one.

Writes are atomic (``chainrule.io.atomic``): a crash or a full disk leaves the old file or
the new one, never half of one, and temporaries of killed writers are removed by the next
save to the same path.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from chainrule.io.atomic import PathLike, atomic_savefig, atomic_write, remove_stale_temporaries

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_HEADER_BYTES",
    "Checkpoint",
    "ModelFileError",
    "PathLike",
    "atomic_savefig",
    "atomic_write",
    "load",
    "remove_stale_temporaries",
    "save",
]

FORMAT = "chainrule.state_dict"
#: 1: the .npz files of chainrule 0.1 (still read); 2: safetensors.
FORMAT_VERSION = 2
HEADER_KEY = "chainrule"
CRC_KEY = "chainrule.crc32"
#: The largest safetensors header ``load`` reads (a model's header is a few kB).
MAX_HEADER_BYTES = 16 * 2**20
# safetensors' dtype names that NumPy holds.
_NUMPY_DTYPES = {
    "BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "F16": "<f2",
    "U32": "<u4", "I32": "<i4", "F32": "<f4", "U64": "<u8", "I64": "<i8", "F64": "<f8",
    "C64": "<c8",
}  # fmt: skip

# First bytes of formats people mistake for a model file, to say what a foreign file is.
_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"\x93NUMPY", "a single NumPy .npy array, not a chainrule model file"),
    (b"\x80", "a Python pickle (chainrule never loads pickles: they can run code)"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x89HDF", "an HDF5 file"),
    (b"{", "a JSON/text file"),
)


class ModelFileError(ValueError):
    """A file that ``chainrule.load`` cannot read: foreign, truncated or corrupt."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"chainrule.load: cannot read '{path}': {problem}")
        self.path = path
        self.problem = problem


class Checkpoint(dict[str, np.ndarray]):
    """What ``load`` returns: the state dict (name -> array), with the file's metadata.

    A ``dict``, so ``model.load_state_dict(chainrule.load(path))`` works directly.

    Attributes:
        metadata: the ``metadata`` given to ``save`` (after a JSON round trip: tuples come
            back as lists); ``{}`` for a safetensors file that chainrule did not write.
        chainrule_version: the version of chainrule that wrote the file (None: another
            program wrote it).
        path: the file it was read from.
        safetensors_metadata: the safetensors header's ``__metadata__`` as written (e.g.
            ``{"format": "pt"}`` from PyTorch); ``{}`` for ``.npz`` files.
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        metadata: dict[str, Any],
        chainrule_version: str | None,
        path: Path,
        safetensors_metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(arrays)
        self.metadata = metadata
        self.chainrule_version = chainrule_version
        self.path = path
        self.safetensors_metadata = dict(safetensors_metadata or {})

    @property
    def state_dict(self) -> dict[str, np.ndarray]:
        """The arrays as a plain dict."""
        return dict(self)


def _to_array(name: str, value: Any) -> np.ndarray:
    from chainrule.tensor.movement import host_array

    # A Tensor's array, or any array: NumPy's as it is, a GPU's copied to host memory.
    arr = np.asarray(host_array(value))
    if arr.dtype.kind not in "biufc" or arr.dtype.itemsize > 8:
        raise TypeError(
            f"chainrule.save: state['{name}'] has dtype {arr.dtype} ({type(value).__name__}); "
            "model files hold bool, integer, float16/32/64 and complex64 arrays and Tensors. "
            "Put other values in metadata."
        )
    # Little-endian and contiguous, as safetensors stores them.
    return arr.astype(arr.dtype.newbyteorder("<"), order="C", copy=False)


def _state_of(obj: Any) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        return obj
    state_dict = getattr(obj, "state_dict", None)
    if callable(state_dict):  # a Module: save its parameters
        state = state_dict()
        if isinstance(state, Mapping):
            return state
    raise TypeError(
        f"chainrule.save: expected a state dict (a mapping name -> array/Tensor) or an object "
        f"with a state_dict() method, got {type(obj).__name__}."
    )


def _crc(data: bytes | memoryview) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def save(obj: Any, path: PathLike, metadata: Mapping[str, Any] | None = None) -> None:
    """Save a state dict (name -> array or Tensor) and JSON metadata to ``path``, atomically.

    Args:
        obj: a mapping from names to NumPy arrays or Tensors, or an object with a
            ``state_dict()`` method (a ``Module``).
        path: the file to write (any name; ``.safetensors`` is conventional). An existing
            file is replaced only once the new one is completely on disk.
        metadata: JSON-serialisable information to keep with the weights, e.g.
            ``{"architecture": {"sizes": [64, 32, 10]}, "epochs": 20}``.

    Example:
        >>> import numpy as np, chainrule, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
        >>> chainrule.save({"W": np.eye(2)}, path, metadata={"sizes": [2, 2]})
        >>> ckpt = chainrule.load(path)
        >>> ckpt["W"].tolist(), ckpt.metadata
        ([[1.0, 0.0], [0.0, 1.0]], {'sizes': [2, 2]})
    """
    from safetensors.numpy import save as to_bytes

    state = _state_of(obj)
    arrays: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ValueError(
                f"chainrule.save: state dict keys must be non-empty strings other than "
                f"'__metadata__'; got {name!r}."
            )
        arrays[name] = _to_array(name, value)
    from chainrule import __version__

    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "chainrule_version": __version__,
        "tensors": {
            n: {"dtype": a.dtype.str, "shape": list(a.shape), "crc32": _crc(a.data)}
            for n, a in arrays.items()
        },
        "metadata": dict(metadata) if metadata is not None else {},
    }
    try:
        text = json.dumps(header, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"chainrule.save: metadata must be JSON-serialisable (dicts with string keys, "
            f"lists, strings, finite numbers, booleans, None): {exc}. Convert NumPy values "
            "with .tolist() or float()."
        ) from None
    blob = to_bytes(arrays, metadata={HEADER_KEY: text, CRC_KEY: str(_crc(text.encode("utf-8")))})

    def write(f: IO[bytes]) -> None:
        f.write(blob)

    atomic_write(path, write)


def _describe_foreign(head: bytes) -> str:
    if not head:
        return "the file is empty"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"it is {what}"
    return f"it does not start like a chainrule model file (first bytes {head[:8]!r})"


def _check_header(path: Path, header: Any, version_range: tuple[int, int]) -> dict[str, Any]:
    """chainrule's header as a whole: its kind, version, tensor list and metadata."""
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(path, "its header is not a chainrule state-dict header")
    version = header.get("format_version")
    low, high = version_range
    if not isinstance(version, int) or isinstance(version, bool) or not low <= version <= high:
        hint = (
            "Upgrade chainrule."
            if isinstance(version, int) and not isinstance(version, bool) and version > high
            else "The file was edited or damaged."
        )
        raise ModelFileError(
            path,
            f"it has format version {version!r}, written by chainrule "
            f"{header.get('chainrule_version')}; this chainrule reads versions {low} to "
            f"{high} of this kind of file. {hint}",
        )
    if not isinstance(header.get("tensors"), dict) or not isinstance(header.get("metadata"), dict):
        raise ModelFileError(path, "its header lacks the tensor list or the metadata")
    return header


def _load_npz(p: Path) -> Checkpoint:
    from chainrule.io.npz import NpzProblem, read_npz

    try:
        header, arrays = read_npz(p)
        header = _check_header(p, header, (1, 1))
    except ModelFileError:
        raise
    except NpzProblem as exc:
        raise ModelFileError(p, str(exc)) from None
    except Exception as exc:
        # Damaged bytes surface as many types (BadZipFile, a CRC error, EOFError, a garbled
        # compression method, JSON and Unicode errors); to the user they mean one thing.
        raise ModelFileError(
            p, f"the file is truncated or corrupt ({type(exc).__name__}: {exc})"
        ) from exc
    return Checkpoint(arrays, header["metadata"], str(header.get("chainrule_version")), p)


def _chainrule_header(p: Path, meta: dict[str, str]) -> dict[str, Any] | None:
    if HEADER_KEY not in meta and CRC_KEY not in meta:
        return None  # another program's safetensors file
    text, crc = meta.get(HEADER_KEY), meta.get(CRC_KEY)
    if text is None or crc is None or str(_crc(text.encode("utf-8"))) != crc:
        raise ModelFileError(p, "chainrule's header in it is damaged (checksum mismatch)")
    try:
        header = json.loads(text)
    except ValueError as exc:
        raise ModelFileError(p, f"chainrule's header in it is not valid JSON ({exc})") from None
    return _check_header(p, header, (2, FORMAT_VERSION))


def _load_safetensors(p: Path, size: int, head: bytes) -> Checkpoint:
    from safetensors import SafetensorError, safe_open

    n = int.from_bytes(head[:8], "little")
    if n > MAX_HEADER_BYTES:
        raise ModelFileError(
            p,
            f"its safetensors header would be {n:,} bytes; chainrule reads headers of at most "
            f"{MAX_HEADER_BYTES:,} bytes (the file is damaged or not a model file)",
        )
    if 8 + n > size:
        raise ModelFileError(p, f"the file is truncated: its header needs {8 + n:,} bytes")
    try:
        with safe_open(p, framework="numpy") as f:
            meta = dict(f.metadata() or {})
            header = _chainrule_header(p, meta)
            present = {k: f.get_slice(k) for k in f.keys()}  # noqa: SIM118 - not a dict
            names = list(header["tensors"]) if header is not None else sorted(present)
            if set(names) != set(present):
                raise ModelFileError(
                    p,
                    f"its header lists tensors {sorted(names)[:5]}, the file holds "
                    f"{sorted(present)[:5]}",
                )
            arrays: dict[str, np.ndarray] = {}
            for name in names:
                kind = present[name].get_dtype()
                if kind not in _NUMPY_DTYPES:
                    raise ModelFileError(
                        p,
                        f"tensor '{name}' has dtype {kind}, which NumPy cannot hold; convert it "
                        "first (in PyTorch: {k: v.float() for k, v in state.items()})",
                    )
                arr = np.array(f.get_tensor(name))  # a writeable copy
                if header is not None:
                    spec = header["tensors"][name]
                    spec = spec if isinstance(spec, dict) else {}
                    want = (spec.get("dtype"), spec.get("shape"), spec.get("crc32"))
                    got = (arr.dtype.str, list(arr.shape), _crc(arr.data))
                    if want != got:
                        raise ModelFileError(
                            p,
                            f"tensor '{name}' is {got[0]} {got[1]} (crc32 {got[2]}), the header "
                            f"says {want[0]} {want[1]} (crc32 {want[2]}): the file is damaged",
                        )
                arrays[name] = arr
    except (SafetensorError, OSError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(
            p, f"the file is truncated or corrupt ({type(exc).__name__}: {exc})"
        ) from exc
    if header is None:
        return Checkpoint(arrays, {}, None, p, meta)
    return Checkpoint(arrays, header["metadata"], str(header["chainrule_version"]), p, meta)


def load(path: PathLike) -> Checkpoint:
    """Load a model file: the state dict of NumPy arrays, with ``.metadata``.

    Reads chainrule's safetensors files, safetensors files written by others (PyTorch's
    ``safetensors.torch.save_file``, ...) and chainrule 0.1's ``.npz`` files. Never runs
    code from the file (no pickle). Raises ``FileNotFoundError`` for a missing file and
    ``ModelFileError`` (a ``ValueError``) naming the file and the problem for one that is
    foreign, truncated or corrupt.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"chainrule.load: no such file: '{p}'")
    if p.is_dir():
        raise IsADirectoryError(f"chainrule.load: '{p}' is a directory, not a model file")
    with open(p, "rb") as f:
        head = f.read(9)
        size = f.seek(0, 2)
    if head.startswith(b"PK"):  # a zip archive: chainrule 0.1's .npz
        return _load_npz(p)
    for magic, _ in _MAGIC:
        if head.startswith(magic):
            raise ModelFileError(p, _describe_foreign(head))
    if len(head) < 9 or head[8:9] != b"{":  # safetensors: 8-byte length, then JSON
        raise ModelFileError(p, _describe_foreign(head))
    return _load_safetensors(p, size, head)
