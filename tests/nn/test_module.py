"""Module: finding parameters, modes, gradients, printing, and state dicts (PyTorch as oracle)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chainrule import Tensor, nn


class Block(nn.Module):
    """Every kind of attribute a module may hold."""

    def __init__(self) -> None:
        self.scale = nn.Parameter(np.ones(3))
        self.first = nn.Linear(3, 4, dtype=np.float64, rng=0)
        self.branches = [nn.Linear(4, 2, dtype=np.float64, rng=i) for i in range(2)]
        self.pair = (nn.Tanh(), nn.Parameter(np.zeros(2)))
        self.stack = nn.ModuleList([nn.Linear(2, 2, bias=False, dtype=np.float64, rng=3)])
        self.constant = Tensor(np.ones(3))  # a plain tensor: not a parameter
        self.nothing = None
        self.numbers = [1, 2]

    def forward(self, x: Tensor) -> Tensor:
        h = self.first(x * self.scale)
        return sum((b(h) for b in self.branches), start=self.pair[1])  # type: ignore[no-any-return]


def test_parameters_are_found_in_attributes_lists_tuples_and_module_lists() -> None:
    names = [name for name, _ in Block().named_parameters()]
    assert names == [
        "scale",
        "pair.1",
        "first.weight",
        "first.bias",
        "branches.0.weight",
        "branches.0.bias",
        "branches.1.weight",
        "branches.1.bias",
        "stack.0.weight",
    ]
    assert all(isinstance(p, nn.Parameter) for p in Block().parameters())


def test_parameter_names_and_repr_match_pytorch_for_the_same_structure() -> None:
    ours = nn.MLP(2, [16, 8], 3, activation="gelu", dtype=np.float64, rng=0)

    class MLP(torch.nn.Module):  # the same structure, PyTorch's printing and naming
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.Sequential(
                torch.nn.Linear(2, 16),
                torch.nn.GELU(),
                torch.nn.Linear(16, 8),
                torch.nn.GELU(),
                torch.nn.Linear(8, 3),
            )

    theirs = MLP()
    assert [n for n, _ in ours.named_parameters()] == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)


def test_shared_parameter_is_listed_once_but_saved_under_each_name() -> None:
    a = nn.Linear(3, 3, dtype=np.float64, rng=0)
    b = nn.Linear(3, 3, dtype=np.float64, rng=1)
    b.weight = a.weight  # tied weights
    model = nn.Sequential(a, b)
    assert len(list(model.parameters())) == 3
    assert set(model.state_dict()) == {"0.weight", "0.bias", "1.weight", "1.bias"}


def test_train_and_eval_reach_every_submodule() -> None:
    model = nn.MLP(4, [8, 8], 2, dropout=0.5, rng=0)
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_call_runs_forward_and_a_missing_forward_says_so() -> None:
    x = Tensor(np.ones((2, 3)))
    block = Block()
    np.testing.assert_array_equal(block(x).numpy(), block.forward(x).numpy())
    with pytest.raises(TypeError, match="must define forward"):
        nn.Module()(x)


def test_zero_grad_sets_none_or_fills_zeros() -> None:
    model = nn.Linear(3, 2, dtype=np.float64, rng=0)
    model(Tensor(np.ones((4, 3)))).sum().backward()
    weight_grad = model.weight.grad
    assert weight_grad is not None
    model.zero_grad(set_to_none=False)
    assert model.weight.grad is weight_grad and not weight_grad.numpy().any()
    model.zero_grad()
    assert model.weight.grad is None and model.bias is not None and model.bias.grad is None


def test_containers_reject_non_modules_and_index_like_lists() -> None:
    with pytest.raises(TypeError, match="item 1 is a ufunc, not a Module"):
        nn.Sequential(nn.ReLU(), np.tanh)  # type: ignore[arg-type]
    seq = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.Sigmoid())
    assert isinstance(seq[1], nn.Tanh) and len(seq[1:]) == 2
    assert isinstance(seq[1:], nn.Sequential)
    lst = nn.ModuleList().append(nn.ReLU()).extend([nn.Tanh()])
    assert [type(m).__name__ for m in lst] == ["ReLU", "Tanh"]


def test_linear_names_the_wrong_input_size() -> None:
    with pytest.raises(ValueError, match=r"Linear\(3, 2\): the input has shape \(4, 5\)"):
        nn.Linear(3, 2)(Tensor(np.ones((4, 5))))
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        nn.Linear(0, 2)


# -- state dicts ----------------------------------------------------------------------------


def test_state_dict_is_a_snapshot_and_round_trips_into_a_fresh_model() -> None:
    x = Tensor(np.random.default_rng(0).standard_normal((5, 3)))
    source = nn.MLP(3, [6], 2, dtype=np.float64, rng=0)
    state = source.state_dict()
    before = {k: v.copy() for k, v in state.items()}
    for p in source.parameters():
        p.numpy()[...] += 1.0  # later changes of the model do not reach the snapshot
    assert all(np.array_equal(state[k], before[k]) for k in state)

    target = nn.MLP(3, [6], 2, dtype=np.float64, rng=1)
    params_before = [id(p) for p in target.parameters()]
    arrays_before = [id(p.numpy()) for p in target.parameters()]
    versions = [p._version[0] for p in target.parameters()]
    result = target.load_state_dict(state)
    assert result == nn.IncompatibleKeys([], [])
    source.load_state_dict(before)
    np.testing.assert_array_equal(target(x).numpy(), source(x).numpy())
    assert [id(p) for p in target.parameters()] == params_before  # identity kept
    assert [id(p.numpy()) for p in target.parameters()] == arrays_before  # copied in place
    assert all(p._version[0] > v for p, v in zip(target.parameters(), versions, strict=True))


def test_state_dict_loads_from_pytorch_and_gives_pytorch_outputs() -> None:
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    theirs = theirs.double()
    ours = nn.Sequential(
        nn.Linear(4, 5, dtype=np.float64), nn.Tanh(), nn.Linear(5, 2, dtype=np.float64)
    )
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((3, 4))
    np.testing.assert_allclose(
        ours(Tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-13
    )


def test_strict_load_lists_every_mismatch_and_changes_nothing() -> None:
    model = nn.MLP(3, [4], 2, dtype=np.float64, rng=0)
    before = model.state_dict()
    bad = model.state_dict()
    del bad["layers.2.bias"]  # missing
    bad["layers.9.weight"] = np.zeros((2, 2))  # unexpected
    bad["layers.0.weight"] = np.zeros((4, 5))  # wrong shape
    bad["layers.0.bias"] = np.zeros(4, dtype=np.float32)  # wrong dtype
    bad["layers.2.weight"] = np.full((2, 4), 7.0)  # fine on its own, must not be loaded
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(bad)
    message = str(info.value)
    for needle in (
        "4 problems",
        "missing key 'layers.2.bias'",
        "unexpected key 'layers.9.weight'",
        "shape mismatch for 'layers.0.weight': model (4, 3), state dict (4, 5)",
        "dtype mismatch for 'layers.0.bias': model float64, state dict float32",
        "nothing was loaded",
    ):
        assert needle in message
    after = model.state_dict()
    assert all(np.array_equal(after[k], before[k]) for k in before)


def test_non_strict_load_reports_missing_and_unexpected_but_still_checks_shapes() -> None:
    model = nn.Linear(3, 2, dtype=np.float64, rng=0)
    partial = {"weight": np.ones((2, 3)), "extra": np.zeros(1)}
    result = model.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(model.weight.numpy(), np.ones((2, 3)))
    with pytest.raises(RuntimeError, match="shape mismatch for 'weight'"):
        model.load_state_dict({"weight": np.ones((3, 3))}, strict=False)


def test_parameter_is_a_tensor_that_requires_grad() -> None:
    p = nn.Parameter(np.arange(3.0))
    assert isinstance(p, Tensor) and p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:\nTensor([0., 1., 2.]")
    assert type(p * 2) is Tensor  # results of operations are plain tensors
