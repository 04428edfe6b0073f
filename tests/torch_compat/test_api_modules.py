"""autograd, nn, optim, utils.data and the generator under PyTorch's names, against PyTorch."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import chainrule as cr
import chainrule.data
from chainrule import nn, optim
from chainrule.utils.data import DataLoader, Dataset, TensorDataset

RNG = np.random.default_rng(0)


# -- autograd ---------------------------------------------------------------------------


class Cube(cr.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):  # type: ignore[no-untyped-def, override]
        ctx.save_for_backward(x)
        ctx.k = k
        return k * x**3

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def, override]
        (x,) = ctx.saved_tensors
        assert ctx.needs_input_grad == (True, False)
        return g * 3 * ctx.k * x**2, None


def test_function_first_and_second_derivatives_match_finite_differences_and_torch() -> None:
    x = cr.tensor(np.array([0.5, -2.0, 1.5]), requires_grad=True)
    y = Cube.apply(x, 2.0)
    assert y.grad_fn is not None
    (g,) = cr.autograd.grad(y.sum(), x, create_graph=True)
    (h,) = cr.autograd.grad(g.sum(), x)
    t = torch.tensor(x.numpy(), requires_grad=True)
    (tg,) = torch.autograd.grad((2.0 * t**3).sum(), t, create_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), t)
    np.testing.assert_allclose(g.numpy(), tg.detach().numpy())
    np.testing.assert_allclose(h.numpy(), th.numpy())
    eps = 1e-6
    fd = (Cube.apply(x.detach() + eps, 2.0) - Cube.apply(x.detach() - eps, 2.0)) / (2 * eps)
    np.testing.assert_allclose(g.numpy(), fd.numpy(), rtol=1e-7)


def test_function_input_changed_in_place_is_caught() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    c = cr.tensor([3.0, 4.0])
    y = Cube.apply(x * c, 1.0).sum()
    c.add_(1)  # mul saved c
    with pytest.raises(RuntimeError):
        y.backward()


def test_autograd_grad_matches_torch_and_leaves_grad_alone() -> None:
    data = RNG.standard_normal(4)
    x, t = cr.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    u, tu = cr.tensor(data * 2, requires_grad=True), torch.tensor(data * 2, requires_grad=True)
    outs = [(x * u).sum(), (x.exp() * 2)]
    touts = [(t * tu).sum(), (t.exp() * 2)]
    seeds = [None, cr.ones(4, dtype=cr.float64)]
    ours = cr.autograd.grad(outs, [x, u], grad_outputs=seeds)
    theirs = torch.autograd.grad(touts, [t, tu], grad_outputs=[None, torch.ones(4).double()])
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy())  # type: ignore[union-attr]
    assert x.grad is None and u.grad is None
    unused = cr.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="allow_unused"):
        cr.autograd.grad((x * 2).sum(), [x, unused])
    assert cr.autograd.grad((x * 2).sum(), [x, unused], allow_unused=True)[1] is None
    assert cr.autograd.Variable is cr.Tensor


# -- nn ---------------------------------------------------------------------------------


def test_softmax_logsoftmax_nllloss_flatten_match_pytorch() -> None:
    z = RNG.standard_normal((5, 3))
    y = np.array([0, 2, 1, 1, 0])
    ours = cr.tensor(z, requires_grad=True)
    theirs = torch.tensor(z, requires_grad=True)
    a = nn.NLLLoss()(nn.LogSoftmax(dim=1)(ours), cr.tensor(y)) + nn.Softmax(0)(ours).max()
    b = torch.nn.NLLLoss()(torch.nn.LogSoftmax(dim=1)(theirs), torch.tensor(y))
    b = b + torch.nn.Softmax(0)(theirs).max()
    a.backward()
    b.backward()
    np.testing.assert_allclose(a.item(), b.item())
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy())  # type: ignore[union-attr]
    for reduction in ("sum", "none"):
        np.testing.assert_allclose(
            nn.NLLLoss(reduction=reduction)(cr.tensor(z), cr.tensor(y)).numpy(),
            torch.nn.NLLLoss(reduction=reduction)(torch.tensor(z), torch.tensor(y)).numpy(),
        )
    img = RNG.standard_normal((2, 3, 4, 5))
    assert nn.Flatten()(cr.tensor(img)).shape == tuple(torch.nn.Flatten()(torch.tensor(img)).shape)
    assert nn.Flatten(0, 2)(cr.tensor(img)).shape == (24, 5)
    assert isinstance(nn.Identity()(ours), cr.Tensor)


def test_linear_default_init_has_pytorchs_bounds_and_seed_fixes_it() -> None:
    cr.manual_seed(3)
    layer = nn.Linear(50, 40)
    bound = 1 / np.sqrt(50)
    for p in (layer.weight, layer.bias):
        assert p is not None and np.abs(p.numpy()).max() <= bound
        assert np.abs(p.numpy()).max() > 0.9 * bound
    cr.manual_seed(3)
    again = nn.Linear(50, 40)
    np.testing.assert_array_equal(layer.weight.numpy(), again.weight.numpy())


# -- optim: 100 steps equal to PyTorch ----------------------------------------------------

OPTIMISERS = [
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.005, "alpha": 0.9, "momentum": 0.8, "weight_decay": 0.01}),
    ("RMSprop", {"lr": 0.003, "centered": True, "momentum": 0.5, "eps": 1e-6}),
    ("Adagrad", {"lr": 0.1}),
    (
        "Adagrad",
        {"lr": 0.05, "lr_decay": 0.01, "weight_decay": 0.02, "initial_accumulator_value": 0.1},
    ),
]


@pytest.mark.parametrize("name, kwargs", OPTIMISERS)
def test_optimiser_follows_pytorch_for_100_steps(name: str, kwargs: dict[str, float]) -> None:
    w0, x = RNG.standard_normal((4, 3)), RNG.standard_normal((16, 3))
    target = RNG.standard_normal((16, 4))
    ours = nn.Parameter(w0.copy())
    theirs = torch.tensor(w0.copy(), requires_grad=True)
    opt = getattr(optim, name)([ours], **kwargs)
    topt = getattr(torch.optim, name)([theirs], **kwargs)
    for _ in range(100):
        opt.zero_grad()
        topt.zero_grad()
        ((cr.tensor(x) @ ours.t()).tanh() - cr.tensor(target)).pow(2).mean().backward()
        ((torch.tensor(x) @ theirs.t()).tanh() - torch.tensor(target)).pow(2).mean().backward()
        opt.step()
        topt.step()
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


# -- utils.data and the generator ---------------------------------------------------------


class Squares(Dataset):
    def __len__(self) -> int:
        return 5

    def __getitem__(self, i: int) -> tuple[np.ndarray, float, int]:
        return np.full(2, i, dtype=np.float32), float(i * i), i


def test_dataloader_collates_as_pytorch() -> None:
    class TorchSquares(torch.utils.data.Dataset):  # type: ignore[type-arg]
        __len__ = Squares.__len__
        __getitem__ = Squares.__getitem__  # type: ignore[assignment]

    ours = list(DataLoader(Squares(), batch_size=2))
    theirs = list(torch.utils.data.DataLoader(TorchSquares(), batch_size=2))
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs, strict=True):
        for u, v in zip(a, b, strict=True):
            assert str(u.dtype) == str(v.dtype).removeprefix("torch.")
            np.testing.assert_array_equal(u.numpy(), v.numpy())
    ds = TensorDataset(cr.arange(10).reshape(5, 2), cr.tensor([0, 1, 0, 1, 1]))
    tds = torch.utils.data.TensorDataset(
        torch.arange(10).reshape(5, 2), torch.tensor([0, 1, 0, 1, 1])
    )
    for a, b in zip(
        DataLoader(ds, 2, drop_last=True),
        torch.utils.data.DataLoader(tds, 2, drop_last=True),
        strict=True,
    ):
        assert [t.tolist() for t in a] == [t.tolist() for t in b]
    assert len(DataLoader(ds, 2)) == 3 and len(DataLoader(ds, 2, drop_last=True)) == 2
    assert [t.tolist() for t in ds[1]] == [[2, 3], 1]


def test_manual_seed_fixes_every_draw() -> None:
    def draws() -> list[object]:
        cr.manual_seed(7)
        ds = TensorDataset(cr.arange(20))
        return [
            cr.randn(3).tolist(),
            cr.rand(2, 2).tolist(),
            cr.randint(0, 10, (4,)).tolist(),
            cr.randperm(5).tolist(),
            nn.Linear(3, 2).weight.tolist(),
            nn.Dropout(0.5)(cr.ones(8)).tolist(),
            [b[0].tolist() for b in DataLoader(ds, batch_size=5, shuffle=True)],
            nn.init.normal_(cr.empty(3)).tolist(),
            [b[0].tolist() for b in cr.data.DataLoader(ds, batch_size=5, shuffle=True)],
        ]

    first, second = draws(), draws()
    assert first == second
    cr.manual_seed(8)
    assert cr.randn(3).tolist() != first[0]
    assert cr.randn(2, dtype=cr.float64).dtype == cr.float64
    assert cr.initial_seed() == 8


def test_default_generator_is_safe_to_draw_from_in_threads() -> None:
    cr.manual_seed(11)
    results: list[np.ndarray] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(200):
            a = cr.randn(64).numpy()
            with lock:
                results.append(a)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    cr.manual_seed(11)
    expected = np.concatenate([cr.randn(64).numpy() for _ in range(800)])
    # Every draw is one whole draw of the one stream: together they are its first 800
    # draws, each exactly once (in the scheduler's order), none lost or repeated.
    got = np.concatenate(results)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(np.sort(got), np.sort(expected))


def test_module_to_dtype_converts_parameters_in_place_as_pytorch() -> None:
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 1))
    weight = model[0].weight
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh(), torch.nn.Linear(2, 1))
    with torch.no_grad():
        for p, q in zip(model.parameters(), theirs.parameters(), strict=True):
            q.copy_(torch.from_numpy(p.numpy().copy()))
    assert model.to(cr.float64) is model and model[0].weight is weight
    theirs = theirs.double()
    x = RNG.standard_normal((4, 3))
    np.testing.assert_allclose(
        model(cr.from_numpy(x)).numpy(), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-6
    )
    assert model.float()[0].weight.dtype == cr.float32


def test_from_numpy_shares_memory_and_functional_softmax_takes_dim() -> None:
    a = np.arange(6.0).reshape(2, 3)
    t = cr.from_numpy(a)
    a[0, 0] = 9.0
    assert t[0, 0].item() == 9.0 and t.dtype == cr.float64
    np.testing.assert_allclose(
        nn.functional.softmax(t, dim=0).numpy(),
        torch.nn.functional.softmax(torch.from_numpy(a), dim=0).numpy(),
    )
    np.testing.assert_allclose(
        nn.functional.log_softmax(t, 1).numpy(),
        torch.nn.functional.log_softmax(torch.from_numpy(a), 1).numpy(),
    )
