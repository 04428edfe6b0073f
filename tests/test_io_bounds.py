"""Model files: what a hostile file can make ``load`` allocate, legacy ``.npz`` files, and
atomic saves that survive ``kill -9`` without leaving temporaries behind."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest

import chainrule
import chainrule.io as crio
from chainrule.io import ModelFileError
from chainrule.io.atomic import remove_stale_temporaries, temporary_pattern
from chainrule.io.npz import HEADER_KEY as NPZ_HEADER

MiB = 2**20


def _peak_bytes(run: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        run()
    except ModelFileError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


# -- legacy .npz files (chainrule 0.1) --------------------------------------------------


def write_legacy(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """A model file as chainrule 0.1 wrote it: an uncompressed .npz with a JSON header."""
    header = {"format": crio.FORMAT, "format_version": 1, "chainrule_version": "0.1.0",
              "tensors": {n: {"dtype": a.dtype.str, "shape": list(a.shape)}
                          for n, a in arrays.items()},
              "metadata": meta}  # fmt: skip
    raw = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in {NPZ_HEADER: raw, **arrays}.items():
            with zf.open(name + ".npy", "w") as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def test_a_legacy_npz_file_still_loads_and_converts(tmp_path: Path) -> None:
    old = tmp_path / "model.safetensors"
    arrays = {"W": np.arange(6.0).reshape(2, 3), "b": np.ones(2, dtype=np.float32)}
    write_legacy(old, arrays, {"epochs": 3})
    ckpt = chainrule.load(old)
    assert list(ckpt) == ["W", "b"] and ckpt.metadata == {"epochs": 3}
    for name, value in arrays.items():
        np.testing.assert_array_equal(ckpt[name], value)
        assert ckpt[name].dtype == value.dtype
    chainrule.save(ckpt, tmp_path / "model.safetensors", ckpt.metadata)  # the conversion
    new = chainrule.load(tmp_path / "model.safetensors")
    assert new.metadata == {"epochs": 3} and new["W"].tolist() == arrays["W"].tolist()


def test_a_legacy_npy_header_claiming_a_huge_array_allocates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bomb.npz"
    write_legacy(path, {"W": np.zeros(4)}, {})
    # Rewrite W's .npy header to claim 10**9 float64s (8 GB) over the same 32 bytes.
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    header = np.lib.format.header_data_from_array_1_0(np.zeros(4))
    header["shape"] = (10**9,)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    members["W.npy"] = buf.getvalue() + np.zeros(4).tobytes()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    peak = _peak_bytes(lambda: chainrule.load(path))
    _expect = r"entry 'W' says it is <f8 \[1000000000\] \(8,000,000,000 bytes\).*holds 32 bytes"
    with pytest.raises(ModelFileError, match=_expect):
        chainrule.load(path)
    assert peak < 4 * MiB


def test_a_compressed_legacy_member_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    path = tmp_path / "zipbomb.npz"
    write_legacy(path, {"W": np.zeros(4)}, {})
    with zipfile.ZipFile(path) as zf:
        header = zf.read(NPZ_HEADER + ".npy")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(NPZ_HEADER + ".npy", header)
        buf = b"\x93NUMPY" + b"\0" * (64 * MiB)  # 64 MiB of zeros deflate to ~64 kB
        zf.writestr("W.npy", buf)
    assert path.stat().st_size < MiB
    peak = _peak_bytes(lambda: chainrule.load(path))
    with pytest.raises(ModelFileError, match=r"entry '.*' is compressed"):
        chainrule.load(path)
    assert peak < 4 * MiB


def test_legacy_members_that_overlap_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "overlap.npz"
    write_legacy(path, {"W": np.zeros(1000)}, {})
    data = bytearray(path.read_bytes())
    # The central directory's last record (W.npy) claims W is as large as the whole file:
    # the entries' sizes then add up to more than the file (how overlapping entries read
    # the same bytes many times over).
    record = data.rfind(b"PK\x01\x02")
    size = len(data).to_bytes(4, "little")
    data[record + 20 : record + 24] = size  # compressed size
    data[record + 24 : record + 28] = size  # uncompressed size
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"claims .* bytes of entries in a file of"):
        chainrule.load(path)


def test_a_pickle_inside_a_legacy_npz_is_refused_without_running_it(tmp_path: Path) -> None:
    target = tmp_path / "code-ran"

    class Trap:
        def __reduce__(self) -> Any:
            return (Path.touch, (target,))

    path = tmp_path / "evil.npz"
    write_legacy(path, {"W": np.zeros(2)}, {})
    with zipfile.ZipFile(path) as zf:
        header = zf.read(NPZ_HEADER + ".npy")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(NPZ_HEADER + ".npy", header)
        with zf.open("W.npy", "w") as member:
            np.lib.format.write_array(member, np.array([Trap()], dtype=object), allow_pickle=True)
    with pytest.raises(ModelFileError, match="chainrule never loads pickles"):
        chainrule.load(path)
    assert not target.exists()


# -- safetensors files ---------------------------------------------------------------------


def test_a_huge_safetensors_header_length_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "big-header.safetensors"
    path.write_bytes((3 * 2**30).to_bytes(8, "little") + b'{"a": ' + b" " * 1000)
    peak = _peak_bytes(lambda: chainrule.load(path))
    with pytest.raises(ModelFileError, match=r"3,221,225,472 bytes.*at most 16,777,216"):
        chainrule.load(path)
    assert peak < MiB


def test_a_tensor_claiming_more_bytes_than_the_file_allocates_nothing(tmp_path: Path) -> None:
    header = {"W": {"dtype": "F64", "shape": [10**9], "data_offsets": [0, 8 * 10**9]}}
    raw = json.dumps(header).encode()
    path = tmp_path / "claims-8GB.safetensors"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + b"\0" * 64)
    peak = _peak_bytes(lambda: chainrule.load(path))
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        chainrule.load(path)
    assert peak < MiB


# -- atomic saves ---------------------------------------------------------------------------


def _good_file(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "model.safetensors"
    chainrule.save({"W": np.arange(4.0)}, path, metadata={"v": 1})
    return path, path.read_bytes()


def test_failure_mid_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path, before = _good_file(tmp_path)

    def disk_full(f: IO[bytes]) -> None:
        f.write(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        crio.atomic_write(path, disk_full)
    assert path.read_bytes() == before and os.listdir(tmp_path) == [path.name]

    def interrupted(f: IO[bytes]) -> None:
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        crio.atomic_write(tmp_path / "new.safetensors", interrupted)
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failure_after_writing_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path, before = _good_file(tmp_path)

    def fail(*args: Any) -> None:
        raise OSError(errno.EIO, f"{failing} failed")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match=f"{failing} failed"):
        chainrule.save({"W": np.zeros(10)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == [path.name]


# A save that stops in the middle of writing, until it is killed.
_KILLED_WRITER = """
import sys, time
from chainrule.io import atomic_write
def write(f):
    f.write(b"x" * 100_000)
    f.flush()
    print("writing", flush=True)
    time.sleep(60)
