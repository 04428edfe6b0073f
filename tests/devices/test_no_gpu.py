"""Devices on a machine without CuPy or without a GPU: names work, use says what to install."""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from chainrule.tensor import device as devices

EXTRA = r"pip install 'chainrule\[cuda\]'"


@pytest.fixture
def no_cupy(monkeypatch: pytest.MonkeyPatch) -> None:
    """CuPy absent, whether or not this machine has it."""
    monkeypatch.setattr(devices, "_cupy", lambda: None)


def fake_cupy(count: Any) -> types.SimpleNamespace:
    """A CuPy module whose runtime reports ``count`` GPUs (or raises ``count``)."""

    def get_device_count() -> int:
        if isinstance(count, Exception):
            raise count
        return int(count)

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    return types.SimpleNamespace(__version__="13.9", cuda=types.SimpleNamespace(runtime=runtime))


@pytest.mark.parametrize("text", ["cpu", "cuda", "cuda:0", "cuda:3"])
def test_device_names_print_and_compare_as_pytorchs(text: str) -> None:
    ours, theirs = cr.device(text), torch.device(text)
    assert repr(ours) == repr(theirs) and str(ours) == str(theirs)
    assert (ours.type, ours.index) == (theirs.type, theirs.index)
    assert ours == text and hash(ours) == hash(cr.device(text))


def test_cuda_and_cuda_0_are_different_devices_as_in_pytorch() -> None:
    assert (cr.device("cuda") == cr.device("cuda:0")) == (
        torch.device("cuda") == torch.device("cuda:0")
    )
    assert cr.device("cuda", 1) == "cuda:1" and cr.device("cuda:1") != "cuda:0"
    assert cr.device("cpu") != "cuda" and cr.device("cuda") != "cpu"


@pytest.mark.parametrize(
    ("text", "message"),
    [("gpu", "unknown device type 'gpu'"), ("cuda:x", "invalid device string"),
     ("cuda:-1", "invalid device string"), ("cuda:0:1", "invalid device string")],
)  # fmt: skip
def test_bad_device_strings_are_named_in_the_error(text: str, message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        cr.device(text)


def test_without_cupy_cuda_is_unavailable(no_cupy: None) -> None:
    assert cr.cuda.is_available() is False and cr.cuda.device_count() == 0
    assert cr.accelerator.is_available() is False and cr.accelerator.current_accelerator() is None
    assert "CuPy" in cr.cuda.why_unavailable() and "chainrule[cuda]" in cr.cuda.why_unavailable()
    cr.cuda.manual_seed(0)  # accepted: nothing to seed
    cr.cuda.manual_seed_all(0)


@pytest.mark.parametrize(
    "use",
    [
        lambda: cr.ones(2).to("cuda"),
        lambda: cr.ones(2).cuda(),
        lambda: cr.ones(2).to(0),
        lambda: cr.zeros(2, device="cuda"),
        lambda: cr.randn(2, 2, device="cuda:1"),
        lambda: cr.tensor([1.0], device="cuda"),
        lambda: nn.Linear(2, 2, device="cuda"),
        lambda: nn.Linear(2, 2).to("cuda"),
        lambda: nn.Linear(2, 2).cuda(),
        lambda: cr.set_default_device("cuda"),
        lambda: cr.cuda.synchronize(),
    ],
)
def test_without_cupy_every_use_of_cuda_names_the_extra(no_cupy: None, use: Any) -> None:
    with pytest.raises(RuntimeError, match=r"not available: .*CuPy.*" + EXTRA):
        use()


def test_error_names_the_operation(no_cupy: None) -> None:
    with pytest.raises(RuntimeError, match=r"^randn: device 'cuda:1' is not available"):
        cr.randn(2, device="cuda:1")
    with pytest.raises(RuntimeError, match=r"^Module.to: device 'cuda' is not available"):
        nn.Linear(2, 2).to("cuda")


def test_cupy_without_a_driver_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = fake_cupy(RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"))
    monkeypatch.setattr(devices, "_cupy", lambda: broken)
    assert cr.cuda.is_available() is False
    with pytest.raises(RuntimeError, match=r"CuPy 13.9 is installed but cannot reach a GPU "
                       r"\(cudaErrorNoDevice.*nvidia-smi"):  # fmt: skip
        cr.ones(2).cuda()


def test_cupy_with_no_gpu_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "_cupy", lambda: fake_cupy(0))
    with pytest.raises(RuntimeError, match=r"CuPy 13\.9 is installed but finds no GPU"):
        cr.zeros(1, device="cuda")


def test_a_failed_move_leaves_the_model_where_it_was(no_cupy: None) -> None:
    model = nn.Linear(3, 2)
    before = model.weight.numpy().copy()
    with pytest.raises(RuntimeError):
        model.to("cuda")
    assert model.weight.device == "cpu" and np.array_equal(model.weight.numpy(), before)


def test_the_cpu_is_numpy_and_moves_to_it_are_free() -> None:
    x = cr.randn(3, requires_grad=True)
    assert type(x.numpy()) is np.ndarray and x.device == "cpu" and x.is_cpu and not x.is_cuda
    assert x.to("cpu") is x and x.cpu() is x and x.to(cr.device("cpu")) is x
    model = nn.Linear(2, 2)
    weight = model.weight
    assert model.to("cpu") is model and model.cpu().weight is weight
    assert cr.get_default_device() == "cpu"


def test_backends_cuda_is_built_says_whether_cupy_is_installed() -> None:
    import importlib.util

    assert cr.backends.cuda.is_built() is (importlib.util.find_spec("cupy") is not None)
    assert cr.backends.mps.is_available() is False


def test_the_cpu_type_cannot_be_replaced() -> None:
    with pytest.raises(ValueError, match="'cpu' is NumPy"):
        devices.register_device_type(devices.DeviceType(
            "cpu", lambda: 1, lambda: "", lambda a: None, lambda a, i: a, np.asarray,
            lambda: np,
        ))  # fmt: skip


def test_manual_seed_seeds_every_device_types_generators(monkeypatch: pytest.MonkeyPatch) -> None:
    seeded: list[int] = []
    kind = devices.DeviceType(
        "cuda", lambda: 1, lambda: "", lambda a: None, lambda a, i: a, np.asarray,
        lambda: np, manual_seed=seeded.append,
    )  # fmt: skip
    previous = devices.register_device_type(kind)
    try:
        cr.manual_seed(11)
        cr.cuda.manual_seed_all(12)
    finally:
        devices.unregister_device_type("cuda", previous)
    assert seeded == [11, 12]
