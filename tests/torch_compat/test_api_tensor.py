"""Tensors under PyTorch's names (creation, dtypes, promotion, methods, devices, math),
each against PyTorch 2.13 (the oracle)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import chainrule as cr
import chainrule.data
from chainrule import nn

RNG = np.random.default_rng(0)


# -- creation and dtypes ----------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.zeros(2, 3),
        lambda m: m.ones((2, 3), dtype=m.float64),
        lambda m: m.full((2,), 3),
        lambda m: m.full((2,), 3.5),
        lambda m: m.eye(3, 4),
        lambda m: m.linspace(-1, 1, 7),
        lambda m: m.arange(5),
        lambda m: m.arange(0, 1, 0.25),
        lambda m: m.tensor([[1, 2], [3, 4]]),
        lambda m: m.tensor([1.5, 2.0]),
        lambda m: m.tensor(True),
        lambda m: m.tensor(np.ones(2)),
        lambda m: m.zeros_like(m.tensor([1, 2])),
        lambda m: m.ones_like(m.tensor([1.0, 2.0], dtype=m.double)),
        lambda m: m.zeros(2, dtype=m.long),
        lambda m: m.empty(2, 3).fill_(7),
    ],
)
def test_creation_gives_pytorchs_values_and_dtypes(make: object) -> None:
    ours, theirs = make(cr), make(torch)  # type: ignore[operator]
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    # (linspace: PyTorch computes the steps in float32, NumPy in float64, then rounds)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=0, atol=1e-7)
    assert tuple(ours.size()) == tuple(theirs.size())


def test_dtype_names_are_pytorchs() -> None:
    for name in ["float32", "float", "float64", "double", "long", "int64", "int32", "int",
                 "bool", "float16", "half", "uint8", "int8", "int16", "short"]:  # fmt: skip
        assert str(getattr(cr, name)) == str(getattr(torch, name)).removeprefix("torch.")


PROMOTIONS = [
    lambda m: m.ones(2) * m.ones(2, dtype=m.int64),
    lambda m: m.ones(2) * 2,
    lambda m: m.ones(2) * 2.5,
    lambda m: m.ones(2, dtype=m.int64) * 2.5,
    lambda m: m.ones(2, dtype=m.int64) / m.ones(2, dtype=m.int64),
    lambda m: m.ones(2, dtype=m.int64) / 2,
    lambda m: 3 / m.ones(2, dtype=m.int32),
    lambda m: m.ones(2) * m.tensor(2.0, dtype=m.float64),
    lambda m: m.ones(2) + m.ones(2, dtype=m.float64),
    lambda m: m.ones(2, dtype=m.int32) + m.tensor(3, dtype=m.int64),
    lambda m: m.ones(2, dtype=m.bool) + 1,
    lambda m: m.ones(2, dtype=m.bool) + 1.5,
    lambda m: m.ones(2, dtype=m.int64) ** 0.5,
    lambda m: 2 ** m.ones(2, dtype=m.int64),
    lambda m: m.ones(2) - np.float64(1.0),
    lambda m: m.ones(2, dtype=m.float64) * m.tensor(2.0),
    lambda m: m.ones(2, dtype=m.int64) * m.tensor(2.0),
]


@pytest.mark.parametrize("expr", PROMOTIONS)
def test_binary_ops_promote_as_pytorch(expr: object) -> None:
    ours, theirs = expr(cr), expr(torch)  # type: ignore[operator]
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy())


def test_promotion_keeps_the_gradient_of_a_cast_operand() -> None:
    x = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)  # float64
    (cr.ones(2) * x).sum().backward()  # 1-d float64 wins over float32: float64 result
    assert x.grad is not None and x.grad.dtype == cr.float64
    s = cr.tensor(np.float64(3.0), requires_grad=True)  # a 0-d float64 tensor
    out = cr.ones(2) * s
    assert out.dtype == cr.float32  # the 1-d float32 decides, as in PyTorch
    out.sum().backward()
    assert s.grad is not None and s.grad.item() == 2.0 and s.grad.dtype == cr.float64


def test_float32_linear_given_float64_input_raises_as_pytorch() -> None:
    with pytest.raises(RuntimeError, match="dtype"):
        torch.nn.Linear(2, 3)(torch.ones(4, 2, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="float64 but the weights are float32"):
        nn.Linear(2, 3)(cr.ones(4, 2, dtype=cr.float64))
    with pytest.raises(RuntimeError, match="same dtype"):
        cr.ones(2, 2) @ cr.ones(2, 2, dtype=cr.float64)


# -- tensor methods ---------------------------------------------------------------------

X = RNG.standard_normal((3, 4))
X[1, 2] = X[1, 0]  # no tie at the max here; ties are tested below
TIES = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]])

METHODS = [
    ("pow", lambda t: t.pow(3)),
    ("t", lambda t: t.t()),
    ("mm", lambda t: t.mm(t.t())),
    ("clone", lambda t: t.clone() * 2),
    ("view", lambda t: t.view(2, 6)),
    ("view_infer", lambda t: t.view(-1)),
    ("flatten", lambda t: t.reshape(3, 2, 2).flatten(1)),
    ("max_dim", lambda t: t.max(dim=1).values),
    ("max_dim_keepdim", lambda t: t.max(0, keepdim=True)[0]),
    ("min_dim", lambda t: t.min(1).values),
    ("max_all", lambda t: t.max()),
    ("max_other", lambda t: t.max(t * 0.5)),
    (
        "type",
        lambda t: t.type(torch.float64) if isinstance(t, torch.Tensor) else t.type(cr.float64),
    ),
    (
        "to_dtype",
        lambda t: t.to(torch.float32) if isinstance(t, torch.Tensor) else t.to(cr.float32),
    ),
    ("to_cpu", lambda t: t.to("cpu").cpu() * 3),
]


@pytest.mark.parametrize("name, fn", METHODS, ids=[m[0] for m in METHODS])
def test_methods_match_pytorch_values_and_gradients(name: str, fn: object) -> None:
    for data in (X, TIES if name.startswith(("max", "min")) else X):
        ours = cr.tensor(data, requires_grad=True)
        theirs = torch.tensor(data, requires_grad=True)
        a, b = fn(ours), fn(theirs)  # type: ignore[operator]
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-6)
        weights = RNG.standard_normal(a.shape)
        (a * cr.tensor(weights, dtype=a.dtype)).sum().backward()
        (b * torch.tensor(weights, dtype=b.dtype)).sum().backward()
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6)  # type: ignore[union-attr]


def test_indices_size_numel_dim_tolist_match_pytorch() -> None:
    for data in (X, TIES):
        ours, theirs = cr.tensor(data), torch.tensor(data)
        for d in (0, 1, -1):
            assert ours.max(d).indices.tolist() == theirs.max(d).indices.tolist()
            assert ours.min(dim=d)[1].tolist() == theirs.min(dim=d)[1].tolist()
            assert ours.argmax(d).tolist() == theirs.argmax(d).tolist()
        assert ours.argmax().item() == theirs.argmax().item()
        assert ours.size() == tuple(theirs.size()) and ours.size(1) == theirs.size(1)
        assert (ours.numel(), ours.dim()) == (theirs.numel(), theirs.dim())
        assert ours.tolist() == theirs.tolist()
        assert ours.type() == theirs.type().replace("torch", "chainrule")


def test_in_place_methods_match_pytorch_and_bump_the_version() -> None:
    ours, theirs = cr.tensor(X.copy()), torch.tensor(X.copy())
    for t, m in ((ours, cr), (theirs, torch)):
        t.add_(m.ones(3, 4), alpha=2).sub_(0.5).mul_(3).div_(2)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy())
    for op in (lambda t: t.add_(1), lambda t: t.mul_(2), lambda t: t.sub_(1), lambda t: t.zero_(),
               lambda t: t.fill_(2), lambda t: t.copy_(cr.ones(3))):  # fmt: skip
        w = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
        c = cr.tensor([4.0, 5.0, 6.0])
        loss = (w * c).sum()  # mul saves c
        op(c)
        with pytest.raises(RuntimeError, match=r"modified|changed|in place"):
            loss.backward()


def test_in_place_on_a_tensor_that_requires_grad_needs_no_grad() -> None:
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        w.add_(1)
    with cr.no_grad():
        w.add_(1)
    assert w.tolist() == [2.0, 3.0]


def test_data_is_a_tensor_sharing_memory_outside_the_graph() -> None:
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    d = w.data
    assert isinstance(d, cr.Tensor) and not d.requires_grad and d.is_leaf
    d[0] = 5.0  # shared memory, as PyTorch
    assert w.tolist() == [5.0, 2.0]
    c = cr.tensor([3.0, 4.0], requires_grad=True)
    loss = (w * c).sum()
    w.data.mul_(2)  # the forward pass saved w: the sample catches the write
    with pytest.raises(RuntimeError):
        loss.backward()


def test_devices_for_cpu_only_code() -> None:
    assert cr.cuda.is_available() is False and cr.accelerator.is_available() is False
    assert cr.backends.mps.is_available() is False
    dev = cr.device("cpu")
    assert repr(dev) == repr(torch.device("cpu")) and dev == "cpu"
    assert cr.ones(2).device == dev and cr.ones(2, device="cpu").to(dev).is_cuda is False
    cr.set_default_device("cpu")
    model = nn.Linear(2, 2).to(dev)
    assert model.weight.device == dev
    with pytest.raises(RuntimeError, match="not available"):
        cr.ones(2).to("cuda")
    # A device is only a name, as in PyTorch: making one needs no GPU, using it does.
    assert repr(cr.device("cuda:0")) == repr(torch.device("cuda:0"))
    with pytest.raises(RuntimeError, match=r"not available.*chainrule\[cuda\]"):
        cr.zeros(2, device=cr.device("cuda:0"))


# -- top-level math ---------------------------------------------------------------------

TOP = ["sin", "cos", "exp", "tanh", "sigmoid", "relu", "abs", "sqrt", "square"]


@pytest.mark.parametrize("name", TOP)
def test_top_level_unary_functions_match_pytorch(name: str) -> None:
    data = np.abs(X) + 0.1 if name == "sqrt" else X
    ours, theirs = getattr(cr, name)(cr.tensor(data)), getattr(torch, name)(torch.tensor(data))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def test_top_level_reductions_and_joins_match_pytorch() -> None:
    a, b = cr.tensor(X), torch.tensor(X)
    pairs = [
        (cr.sum(a, 1), torch.sum(b, 1)),
        (cr.mean(a, dim=0, keepdim=True), torch.mean(b, dim=0, keepdim=True)),
        (cr.max(a, 1).values, torch.max(b, 1).values),
        (cr.max(a), torch.max(b)),
        (cr.matmul(a, a.t()), torch.matmul(b, b.t())),
        (cr.mm(a, cr.t(a)), torch.mm(b, torch.t(b))),
        (cr.cat([a, a], 1), torch.cat([b, b], 1)),
        (cr.stack([a, a]), torch.stack([b, b])),
        (cr.where(a > 0, a, 0.0), torch.where(b > 0, b, 0.0)),
        (cr.softmax(a, 1), torch.softmax(b, 1)),
        (cr.log_softmax(a, dim=0), torch.log_softmax(b, dim=0)),
        (cr.clamp(a, min=0), torch.clamp(b, min=0)),
        (cr.pow(a, 2), torch.pow(b, 2)),
        (cr.transpose(a, 0, 1), torch.transpose(b, 0, 1)),
        (cr.flatten(a), torch.flatten(b)),
        (cr.unsqueeze(a, 0), torch.unsqueeze(b, 0)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    assert cr.allclose(a, a + 1e-9) and cr.equal(a, a.clone()) and cr.is_tensor(a)
