"""Reading the ``.npz`` model files of chainrule 0.1 (format version 1), with bounds.

Those files are uncompressed zip archives of ``.npy`` entries, one per tensor, plus
``__chainrule__.npy`` (UTF-8 JSON). Nothing is allocated before it is checked against the
file: members must be stored uncompressed (chainrule never compressed them), their sizes
in the zip directory must add up to no more than the file, the JSON header is at most
``MAX_HEADER_BYTES``, and every ``.npy`` header's dtype and shape must describe exactly the
bytes of its member. Reading a member to its end checks its CRC-32.

To convert a file: ``ckpt = chainrule.load("model.safetensors")`` then
``chainrule.save(ckpt, "model.safetensors", ckpt.metadata)``.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

HEADER_KEY = "__chainrule__"
MAX_HEADER_BYTES = 16 * 2**20
_NPY_HEADER_LIMIT = 65_536  # a .npy header is one short dict literal


class NpzProblem(ValueError):
    """What is wrong with a legacy archive (``load`` adds the file's name)."""


def _read_npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with zf.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                member, max_header_size=_NPY_HEADER_LIMIT
            )
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                member, max_header_size=_NPY_HEADER_LIMIT
            )
        else:  # pragma: no cover - read_magic accepts only these
            raise NpzProblem(f"entry '{info.filename}' has .npy version {version}")
        name = info.filename.removesuffix(".npy")
        if dtype.hasobject or dtype.kind not in "biufc":
            raise NpzProblem(
                f"entry '{name}' holds {dtype} values (a pickle); chainrule never loads pickles"
            )
        nbytes = math.prod(shape) * dtype.itemsize
        available = info.file_size - member.tell()
        if nbytes != available:
            raise NpzProblem(
                f"entry '{name}' says it is {dtype.str} {list(shape)} ({nbytes:,} bytes), but "
                f"its member holds {available:,} bytes"
            )
        data = member.read(nbytes)
        if len(data) != nbytes or member.read(1):  # reading to the end checks the CRC-32
            raise NpzProblem(f"entry '{name}' is truncated")
    arr = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return arr.copy()  # writeable, owning its memory


def read_npz(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON header and the arrays of a legacy chainrule ``.npz``.

    Raises ``NpzProblem`` saying what is wrong, and ``zipfile.BadZipFile``/``OSError`` for
    a damaged archive.
    """
    size = path.stat().st_size
    with zipfile.ZipFile(path) as zf:
        infos = {i.filename.removesuffix(".npy"): i for i in zf.infolist()}
        if HEADER_KEY not in infos:
            names = ", ".join(sorted(infos)[:5]) or "none"
            raise NpzProblem(
                f"it is a zip/.npz archive without chainrule's header (entries: {names}); it "
                "was not written by chainrule.save. Open plain .npz files with numpy.load."
            )
        for name, info in infos.items():
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                raise NpzProblem(
                    f"entry '{name}' is compressed; chainrule's .npz files were never "
                    "compressed, so this one was changed by another program"
                )
        total = sum(i.file_size for i in infos.values())
        if total > size:
            raise NpzProblem(
                f"its zip directory claims {total:,} bytes of entries in a file of {size:,} "
                "bytes (overlapping or forged entries)"
            )
        if infos[HEADER_KEY].file_size > MAX_HEADER_BYTES:
            raise NpzProblem(
                f"its header entry is {infos[HEADER_KEY].file_size:,} bytes; chainrule's "
                f"headers are at most {MAX_HEADER_BYTES:,}"
            )
        raw = _read_npy(zf, infos[HEADER_KEY])
        header = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(header, dict) or not isinstance(header.get("tensors"), dict):
            raise NpzProblem("its header is not a chainrule state-dict header")
        arrays: dict[str, np.ndarray] = {}
        for name, spec in header["tensors"].items():
            if name not in infos or name == HEADER_KEY:
                raise NpzProblem(f"tensor '{name}' is listed but missing")
            arr = _read_npy(zf, infos[name])
            if not isinstance(spec, dict) or (
                arr.dtype.str != spec.get("dtype") or list(arr.shape) != spec.get("shape")
            ):
                got = spec if not isinstance(spec, dict) else spec.get("dtype")
                shape = None if not isinstance(spec, dict) else spec.get("shape")
                raise NpzProblem(
                    f"tensor '{name}' is {arr.dtype.str} {list(arr.shape)}, the header says "
                    f"{got} {shape}"
                )
            arrays[name] = arr
    return header, arrays
