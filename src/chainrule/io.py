"""Model files: ``save`` a state dict with JSON metadata, ``load`` it back.

Format: a NumPy ``.npz`` archive (an uncompressed zip of ``.npy`` files), one entry per
tensor under its state-dict name, plus one entry ``__chainrule__`` that holds UTF-8 JSON:
the format version, the chainrule version, each tensor's dtype and shape, and the caller's
metadata (architecture, hyperparameters, ...).

Why ``.npz`` and not safetensors: both are safe to load (no code runs; ``.npy`` entries are
read with ``allow_pickle=False`` and written with it too, so object arrays never get in),
but ``.npz`` needs nothing beyond NumPy, which chainrule depends on anyway, and any NumPy
user can open the file with ``np.load``. safetensors' advantages (memory-mapped lazy loading
of multi-gigabyte checkpoints, bfloat16) do not matter for the models of a lecture.

Writes are atomic: the archive goes to a temporary file in the target's directory, is
flushed and fsync'ed, and then renamed over the target with ``os.replace``. A crash or a
full disk leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

FORMAT = "chainrule.state_dict"
FORMAT_VERSION = 1
HEADER_KEY = "__chainrule__"

PathLike = str | os.PathLike[str]
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows only: no newline translation

# First bytes of formats people mistake for a model file, to say what a foreign file is.
_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"\x93NUMPY", "a single NumPy .npy array, not a chainrule archive"),
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
            back as lists).
        chainrule_version: the version of chainrule that wrote the file.
        path: the file it was read from.
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        metadata: dict[str, Any],
        chainrule_version: str,
        path: Path,
    ) -> None:
        super().__init__(arrays)
        self.metadata = metadata
        self.chainrule_version = chainrule_version
        self.path = path

    @property
    def state_dict(self) -> dict[str, np.ndarray]:
        """The arrays as a plain dict."""
        return dict(self)


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write a file through ``write(fileobj)`` so that ``path`` is never half-written.

    The bytes go to a temporary file next to ``path`` (same directory, so same file system
    and ``os.replace`` is an atomic rename), which is flushed and fsync'ed before the rename.
    If ``write`` raises, the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    directory = target.parent
    if not directory.is_dir():
        raise FileNotFoundError(
            f"cannot write '{target}': the directory '{directory}' does not exist; "
            "create it first (e.g. os.makedirs)."
        )
    # os.open with mode 0o666 honours the umask, unlike tempfile.mkstemp's 0o600: the
    # model file gets the same permissions as any file the user creates.
    while True:
        tmp = directory / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666)
            break
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # data on disk before the rename makes it visible
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def write_npz(f: IO[bytes], arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` archive that ``np.load`` reads.

    Entry by entry rather than with ``np.savez``, whose keyword arguments would clash with
    arrays named ``file`` or ``allow_pickle``; object arrays are refused (no pickles).
    """
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def _to_array(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)  # a Tensor gives its array through __array__, without a copy
    if arr.dtype.kind not in "biufc":
        raise TypeError(
            f"chainrule.save: state['{name}'] has dtype {arr.dtype} ({type(value).__name__}); "
            "model files hold numeric arrays and Tensors only. Put other values in metadata."
        )
    return arr


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


