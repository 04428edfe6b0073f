"""A per-user cache for generated arrays, so that slow generators run once per machine.

Entries are safetensors files named by a hash of the generator's arguments, written
atomically (``chainrule.io.atomic_write``); safetensors checks every byte range against the
file before allocating, and runs no code. A missing, stale or damaged entry is simply
regenerated; a cache directory that cannot be written is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from chainrule.io import atomic_write

CACHE_ENV = "CHAINRULE_CACHE_DIR"


def cache_dir() -> Path:
    """Where chainrule keeps generated data.

    ``$CHAINRULE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/chainrule``, else
    ``~/.cache/chainrule`` (``%LOCALAPPDATA%\\chainrule\\cache`` on Windows).
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "chainrule"
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):  # pragma: no cover - Windows
        return Path(os.environ["LOCALAPPDATA"]) / "chainrule" / "cache"
    return Path.home() / ".cache" / "chainrule"


def cache_path(kind: str, params: Mapping[str, Any]) -> Path:
    """The cache file for ``kind`` generated with ``params`` (JSON-serialisable)."""
    text = json.dumps(dict(params), sort_keys=True)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return cache_dir() / f"{kind}-{digest}.safetensors"


def _read(path: Path, keys: Collection[str]) -> dict[str, np.ndarray] | None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            crc = (f.metadata() or {}).get("crc32")
            found = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    except (OSError, ValueError, SafetensorError):
        return None  # missing or damaged: regenerate
    if not set(keys) <= set(found) or crc != _checksum(found):
        return None  # stale, or a flipped bit (safetensors has no checksum of its own)
    return {k: found[k] for k in keys}


def _checksum(arrays: Mapping[str, np.ndarray]) -> str:
    crc = 0
    for name in sorted(arrays):
        crc = zlib.crc32(np.ascontiguousarray(arrays[name]).data, crc)
    return str(crc & 0xFFFFFFFF)


def cached_arrays(
    kind: str,
    params: Mapping[str, Any],
    keys: Collection[str],
    make: Callable[[], Mapping[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """The arrays ``make()`` returns, read from the cache when an entry for ``params`` exists.

    Args:
        kind: a short name for the file (``"mnist1d"``).
        params: everything the result depends on (generator arguments, library version).
        keys: the arrays an entry must hold to count as valid.
        make: the (slow) generator, called only on a cache miss.
    """
    path = cache_path(kind, params)
    found = _read(path, keys)
    if found is not None:
        return found
    from safetensors.numpy import save

    arrays = {k: np.require(np.asarray(v), requirements="C") for k, v in make().items()}
    blob = save(arrays, metadata={"crc32": _checksum(arrays)})

    def write(f: IO[bytes]) -> None:
        f.write(blob)

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, write)
    except OSError:
        pass  # a read-only home or a full disk: the data is still good, just not cached
    return arrays