atomic_write(sys.argv[1], write)
"""


def _start_writer(path: Path) -> subprocess.Popen[str]:
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "writing"
    return writer


def _temporaries(path: Path) -> list[str]:
    return [n for n in os.listdir(path.parent) if temporary_pattern(path).fullmatch(n)]


def test_kill_9_mid_save_keeps_the_old_file_and_the_next_save_removes_the_temporary(
    tmp_path: Path,
) -> None:
    path, before = _good_file(tmp_path)
    for _ in range(3):  # three killed saves: their temporaries must not pile up
        writer = _start_writer(path)
        assert len(_temporaries(path)) == 1
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        assert path.read_bytes() == before  # the old file is intact
        assert chainrule.load(path).metadata == {"v": 1}
        assert len(_temporaries(path)) == 1  # what kill -9 leaves behind ...
        chainrule.save({"W": np.arange(4.0)}, path, metadata={"v": 1})
        assert _temporaries(path) == []  # ... the next save removes
        before = path.read_bytes()  # (safetensors may order its header differently)
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_a_live_writers_temporary_is_never_removed(tmp_path: Path) -> None:
    path, _ = _good_file(tmp_path)
    writer = _start_writer(path)  # a concurrent save, still writing
    try:
        (live,) = _temporaries(path)
        chainrule.save({"W": np.zeros(2)}, path)  # another save to the same path
        assert remove_stale_temporaries(path) == []
        assert _temporaries(path) == [live]
        assert (tmp_path / live).stat().st_size == 100_000
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert remove_stale_temporaries(path) == [tmp_path / live]  # now it is a dead writer's


def test_clean_up_touches_only_its_own_names_and_never_follows_links(tmp_path: Path) -> None:
    path, _ = _good_file(tmp_path)
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    others = [
        ".model.safetensors.tmp",
        ".model.safetensors.ABCDEF012345.tmp",
        ".other.safetensors.0123456789ab.tmp",
        "model.safetensors.0123456789ab.tmp",
    ]
    for name in others:
        (tmp_path / name).write_text("not ours")
    link = tmp_path / ".model.safetensors.0123456789ab.tmp"
    link.symlink_to(precious)
    chainrule.save({"W": np.zeros(2)}, path)
    assert precious.read_text() == "keep me"
    assert all((tmp_path / name).exists() for name in others) and link.is_symlink()
