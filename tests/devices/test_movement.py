"""Moving tensors and models to a GPU and back, on the stand-in GPU (array-api-strict).

These tests only move, save and load: nothing here computes on the stand-in's arrays, so
they hold whether or not the engine computes with the arrays' own library yet. The
stand-in's arrays refuse to be read as NumPy arrays, as CuPy's do, so any place that
silently treats a device array as a host array fails here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.tensor import device as devices
from tests.devices.stand_in import ENGINE_ON_ARRAY_API, NEEDS_BACKEND, on_gpu


def test_the_stand_in_is_two_gpus(stand_in: Any) -> None:
    assert cr.cuda.is_available() and cr.cuda.device_count() == 2
    assert cr.accelerator.current_accelerator() == cr.device("cuda")
    assert cr.cuda.current_device() == 0


def test_to_cuda_copies_the_values_to_the_device(gpu: Any) -> None:
    x = cr.tensor([[1.0, -2.0], [3.5, 4.0]])
    y = x.to("cuda")
    assert y.device == cr.device("cuda", 0) and y.is_cuda and not y.is_cpu
    assert on_gpu(y, 0) and y.dtype == gpu.float32
    assert y.tolist() == x.tolist() and y.cpu().device == "cpu"
    back = y.cpu()
    assert type(back.numpy()) is np.ndarray and np.array_equal(back.numpy(), x.numpy())
    assert back.numpy() is not x.numpy()  # a copy, not the original memory


@pytest.mark.parametrize(
    "move",
    [
        lambda t: t.to("cuda:1"),
        lambda t: t.to(cr.device("cuda", 1)),
        lambda t: t.to(device="cuda:1"),
        lambda t: t.to(1),
        lambda t: t.cuda(1),
        lambda t: t.cuda("cuda:1"),
    ],
)
def test_every_spelling_of_the_second_gpu_reaches_it(two_gpus: Any, move: Any) -> None:
    y = move(cr.arange(4.0))
    assert y.device == "cuda:1" and on_gpu(y, 1) and y.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_a_tensor_already_there_is_returned_itself(two_gpus: Any) -> None:
    y = cr.ones(3).cuda()
    assert y.to("cuda:0") is y and y.cuda() is y and y.to("cuda") is y
    z = y.to("cuda:1")  # GPU to GPU: a copy on the other device
    assert z is not y and on_gpu(z, 1) and z.tolist() == [1.0, 1.0, 1.0]


def test_to_another_tensor_takes_its_device_and_dtype(gpu: Any) -> None:
    other = cr.zeros(1, dtype=cr.float64).cpu()
    y = cr.ones(2).cuda()
    z = y.to(other)
    assert z.device == "cpu" and z.dtype == np.float64
    assert cr.ones(2, dtype=cr.float64).to(y).device == "cuda:0"


def test_to_device_and_dtype_together(gpu: Any) -> None:
    y = cr.tensor([1.5, 2.5], dtype=cr.float64).to("cuda", cr.float32)
    assert y.device == "cuda:0" and y.cpu().dtype == np.float32 and y.tolist() == [1.5, 2.5]


def test_the_gradient_goes_back_to_the_device_of_the_input(two_gpus: Any) -> None:
    # cpu -> cuda:0 -> cuda:1 -> cpu, then a loss on the CPU: only moves run on the devices.
    x = cr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x.to("cuda")
    z = y.to("cuda:1")
    seen: dict[str, Any] = {}
    y.register_hook(lambda g: seen.__setitem__("y", g.device))
    z.register_hook(lambda g: seen.__setitem__("z", g.device))
    w = z.cpu()
    (w * w * cr.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert seen == {"y": cr.device("cuda", 0), "z": cr.device("cuda", 1)}
    assert type(x.grad.numpy()) is np.ndarray  # type: ignore[union-attr]
    assert x.grad.tolist() == [2.0, -40.0, 600.0]  # type: ignore[union-attr]  # d/dx c x² = 2cx


@pytest.mark.skipif(not ENGINE_ON_ARRAY_API, reason=NEEDS_BACKEND)
def test_a_leaf_on_the_device_gets_its_gradient_there(gpu: Any) -> None:
    # (Storing .grad reads the array's memory layout: the engine's backend decides how.)
    x = cr.tensor([2.0, 3.0], device="cuda", requires_grad=True)
    assert x.is_leaf and on_gpu(x, 0)
    (x.cpu() * cr.tensor([5.0, 7.0])).sum().backward()
    assert x.grad is not None and on_gpu(x.grad, 0) and x.grad.tolist() == [5.0, 7.0]


def test_a_device_tensor_is_not_read_as_a_numpy_array(gpu: Any) -> None:
    y = cr.ones(2).cuda()
    with pytest.raises(
        TypeError, match=r"Tensor.numpy: can't convert a tensor on cuda:0.*\.cpu\(\)"
    ):
        y.numpy()
    with pytest.raises(TypeError, match=r"can't convert a tensor on cuda:0"):
        np.asarray(y)
    assert y.item() if y.numel() == 1 else y.sum  # (no error reading values through the host)
    assert cr.tensor([4.0]).cuda().item() == 4.0
    assert repr(y) == "Tensor([1., 1.], device='cuda:0')"


@pytest.mark.parametrize(
    "make",
    [
        lambda d: cr.zeros(2, 3, device=d),
        lambda d: cr.ones(2, device=d),
        lambda d: cr.empty(2, device=d),
        lambda d: cr.full((2,), 7.0, device=d),
        lambda d: cr.eye(3, device=d),
        lambda d: cr.arange(5, device=d),
        lambda d: cr.linspace(0, 1, 4, device=d),
        lambda d: cr.tensor([1, 2], device=d),
        lambda d: cr.as_tensor(cr.ones(2), device=d),
        lambda d: cr.randn(3, device=d),
        lambda d: cr.rand(3, device=d),
        lambda d: cr.randint(0, 5, (3,), device=d),
        lambda d: cr.randperm(4, device=d),
    ],
)
def test_creation_functions_put_their_result_on_the_device(two_gpus: Any, make: Any) -> None:
    t = make("cuda:1")
    assert t.device == "cuda:1" and on_gpu(t, 1)
    host = make("cpu")
    assert host.device == "cpu" and t.cpu().numpy().dtype == host.numpy().dtype


@pytest.mark.parametrize("fn", [cr.zeros_like, cr.ones_like, cr.empty_like, cr.randn_like])
def test_like_functions_follow_the_input_device(two_gpus: Any, fn: Any) -> None:
    x = cr.ones(2, 3, dtype=cr.float64).to("cuda:1")
    y = fn(x)
    assert y.device == "cuda:1" and y.shape == (2, 3) and y.cpu().dtype == np.float64
    assert fn(x, device="cpu").device == "cpu"


def test_random_tensors_are_the_same_numbers_on_every_device(gpu: Any) -> None:
    cr.manual_seed(3)
    host = cr.randn(4, 5)
    cr.manual_seed(3)
    device = cr.randn(4, 5, device="cuda")
    assert np.array_equal(device.cpu().numpy(), host.numpy())


def test_a_copy_of_a_device_tensor_stays_on_its_device(two_gpus: Any) -> None:
    y = cr.tensor([1.0, 2.0]).to("cuda:1")
    assert cr.tensor(y).device == "cuda:1" and cr.tensor(y, device="cpu").device == "cpu"
    assert cr.as_tensor(y) is y and cr.as_tensor(y, device="cuda:0").device == "cuda:0"


def test_the_default_device(two_gpus: Any) -> None:
    try:
        cr.set_default_device("cuda:1")
        assert cr.get_default_device() == "cuda:1"
        assert cr.zeros(2).device == "cuda:1" and nn.Linear(2, 2).weight.device == "cuda:1"
        assert cr.zeros(2, device="cpu").device == "cpu"
    finally:
        cr.set_default_device(None)
    assert cr.zeros(2).device == "cpu"


def test_a_gpu_that_does_not_exist_is_named(stand_in: Any) -> None:
    with pytest.raises(RuntimeError, match=r"^Tensor.to: device 'cuda:2' does not exist: there "
                       r"are 2 cuda devices \(indices 0 to 1\)"):  # fmt: skip
        cr.ones(1).to("cuda:2")


def test_a_registered_type_can_be_put_back(stand_in: Any) -> None:
    assert devices.device_type("cuda") is not devices.CUDA  # the stand-in, for this test
    previous = devices.register_device_type(devices.CUDA)
    devices.unregister_device_type("cuda", previous)
    assert devices.device_type("cuda") is previous
