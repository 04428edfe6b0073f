"""Models on the stand-in GPU: Module.to, buffers, optimisers, state dicts and model files.

Checked against PyTorch's Module.to semantics: Parameters keep their identity (and their
``.grad``'s), buffers become new tensors, integer buffers keep their dtype. Movement only:
these tests hold whether or not the engine computes on the stand-in's arrays yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from tests.devices.stand_in import on_gpu


class Counted(nn.Module):
    """A layer with a float buffer (running mean), an int buffer (a step count) and a
    non-persistent buffer (a mask), as normalisation layers have."""

    def __init__(self) -> None:
        self.linear = nn.Linear(3, 2)
        self.register_buffer("running_mean", cr.zeros(2))
        self.register_buffer("steps", cr.tensor(5))
        self.register_buffer("mask", cr.ones(2), persistent=False)

    def forward(self, x: Any) -> Any:
        return self.linear(x) * self.mask


class TorchCounted(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)
        self.register_buffer("running_mean", torch.zeros(2))
        self.register_buffer("steps", torch.tensor(5))
        self.register_buffer("mask", torch.ones(2), persistent=False)


def test_buffers_are_found_and_saved_as_pytorch_does() -> None:
    ours, theirs = Counted(), TorchCounted()
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())  # mask is not persistent
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


def test_register_buffer_rejects_what_pytorch_rejects() -> None:
    m = Counted()
    with pytest.raises(KeyError, match=r"without '\.'"):
        m.register_buffer("a.b", cr.zeros(1))
    with pytest.raises(TypeError, match="not a Parameter"):
        m.register_buffer("w", nn.Parameter(np.zeros(1)))


def test_module_to_keeps_parameters_and_moves_buffers_as_pytorch(two_gpus: Any) -> None:
    model = Counted()
    params = list(model.parameters())
    buffers = dict(model.named_buffers())
    values = {n: p.numpy().copy() for n, p in model.named_parameters()}
    assert model.to("cuda:1") is model
    for p, (name, q) in zip(params, model.named_parameters(), strict=True):
        assert p is q and on_gpu(p, 1) and isinstance(p, nn.Parameter)
        assert p.requires_grad and p.is_leaf
        assert np.array_equal(p.cpu().numpy(), values[name])
    for name, b in model.named_buffers():
        assert b is not buffers[name] and on_gpu(b, 1)  # new tensors, as PyTorch's
    assert model.steps.item() == 5 and model.running_mean.device == "cuda:1"
    # The same semantics as PyTorch's (on the CPU: identity is what is compared).
    tm = TorchCounted()
    tparams, tbuffers = list(tm.parameters()), dict(tm.named_buffers())
    tm.to(torch.float64)
    assert all(p is q for p, q in zip(tparams, tm.parameters(), strict=True))
    assert all(b is not tbuffers[n] for n, b in tm.named_buffers() if b.is_floating_point())


def test_module_to_dtype_casts_floats_only(gpu: Any) -> None:
    model = Counted().to("cuda", cr.float64)
    assert model.linear.weight.cpu().dtype == np.float64
    assert model.running_mean.cpu().dtype == np.float64
    assert model.steps.cpu().dtype == np.int64  # as PyTorch: integer buffers keep their dtype
    tm = TorchCounted().to(torch.float64)
    assert tm.steps.dtype == torch.int64 and tm.running_mean.dtype == torch.float64
    with pytest.raises(TypeError, match="only floating-point dtypes"):
        model.to(cr.int32)


def test_module_to_moves_the_gradients_and_keeps_them(gpu: Any) -> None:
    model = nn.Linear(3, 2)
    loss = model(cr.ones(4, 3)).sum()
    loss.backward()
    grad = model.weight.grad
    assert grad is not None
    expected = grad.numpy().copy()
    model.cuda()
    assert model.weight.grad is grad and on_gpu(grad)
    assert np.array_equal(grad.cpu().numpy(), expected)
    model.cpu()
    assert model.weight.grad is grad and type(grad.numpy()) is np.ndarray


def test_an_optimizer_built_before_the_move_still_holds_the_models_parameters(gpu: Any) -> None:
    model = nn.Linear(3, 2)
    opt = cr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.to("cuda")
    held = opt.param_groups[0]["params"]
    assert held[0] is model.weight and held[1] is model.bias
    assert all(on_gpu(p) for p in held)


def test_state_dict_of_a_device_model_is_numpy_in_host_memory(gpu: Any) -> None:
    cr.manual_seed(0)
    host = Counted()
    cr.manual_seed(0)
    model = Counted().to("cuda")
    state = model.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())
    for name, value in host.state_dict().items():
        assert np.array_equal(state[name], value) and state[name].dtype == value.dtype


def test_loading_into_a_device_model_keeps_it_there(two_gpus: Any) -> None:
    model = Counted().to("cuda:1")
    weight = model.linear.weight
    source = Counted()
    source.linear.weight.data = cr.full((2, 3), 0.25)
    source.steps.data = cr.tensor(9)
    model.load_state_dict(source.state_dict())
    assert model.linear.weight is weight and on_gpu(weight, 1)
    assert weight.cpu().tolist() == [[0.25] * 3] * 2
    assert model.steps.item() == 9 and on_gpu(model.steps, 1)


def test_load_state_dict_still_reports_mismatches_for_device_models(gpu: Any) -> None:
    model = Counted().to("cuda")
    state = Counted().state_dict()
    state["linear.weight"] = state["linear.weight"].astype(np.float64)
    with pytest.raises(RuntimeError, match=r"dtype mismatch for 'linear.weight': model .*float32"):
        model.load_state_dict(state)


def test_saving_a_device_model_writes_host_arrays_and_loads_back(
    two_gpus: Any, tmp_path: Path
) -> None:
    cr.manual_seed(1)
    model = Counted().to("cuda")
    path = tmp_path / "model.safetensors"
    cr.save(model, path, metadata={"device": str(model.linear.weight.device)})
    cr.save({"w": model.linear.weight}, tmp_path / "one.safetensors")  # a device Tensor
    ckpt = cr.load(path)
    assert ckpt.metadata == {"device": "cuda:0"}
    assert all(type(v) is np.ndarray for v in ckpt.values())
    from safetensors.torch import load_file

    theirs = load_file(str(path))  # any safetensors reader opens it
    assert np.array_equal(theirs["linear.weight"].numpy(), model.linear.weight.cpu().numpy())
    assert np.array_equal(cr.load(tmp_path / "one.safetensors")["w"], ckpt["linear.weight"])
    fresh = Counted().to("cuda:1")
    fresh.load_state_dict(ckpt)
    assert np.array_equal(fresh.linear.weight.cpu().numpy(), model.linear.weight.cpu().numpy())
    assert on_gpu(fresh.linear.weight, 1)


def test_a_layer_made_on_the_device_starts_as_on_the_cpu(gpu: Any) -> None:
    cr.manual_seed(7)
    host = nn.Linear(4, 8)
    cr.manual_seed(7)
    layer = nn.Linear(4, 8, device="cuda")
    assert on_gpu(layer.weight)
    assert np.array_equal(layer.weight.cpu().numpy(), host.weight.numpy())


def test_module_to_back_to_the_cpu(two_gpus: Any) -> None:
    model = Counted().cuda(1).cpu()
    assert all(type(t._data) is np.ndarray for t in [*model.parameters(), *model.buffers()])
    out = model(cr.ones(1, 3))  # computes again with NumPy
    assert out.shape == (1, 2)


OPTIMIZERS = {
    "sgd": lambda ps: cr.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True),
    "sgd_dampened": lambda ps: cr.optim.SGD(ps, lr=0.1, momentum=0.5, dampening=0.3),
    "adam": lambda ps: cr.optim.Adam(ps, lr=0.01, weight_decay=0.1, amsgrad=True),
    "adamw": lambda ps: cr.optim.AdamW(ps, lr=0.01),
    "rmsprop": lambda ps: cr.optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True,
                                           weight_decay=0.1),
    "adagrad": lambda ps: cr.optim.Adagrad(ps, lr=0.1, weight_decay=0.1),
}  # fmt: skip


def train_with_given_grads(make: Any, move_at: int | None, steps: int = 4) -> tuple[Any, Any]:
    """``steps`` optimiser steps on fixed gradients (no backward pass: only the update runs
    on the device), moving the model to the GPU before step ``move_at``."""
    cr.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = make(list(model.parameters()))
    rng = np.random.default_rng(5)
    for step in range(steps):
        if step == move_at:
            model.to("cuda")
        for p in model.parameters():
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad = cr.tensor(g, device=p.device)
        opt.step()
    return model, opt


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_state_follows_the_parameters_to_the_device(gpu: Any, name: str) -> None:
    host, _ = train_with_given_grads(OPTIMIZERS[name], move_at=None)
    model, opt = train_with_given_grads(OPTIMIZERS[name], move_at=2)
    for p, q in zip(model.parameters(), host.parameters(), strict=True):
        assert on_gpu(p)
        np.testing.assert_allclose(p.cpu().numpy(), q.numpy(), rtol=1e-6, atol=1e-7)
    arrays = [v for s in opt.state.values() for v in s.values() if hasattr(v, "shape")]
    assert arrays and all(type(a) is not np.ndarray for a in arrays)  # moved with the params
    saved = opt.state_dict()["state"]
    assert all(type(v) is np.ndarray for s in saved.values() for v in s.values()
               if hasattr(v, "shape"))  # fmt: skip


def test_an_optimizer_loaded_from_the_host_steps_a_device_model(gpu: Any) -> None:
    host, host_opt = train_with_given_grads(OPTIMIZERS["adam"], move_at=None, steps=2)
    model = nn.Linear(3, 2)
    model.load_state_dict(host.state_dict())
    model.to("cuda")
    opt = OPTIMIZERS["adam"](list(model.parameters()))
    opt.load_state_dict(host_opt.state_dict())
    for p, q in zip(model.parameters(), host.parameters(), strict=True):
        g = np.full(p.shape, 0.5, dtype=np.float32)
        p.grad, q.grad = cr.tensor(g, device="cuda"), cr.tensor(g)
    opt.step()
    host_opt.step()
    for p, q in zip(model.parameters(), host.parameters(), strict=True):
        np.testing.assert_allclose(p.cpu().numpy(), q.numpy(), rtol=1e-6, atol=1e-7)
