"""chainrule.save / chainrule.load: round trips, atomic writes, and every kind of bad file."""

from __future__ import annotations

import errno
import json
import os
import pickle
import stat
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest

import chainrule
import chainrule.io as crio
from chainrule import Tensor
from chainrule.io import Checkpoint, ModelFileError


def _state() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "layers.0.weight": rng.normal(size=(4, 3)),  # float64
        "layers.0.bias": rng.normal(size=4).astype(np.float32),
        "steps": np.array(7, dtype=np.int64),  # 0-d
        "mask": rng.random((2, 2)) > 0.5,  # bool
        "empty": np.zeros((0, 3), dtype=np.float32),
        "transposed": np.arange(6.0).reshape(2, 3).T,  # not C-contiguous
        "file": np.ones(1),  # names that np.savez keyword arguments would swallow
        "allow_pickle": np.zeros(2),
        "poids/ω": np.full((1, 1), 2.5),  # a slash and a non-ASCII name
    }


def _same(loaded: Any, state: dict[str, Any]) -> None:
    assert list(loaded) == list(state)  # order kept
    for name, value in state.items():
        expected = np.asarray(value)
        assert loaded[name].dtype == expected.dtype, name
        assert loaded[name].shape == expected.shape, name
        np.testing.assert_array_equal(loaded[name], expected)


def test_round_trip_keeps_values_dtypes_shapes_and_order(tmp_path: Path) -> None:
    state = _state()
    path = tmp_path / "model.npz"
    chainrule.save(state, path)
    loaded = chainrule.load(path)
    _same(loaded, state)
    assert isinstance(loaded, Checkpoint) and isinstance(loaded, dict)
    assert loaded.metadata == {}
    assert loaded.path == path


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_of_tensors_is_bit_exact(tmp_path: Path, dtype: Any) -> None:
    rng = np.random.default_rng(1)
    W = Tensor(rng.normal(size=(5, 2)).astype(dtype), requires_grad=True)
    b = Tensor(rng.normal(size=5).astype(dtype))
    chainrule.save({"W": W, "b": b}, tmp_path / "m.npz")
    loaded = chainrule.load(tmp_path / "m.npz")
    assert loaded["W"].dtype == dtype and loaded["b"].dtype == dtype
    assert loaded["W"].tobytes() == W.numpy().tobytes()
    assert loaded["b"].tobytes() == b.numpy().tobytes()


def test_metadata_round_trip_and_version(tmp_path: Path) -> None:
    meta = {
        "architecture": {"kind": "MLP", "sizes": [64, 32, 10], "activation": "relu"},
        "dtype": "float32",
        "epochs": 20,
        "lr": 0.05,
        "note": "entraînement ✓",
        "best": None,
    }
    chainrule.save({"w": np.zeros(3)}, tmp_path / "m.npz", metadata=meta)
    loaded = chainrule.load(tmp_path / "m.npz")
    assert loaded.metadata == meta
    assert loaded.chainrule_version == chainrule.__version__
    assert loaded.state_dict == {"w": loaded["w"]}


def test_tuples_in_metadata_come_back_as_lists(tmp_path: Path) -> None:
    chainrule.save({"w": np.zeros(1)}, tmp_path / "m.npz", metadata={"sizes": (2, 3)})
    assert chainrule.load(tmp_path / "m.npz").metadata == {"sizes": [2, 3]}


def test_an_object_with_state_dict_is_saved_through_it(tmp_path: Path) -> None:
    class Model:
        def state_dict(self) -> dict[str, np.ndarray]:
            return {"W": np.eye(2)}

    chainrule.save(Model(), tmp_path / "m.npz")
    np.testing.assert_array_equal(chainrule.load(tmp_path / "m.npz")["W"], np.eye(2))


def test_plain_numpy_reads_the_file_without_pickle(tmp_path: Path) -> None:
    chainrule.save({"W": np.eye(3)}, tmp_path / "m.npz", metadata={"a": 1})
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["W", crio.HEADER_KEY]
        np.testing.assert_array_equal(npz["W"], np.eye(3))


