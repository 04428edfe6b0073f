"""``chainrule.save`` / ``chainrule.load``: safetensors model files, other readers and writers."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule
import chainrule.io as crio
from chainrule import Tensor, nn
from chainrule.io import Checkpoint, ModelFileError


def _state() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "layers.0.weight": rng.normal(size=(3, 2)),
        "layers.0.bias": rng.normal(size=3).astype(np.float32),
        "count": np.array(7, dtype=np.int64),
        "mask": np.array([True, False]),
        "half": np.arange(4, dtype=np.float16),
        "z": np.array([1 + 2j], dtype=np.complex64),
        "empty": np.zeros((0, 3)),
        "a_tensor": Tensor(np.eye(2)),
    }


def _same(loaded: dict[str, np.ndarray], state: dict[str, Any]) -> None:
    assert list(loaded) == list(state)
    for name, value in state.items():
        expected = np.asarray(value)
        assert loaded[name].dtype == expected.dtype, name
        assert loaded[name].shape == expected.shape, name
        np.testing.assert_array_equal(loaded[name], expected)


def test_round_trip_keeps_values_dtypes_shapes_and_order(tmp_path: Path) -> None:
    state = _state()
    path = tmp_path / "model.safetensors"
    chainrule.save(state, path)
    loaded = chainrule.load(path)
    _same(loaded, state)
    assert isinstance(loaded, Checkpoint) and isinstance(loaded, dict)
    assert loaded.metadata == {} and loaded.path == path
    loaded["layers.0.weight"][0, 0] = 1.0  # the arrays are the caller's to change


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_of_tensors_is_bit_exact(tmp_path: Path, dtype: Any) -> None:
    rng = np.random.default_rng(1)
    W = Tensor(rng.normal(size=(5, 2)).astype(dtype), requires_grad=True)
    chainrule.save({"W": W}, tmp_path / "m.safetensors")
    loaded = chainrule.load(tmp_path / "m.safetensors")
    assert loaded["W"].dtype == dtype and loaded["W"].tobytes() == W.numpy().tobytes()


def test_big_endian_arrays_come_back_with_their_values(tmp_path: Path) -> None:
    chainrule.save({"W": np.arange(3, dtype=">f8")}, tmp_path / "m.safetensors")
    np.testing.assert_array_equal(chainrule.load(tmp_path / "m.safetensors")["W"], [0, 1, 2])


def test_metadata_round_trip_and_version(tmp_path: Path) -> None:
    meta = {"architecture": {"sizes": [64, 32, 10]}, "lr": 0.05, "note": "entraînement ✓",
            "best": None, "sizes": (2, 3)}  # fmt: skip
    chainrule.save({"w": np.zeros(3)}, tmp_path / "m.safetensors", metadata=meta)
    loaded = chainrule.load(tmp_path / "m.safetensors")
    assert loaded.metadata == {**meta, "sizes": [2, 3]}  # tuples come back as lists
    assert loaded.chainrule_version == chainrule.__version__
    assert loaded.state_dict == {"w": loaded["w"]}


def test_a_module_is_saved_through_its_state_dict(tmp_path: Path) -> None:
    model = nn.MLP(2, [3], 2, rng=0)
    chainrule.save(model, tmp_path / "m.safetensors")
    other = nn.MLP(2, [3], 2, rng=1)
    other.load_state_dict(chainrule.load(tmp_path / "m.safetensors"))
    x = Tensor(np.ones((1, 2), dtype=np.float32))
    np.testing.assert_array_equal(other(x).numpy(), model(x).numpy())


# -- other safetensors readers and writers ---------------------------------------------


def test_safetensors_readers_open_a_chainrule_file(tmp_path: Path) -> None:
    import safetensors.numpy
    import safetensors.torch

    state = {"w": np.arange(6.0).reshape(2, 3), "b": np.ones(2, dtype=np.float32)}
    chainrule.save(state, tmp_path / "m.safetensors", metadata={"epochs": 3})
    by_numpy = safetensors.numpy.load_file(tmp_path / "m.safetensors")
    by_torch = safetensors.torch.load_file(tmp_path / "m.safetensors")
    for name, value in state.items():
        np.testing.assert_array_equal(by_numpy[name], value)
        np.testing.assert_array_equal(by_torch[name].numpy(), value)
    with safetensors.safe_open(tmp_path / "m.safetensors", framework="numpy") as f:
        header = json.loads(f.metadata()[crio.HEADER_KEY])
    assert header["metadata"] == {"epochs": 3}


def test_weights_saved_by_pytorch_load_into_a_chainrule_mlp(tmp_path: Path) -> None:
    import safetensors.torch
    import torch

    torch.manual_seed(0)

    class TorchMLP(torch.nn.Module):  # the same attribute names as chainrule's nn.MLP
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.Sequential(
                torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layers(x)  # type: ignore[no-any-return]

    reference = TorchMLP().double()
    safetensors.torch.save_file(reference.state_dict(), tmp_path / "torch.safetensors")
    ckpt = chainrule.load(tmp_path / "torch.safetensors")
    assert ckpt.metadata == {} and ckpt.chainrule_version is None
    model = nn.MLP(4, [5], 3, dtype=np.float64, rng=1)
    model.load_state_dict(ckpt)  # PyTorch's Linear weight is (out, in), as chainrule's
    x = np.random.default_rng(2).normal(size=(6, 4))
    expected = reference(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model(Tensor(x)).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_a_bfloat16_tensor_is_named_with_the_fix(tmp_path: Path) -> None:
    import safetensors.torch
    import torch

    safetensors.torch.save_file({"w": torch.zeros(2, dtype=torch.bfloat16)}, tmp_path / "b.st")
    _expect_bad(tmp_path / "b.st", r"tensor 'w' has dtype BF16.*v\.float\(\)")


# -- saving ---------------------------------------------------------------------------


def test_save_overwrites_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    chainrule.save({"a": np.zeros(2)}, path)
    chainrule.save({"b": np.ones(3)}, path)
    assert list(chainrule.load(path)) == ["b"]
    assert os.listdir(tmp_path) == ["m.safetensors"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saved_file_gets_ordinary_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        chainrule.save({"a": np.zeros(1)}, tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.safetensors").st_mode) == 0o644


def test_save_rejects_what_it_cannot_store(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    with pytest.raises(TypeError, match="JSON-serialisable"):
        chainrule.save({"w": np.zeros(1)}, path, metadata={"rng": np.random.default_rng()})
    with pytest.raises(TypeError, match="finite numbers"):
        chainrule.save({"w": np.zeros(1)}, path, metadata={"loss": float("nan")})
    with pytest.raises(TypeError, match=r"state\['names'\] has dtype object"):
        chainrule.save({"names": np.array(["a", None], dtype=object)}, path)
    with pytest.raises(TypeError, match=r"state\['z'\] has dtype complex128.*complex64"):
        chainrule.save({"z": np.zeros(1, dtype=np.complex128)}, path)
    for bad_name in ("", "__metadata__"):
        with pytest.raises(ValueError, match="non-empty strings"):
            chainrule.save({bad_name: np.zeros(1)}, path)
    with pytest.raises(TypeError, match="expected a state dict"):
        chainrule.save([np.zeros(1)], path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        chainrule.save({"w": np.zeros(1)}, tmp_path / "no" / "such" / "m.safetensors")
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        chainrule.save({"w": np.zeros(1)}, tmp_path)
    assert os.listdir(tmp_path) == []


# -- loading bad files ------------------------------------------------------------------


def _expect_bad(path: Path, match: str) -> ModelFileError:
    with pytest.raises(ModelFileError, match=match) as info:
        chainrule.load(path)
    assert str(path) in str(info.value)
    return info.value


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothere\.safetensors"):
        chainrule.load(tmp_path / "nothere.safetensors")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        chainrule.load(tmp_path)


def test_foreign_files_are_named(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import image

    png = tmp_path / "picture.safetensors"
    image.imsave(png, np.zeros((4, 4)), format="png")
    _expect_bad(png, "PNG image")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    _expect_bad(empty, "empty")
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    _expect_bad(npy, r"single NumPy \.npy array")
    npz = tmp_path / "plain.npz"
    np.savez(npz, weights=np.zeros(3))
    _expect_bad(npz, "not written by chainrule.save")
    text = tmp_path / "notes.txt"
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


@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
def test_a_pickle_is_refused_without_running_it(tmp_path: Path, protocol: int) -> None:
    target = tmp_path / "code-ran"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"W": _Trap(str(target))}, protocol=protocol))
    with pytest.raises(ModelFileError):
        chainrule.load(path)
    assert not target.exists()


def _good_file(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "model.safetensors"
    chainrule.save({"W": np.arange(4.0)}, path, metadata={"v": 1})
    return path, path.read_bytes()


def test_every_truncation_is_reported(tmp_path: Path) -> None:
    _, data = _good_file(tmp_path)
    cut = tmp_path / "cut.safetensors"
    for n in range(1, len(data)):
        cut.write_bytes(data[:n])
        with pytest.raises(ModelFileError):
            chainrule.load(cut)


def test_every_single_bit_flip_is_reported_or_harmless(tmp_path: Path) -> None:
    """safetensors has no checksum; chainrule's header holds CRC-32s of itself and of every
    tensor, so a flipped bit either raises or hit a byte that does not matter (JSON
    whitespace turned into other whitespace): the arrays and metadata come back unchanged."""
    _, data = _good_file(tmp_path)
    bad = tmp_path / "bad.safetensors"
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
    assert reported >= 2 * len(data) - 8  # the header length's high bytes: header too long


def _forge(tmp_path: Path, header: dict[str, Any], meta: dict[str, Any] | None) -> Path:
    """A chainrule file whose chainrule header is ``meta`` (checksummed as save does)."""
    path = tmp_path / "forged.safetensors"
    chainrule.save({"W": np.zeros(3)}, path)
    text = json.dumps(meta)
    header = {
        **header,
        "__metadata__": {crio.HEADER_KEY: text, crio.CRC_KEY: str(crio._crc(text.encode()))},
    }
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + np.zeros(3).tobytes())
    return path


@pytest.mark.parametrize("version", [True, -5, 0, 1, 99, "2", 2.0, None])
def test_a_format_version_that_is_not_a_known_integer_is_refused(
    tmp_path: Path, version: Any
) -> None:
    tensors = {"W": {"dtype": "F64", "shape": [3], "data_offsets": [0, 24]}}
    crc = crio._crc(np.zeros(3).data)
    meta = {
        "format": crio.FORMAT,
        "format_version": version,
        "chainrule_version": "9",
        "tensors": {"W": {"dtype": "<f8", "shape": [3], "crc32": crc}},
        "metadata": {},
    }
    hint = "Upgrade chainrule" if version == 99 else "edited or damaged"
    _expect_bad(_forge(tmp_path, tensors, meta), f"format version {version!r}.*{hint}")
    meta["format_version"] = 2
    assert list(chainrule.load(_forge(tmp_path, tensors, meta))) == ["W"]  # the control


def test_a_header_that_disagrees_with_the_tensors_is_reported(tmp_path: Path) -> None:
    tensors = {"W": {"dtype": "F64", "shape": [3], "data_offsets": [0, 24]}}
    meta = {
        "format": crio.FORMAT,
        "format_version": 2,
        "chainrule_version": "9",
        "tensors": {"W": {"dtype": "<f8", "shape": [4], "crc32": 0}},
        "metadata": {},
    }
    _expect_bad(_forge(tmp_path, tensors, meta), r"tensor 'W' is <f8 \[3\].*says <f8 \[4\]")
    meta["tensors"] = {"V": meta["tensors"]["W"]}  # type: ignore[index]
    _expect_bad(_forge(tmp_path, tensors, meta), r"lists tensors \['V'\], the file holds \['W'\]")
