"""Optimiser behaviour: in-place updates, stale graphs, validation, saving and resuming,
and the learning-rate schedules against PyTorch's."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from chainrule import Tensor, nn, optim

X = np.random.default_rng(0).standard_normal((32, 3))
Y = np.random.default_rng(1).integers(0, 2, 32)


def _step(model: nn.Module, opt: optim.Optimizer, x: np.ndarray = X) -> float:
    opt.zero_grad()
    loss = nn.CrossEntropyLoss()(model(Tensor(x)), Y[: len(x)])
    loss.backward()
    opt.step()
    return float(loss.item())


OPTIMISERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "adam": lambda p: optim.Adam(p, lr=1e-2, weight_decay=1e-2, amsgrad=True),
    "adamw": lambda p: optim.AdamW(p, lr=1e-2),
}


@pytest.mark.parametrize("name", list(OPTIMISERS))
def test_step_updates_in_place_and_bumps_versions_without_recording(name: str) -> None:
    model = nn.MLP(3, [8], 2, dtype=np.float64, rng=0)
    opt = OPTIMISERS[name](model.parameters())
    params = list(model.parameters())
    arrays = [p.numpy() for p in params]
    _step(model, opt)
    grads = [p.grad.numpy().copy() for p in params]  # type: ignore[union-attr]
    before = [a.copy() for a in arrays]
    versions = [p._version[0] for p in params]
    opt.step()
    for p, a, b, g, v in zip(params, arrays, before, grads, versions, strict=True):
        assert p.numpy() is a  # the same array, changed in place
        assert not np.array_equal(a, b)
        assert p._version[0] == v + 1
        assert p.is_leaf and p.grad is not None
        np.testing.assert_array_equal(p.grad.numpy(), g)  # .grad is read, never written
    assert all(a is b for a, b in zip(model.parameters(), params, strict=True))


def test_a_graph_recorded_before_a_step_is_detected_as_stale() -> None:
    model = nn.Linear(3, 1, dtype=np.float64, rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    first = model(Tensor(X)).sum()
    second = model(Tensor(X)).sum()  # recorded with the weights before the step
    first.backward()
    opt.step()
    with pytest.raises(RuntimeError, match="modified in place"):
        second.backward()


@pytest.mark.parametrize("owner", ["optimiser", "module"])
def test_zeroing_grads_in_place_makes_a_graph_that_saved_them_stale(owner: str) -> None:
    # With create_graph the gradient is itself a tensor that later ops may save; filling it
    # with 0 (set_to_none=False) must not silently change what they saved.
    model = nn.Linear(2, 1, dtype=np.float64, rng=0)
    (model(Tensor(X[:, :2])) ** 2).sum().backward(create_graph=True)
    g = model.weight.grad
    assert g is not None
    penalty = (g * g).sum()  # saves g
    if owner == "optimiser":
        optim.SGD(model.parameters(), lr=0.1).zero_grad(set_to_none=False)
    else:
        model.zero_grad(set_to_none=False)
    assert not g.numpy().any()
    with pytest.raises(RuntimeError, match="modified in place"):
        penalty.backward()


def test_scratch_buffers_are_allocated_once() -> None:
    model = nn.Linear(3, 2, dtype=np.float64, rng=0)
    opt = optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    _step(model, opt)
    buffers = [id(b) for bufs in opt._scratch.values() for b in bufs]
    moments = [id(s["exp_avg"]) for s in opt.state.values()]
    for _ in range(3):
        _step(model, opt)
    assert [id(b) for bufs in opt._scratch.values() for b in bufs] == buffers
    assert [id(s["exp_avg"]) for s in opt.state.values()] == moments


def test_float32_parameters_stay_float32() -> None:
    model = nn.Linear(3, 2, dtype=np.float32, rng=0)
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    _step(model, opt, X.astype(np.float32))
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert all(
        v.dtype == np.float32
        for s in opt.state.values()
        for v in s.values()
        if isinstance(v, np.ndarray)
    )


def test_zero_grad_and_closure() -> None:
    model = nn.Linear(3, 2, dtype=np.float64, rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    _step(model, opt)
    grad = model.weight.grad
    opt.zero_grad(set_to_none=False)
    assert model.weight.grad is grad and not grad.numpy().any()  # type: ignore[union-attr]
    opt.zero_grad()
    assert model.weight.grad is None

    def closure() -> Any:
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(Tensor(X)), Y)
        loss.backward()
        return loss

    weight = model.weight.numpy().copy()
    loss = opt.step(closure)
    assert isinstance(loss, Tensor) and not np.array_equal(model.weight.numpy(), weight)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: optim.SGD(p, lr=0), "SGD: lr must be a number > 0, got 0"),
        (lambda p: optim.SGD(p, lr=-1.0), "lr must be a number > 0, got -1.0"),
        (lambda p: optim.Adam(p, lr=float("nan")), "Adam: lr must be a number > 0, got nan"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "momentum must be a number >= 0"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov=True needs momentum > 0"),
        (
            lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
            "and dampening = 0",
        ),
        (lambda p: optim.Adam(p, betas=(0.9, 1.0)), r"betas\[1\] must be a number in \[0, 1\)"),
        (lambda p: optim.Adam(p, betas=(0.9,)), "betas must be a pair"),
        (lambda p: optim.AdamW(p, eps=-1e-8), "AdamW: eps must be a number >= 0"),
        (lambda p: optim.AdamW(p, weight_decay=-0.1), "weight_decay must be a number >= 0"),
        (lambda p: optim.SGD([], lr=0.1), "empty list of parameters"),
        (
            lambda p: optim.SGD([{"params": p, "momentun": 0.9}], lr=0.1),
            r"unknown hyperparameter\(s\) \['momentun'\]",
        ),
    ],
)
def test_invalid_arguments_are_rejected_with_clear_errors(make: Any, message: str) -> None:
    model = nn.Linear(3, 2, rng=0)
    with pytest.raises((ValueError, TypeError), match=message):
        make(list(model.parameters()))


def test_parameters_must_be_trainable_leaves_given_once() -> None:
    w = nn.Parameter(np.ones(3))
    with pytest.raises(ValueError, match="given twice"):
        optim.SGD([w, w], lr=0.1)
    with pytest.raises(ValueError, match="not a leaf tensor that requires grad"):
        optim.SGD([w * 2], lr=0.1)
    with pytest.raises(TypeError, match="parameter 0 is a ndarray, not a Tensor"):
        optim.SGD([np.ones(3)], lr=0.1)  # type: ignore[list-item]


# -- saving and resuming --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(OPTIMISERS))
def test_resuming_from_state_dicts_equals_training_without_a_break(name: str) -> None:
    batches = [np.random.default_rng(10 + i).standard_normal((32, 3)) for i in range(20)]
    model = nn.MLP(3, [8], 2, dtype=np.float64, rng=0)
    opt = OPTIMISERS[name](model.parameters())
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)
    straight = []
    for i, x in enumerate(batches):
        straight.append(_step(model, opt, x))
        sched.step()
        if i == 9:
            saved = (model.state_dict(), opt.state_dict(), sched.state_dict())

    model2 = nn.MLP(3, [8], 2, dtype=np.float64, rng=99)
    opt2 = OPTIMISERS[name](model2.parameters())
    sched2 = optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=20)
    model2.load_state_dict(saved[0])
    opt2.load_state_dict(saved[1])
    sched2.load_state_dict(saved[2])
    resumed = []
    for x in batches[10:]:
        resumed.append(_step(model2, opt2, x))
        sched2.step()
    assert resumed == straight[10:]  # bit for bit
    state = opt2.state_dict()["state"]
    assert state and all(len(s) > 0 for s in state.values())


def test_optimiser_state_dict_is_a_snapshot() -> None:
    model = nn.Linear(3, 2, dtype=np.float64, rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _step(model, opt)
    saved = opt.state_dict()
    buffer = saved["state"][0]["momentum_buffer"].copy()
    _step(model, opt)
    np.testing.assert_array_equal(saved["state"][0]["momentum_buffer"], buffer)
    assert saved["param_groups"][0]["params"] == [0, 1]
    assert saved["param_groups"][0]["momentum"] == 0.9


def test_optimiser_load_lists_every_mismatch_and_changes_nothing() -> None:
    small = nn.Linear(3, 2, dtype=np.float64, rng=0)
    opt_small = optim.Adam(small.parameters(), lr=1e-2)
    _step(small, opt_small)
    big = nn.Linear(3, 4, dtype=np.float64, rng=0)
    opt_big = optim.Adam(big.parameters(), lr=5e-3)
    with pytest.raises(ValueError) as info:
        opt_big.load_state_dict(opt_small.state_dict())
    message = str(info.value)
    assert "state 'exp_avg' of parameter 0: shape (2, 3), parameter (4, 3)" in message
    assert "state 'exp_avg_sq' of parameter 1: shape (2,), parameter (4,)" in message
    assert "nothing was loaded" in message
    assert opt_big.param_groups[0]["lr"] == 5e-3 and not opt_big.state

    lone = optim.Adam([nn.Parameter(np.zeros((2, 3)))], lr=1e-2)
    with pytest.raises(ValueError, match="group 0: 2 parameters saved, 1 here"):
        lone.load_state_dict(opt_small.state_dict())


# -- learning-rate schedules ----------------------------------------------------------------

SCHEDULES = [
    ("StepLR", {"step_size": 7, "gamma": 0.3}),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.0, "total_iters": 40}),
    ("LinearLR", {"start_factor": 0.25, "end_factor": 1.0, "total_iters": 10}),
    ("CosineAnnealingLR", {"T_max": 40, "eta_min": 1e-3}),
]


@pytest.mark.parametrize(("kind", "kwargs"), SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_schedules_match_pytorch(kind: str, kwargs: dict[str, Any]) -> None:
    groups = [
        {"params": [nn.Parameter(np.zeros(2))], "lr": 0.5},
        {"params": [nn.Parameter(np.zeros(2))], "lr": 0.1},
    ]
    tgroups = [
        {"params": [torch.zeros(2, requires_grad=True)], "lr": 0.5},
        {"params": [torch.zeros(2, requires_grad=True)], "lr": 0.1},
    ]
    opt, topt = optim.SGD(groups, lr=1.0), torch.optim.SGD(tgroups, lr=1.0)
    sched = getattr(optim.lr_scheduler, kind)(opt, **kwargs)
    tsched = getattr(torch.optim.lr_scheduler, kind)(topt, **kwargs)
    for _ in range(50):
        np.testing.assert_allclose(
            sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12, atol=1e-16
        )
        assert [g["lr"] for g in opt.param_groups] == sched.get_last_lr()
        opt.step()
        topt.step()
        sched.step()
        tsched.step()


def test_schedule_formulas_at_known_points() -> None:
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=2.0)
    cosine = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    lrs = [cosine.get_last_lr()[0]]
    for _ in range(4):
        cosine.step()
        lrs.append(cosine.get_last_lr()[0])
    np.testing.assert_allclose(
        lrs, [2.0, 1 + math.sqrt(0.5), 1.0, 1 - math.sqrt(0.5), 0.0], atol=1e-15
    )
    with pytest.raises(ValueError, match="StepLR: step_size must be a positive int, got 0"):
        optim.lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(TypeError, match="expected an optimiser"):
        optim.lr_scheduler.StepLR(object(), step_size=2)  # type: ignore[arg-type]