def save(obj: Any, path: PathLike, metadata: Mapping[str, Any] | None = None) -> None:
    """Save a state dict (name -> array or Tensor) and JSON metadata to ``path``, atomically.

    Args:
        obj: a mapping from names to NumPy arrays or Tensors, or an object with a
            ``state_dict()`` method (a ``Module``).
        path: the file to write (any name; ``.npz`` is conventional). An existing file is
            replaced only once the new one is completely on disk.
        metadata: JSON-serialisable information to keep with the weights, e.g.
            ``{"architecture": {"sizes": [64, 32, 10]}, "epochs": 20}``.

    Example:
        >>> import numpy as np, chainrule, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
        >>> chainrule.save({"W": np.eye(2)}, path, metadata={"sizes": [2, 2]})
        >>> ckpt = chainrule.load(path)
        >>> ckpt["W"].tolist(), ckpt.metadata
        ([[1.0, 0.0], [0.0, 1.0]], {'sizes': [2, 2]})
    """
    state = _state_of(obj)
    arrays: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if not isinstance(name, str) or not name or name == HEADER_KEY:
            raise ValueError(
                f"chainrule.save: state dict keys must be non-empty strings other than "
                f"{HEADER_KEY!r}; got {name!r}."
            )
        arrays[name] = _to_array(name, value)
    from chainrule import __version__

    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "chainrule_version": __version__,
        "tensors": {n: {"dtype": a.dtype.str, "shape": list(a.shape)} for n, a in arrays.items()},
        "metadata": dict(metadata) if metadata is not None else {},
    }
    try:
        text = json.dumps(header, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"chainrule.save: metadata must be JSON-serialisable (dicts with string keys, "
            f"lists, strings, numbers, booleans, None): {exc}. Convert NumPy values with "
            ".tolist() or float()."
        ) from None
    header_bytes = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    def write(f: IO[bytes]) -> None:
        write_npz(f, {HEADER_KEY: header_bytes, **arrays})

    atomic_write(path, write)


def _describe_foreign(head: bytes) -> str:
    if not head:
        return "the file is empty"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"it is {what}"
    return f"it does not start like a chainrule model file (first bytes {head[:8]!r})"


def _read_header(path: Path, npz: Any) -> dict[str, Any]:
    if HEADER_KEY not in npz.files:
        names = ", ".join(sorted(npz.files)[:5]) or "none"
        raise ModelFileError(
            path,
            f"it is a zip/.npz archive without chainrule's header (entries: {names}); it was "
            "not written by chainrule.save. Open plain .npz files with numpy.load.",
        )
    raw = npz[HEADER_KEY]
    header = json.loads(raw.tobytes().decode("utf-8"))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(path, "its header is not a chainrule state-dict header")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            path,
            f"it has format version {version!r}, written by chainrule "
            f"{header.get('chainrule_version')}; this chainrule reads versions up to "
            f"{FORMAT_VERSION}. Upgrade chainrule.",
        )
    if not isinstance(header.get("tensors"), dict) or not isinstance(header.get("metadata"), dict):
        raise ModelFileError(path, "its header lacks the tensor list or the metadata")
    return header


def load(path: PathLike) -> Checkpoint:
    """Load a file written by ``save``: the state dict of NumPy arrays, with ``.metadata``.

    Never runs code from the file (no pickle). Raises ``FileNotFoundError`` for a missing
    file and ``ModelFileError`` (a ``ValueError``) naming the file and the problem for
    one that is foreign, truncated or corrupt.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"chainrule.load: no such file: '{p}'")
    if p.is_dir():
        raise IsADirectoryError(f"chainrule.load: '{p}' is a directory, not a model file")
    with open(p, "rb") as f:
        head = f.read(8)
    if not head.startswith(b"PK"):  # every zip archive starts with a "PK" record
        raise ModelFileError(p, _describe_foreign(head))
    try:
        with np.load(p, allow_pickle=False) as npz:
            header = _read_header(p, npz)
            arrays: dict[str, np.ndarray] = {}
            for name, spec in header["tensors"].items():
                if name not in npz.files:
                    raise ModelFileError(p, f"tensor '{name}' is listed but missing")
                arr = npz[name]  # reading a member checks its CRC-32: flipped bits fail here
                if arr.dtype.str != spec.get("dtype") or list(arr.shape) != spec.get("shape"):
                    raise ModelFileError(
                        p,
                        f"tensor '{name}' is {arr.dtype.str} {list(arr.shape)}, the header "
                        f"says {spec.get('dtype')} {spec.get('shape')}",
                    )
                arrays[name] = arr
    except ModelFileError:
        raise
    except Exception as exc:
        # Damaged bytes surface as many types (BadZipFile, a CRC error, EOFError,
        # NotImplementedError for a garbled compression method, RuntimeError for a garbled
        # encryption flag, JSON and Unicode errors); to the user they mean one thing.
        raise ModelFileError(
            p, f"the file is truncated or corrupt ({type(exc).__name__}: {exc})"
        ) from exc
    return Checkpoint(arrays, header["metadata"], str(header.get("chainrule_version")), p)