def test_save_overwrites_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    chainrule.save({"a": np.zeros(2)}, path)
    chainrule.save({"b": np.ones(3)}, path)
    assert list(chainrule.load(path)) == ["b"]
    assert os.listdir(tmp_path) == ["m.npz"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saved_file_gets_ordinary_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        chainrule.save({"a": np.zeros(1)}, tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode) == 0o644


# -- atomic writes ----------------------------------------------------------------------


def _good_file(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "model.npz"
    chainrule.save({"W": np.arange(4.0)}, path, metadata={"v": 1})
    return path, path.read_bytes()


def test_failure_mid_write_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, before = _good_file(tmp_path)

    def disk_full(f: IO[bytes], arrays: Any) -> None:
        f.write(b"PK\x03\x04 half an archive")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(crio, "write_npz", disk_full)
    with pytest.raises(OSError, match="No space left"):
        chainrule.save({"W": np.zeros(1000)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(chainrule.load(path)["W"], np.arange(4.0))


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
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]


def test_interrupt_during_first_save_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(f: IO[bytes], arrays: Any) -> None:
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(crio, "write_npz", interrupted)
    with pytest.raises(KeyboardInterrupt):
        chainrule.save({"W": np.zeros(3)}, tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


# -- bad input to save ----------------------------------------------------------------------


def test_save_rejects_what_it_cannot_store(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    with pytest.raises(TypeError, match="JSON-serialisable"):
        chainrule.save({"w": np.zeros(1)}, path, metadata={"rng": np.random.default_rng()})
    with pytest.raises(TypeError, match=r"state\['names'\] has dtype object"):
        chainrule.save({"names": np.array(["a", None], dtype=object)}, path)
    with pytest.raises(ValueError, match="non-empty strings"):
        chainrule.save({"": np.zeros(1)}, path)
    with pytest.raises(ValueError, match="non-empty strings"):
        chainrule.save({crio.HEADER_KEY: np.zeros(1)}, path)
    with pytest.raises(TypeError, match="expected a state dict"):
        chainrule.save([np.zeros(1)], path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        chainrule.save({"w": np.zeros(1)}, tmp_path / "no" / "such" / "m.npz")
    assert not path.exists()


# -- bad files for load -----------------------------------------------------------------


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothere\.npz"):
        chainrule.load(tmp_path / "nothere.npz")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        chainrule.load(tmp_path)


def _expect_bad(path: Path, match: str) -> ModelFileError:
    with pytest.raises(ModelFileError, match=match) as info:
        chainrule.load(path)
    assert str(path) in str(info.value)
    return info.value


def test_foreign_files_are_named(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import image

    png = tmp_path / "picture.npz"
    image.imsave(png, np.zeros((4, 4)), format="png")
    _expect_bad(png, "PNG image")

    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    _expect_bad(empty, "empty")

    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    _expect_bad(npy, r"single NumPy \.npy array")

    npz = tmp_path / "plain.npz"
    np.savez(npz, weights=np.zeros(3))
    _expect_bad(npz, "not written by chainrule.save")

    text = tmp_path / "notes.npz"
    text.write_text("hello, not a model")
    _expect_bad(text, "does not start like a chainrule model file")


def test_a_torch_checkpoint_is_foreign_and_not_unpickled(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, path)  # a zip archive holding a pickle
    _expect_bad(path, "not written by chainrule.save")


class _Trap:
    """Unpickling this would create the file ``target``."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self) -> Any:
        return (Path.touch, (Path(self.target),))


@pytest.mark.parametrize(
    ("protocol", "message"),
    [(0, "does not start like a chainrule model file"), (pickle.HIGHEST_PROTOCOL, "pickle")],
)
def test_a_pickle_is_refused_without_running_it(
    tmp_path: Path, protocol: int, message: str
) -> None:
    target = tmp_path / "code-ran"
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"W": _Trap(str(target))}, protocol=protocol))
    _expect_bad(path, message)
    assert not target.exists()


def test_a_pickle_inside_an_npz_is_refused_without_running_it(tmp_path: Path) -> None:
    target = tmp_path / "code-ran"
    path = tmp_path / "evil.npz"
    chainrule.save({"W": np.zeros(2)}, path)
    with np.load(path, allow_pickle=False) as npz:
        header = npz[crio.HEADER_KEY]
    # Forge an archive whose tensor entry is an object array (a pickle inside the .npy).
    evil = np.array([_Trap(str(target))], dtype=object)
    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in [(crio.HEADER_KEY, header), ("W", evil)]:
            with zf.open(name + ".npy", "w") as member:
                np.lib.format.write_array(member, arr, allow_pickle=True)
    with pytest.raises(ModelFileError):
        chainrule.load(path)
    assert not target.exists()


def test_every_truncation_is_reported(tmp_path: Path) -> None:
    _, data = _good_file(tmp_path)
    cut = tmp_path / "cut.npz"
    for n in range(1, len(data)):
        cut.write_bytes(data[:n])
        with pytest.raises(ModelFileError):
            chainrule.load(cut)


def test_every_single_byte_corruption_is_reported_or_harmless(tmp_path: Path) -> None:
    """A flipped bit either raises ModelFileError or hit a field that does not matter
    (a timestamp in a zip header): the arrays and metadata then come back unchanged."""
    _, data = _good_file(tmp_path)
    bad = tmp_path / "bad.npz"
    reported = 0
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            flipped = bytearray(data)
            flipped[i] ^= bit
            bad.write_bytes(bytes(flipped))
            try:
                loaded = chainrule.load(bad)
            except ModelFileError as exc:
                assert str(bad) in str(exc)
                reported += 1
                continue
            assert list(loaded) == ["W"] and loaded.metadata == {"v": 1}
            assert loaded["W"].tobytes() == np.arange(4.0).tobytes()
    assert reported > len(data)  # most flips land in checked bytes (CRC-32, structure)


def test_a_header_that_disagrees_with_the_arrays_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    header = {
        "format": crio.FORMAT,
        "format_version": 1,
        "chainrule_version": "0",
        "tensors": {"W": {"dtype": "<f8", "shape": [3]}},
        "metadata": {},
    }
    raw = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with path.open("wb") as f:
        crio.write_npz(f, {crio.HEADER_KEY: raw, "W": np.zeros(4)})
    _expect_bad(path, r"tensor 'W' is <f8 \[4\], the header says <f8 \[3\]")
    header["format_version"] = 99
    raw = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with path.open("wb") as f:
        crio.write_npz(f, {crio.HEADER_KEY: raw, "W": np.zeros(3)})
    _expect_bad(path, "format version 99.*Upgrade chainrule")
