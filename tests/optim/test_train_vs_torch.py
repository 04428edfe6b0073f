"""Training against PyTorch: the same MLP, the same initial weights and batches, 100 steps.

In float64 the per-step losses and the final weights must agree to 1e-9 relative for
every optimiser configuration (momentum, Nesterov, dampening, weight decay, Adam, AMSGrad,
AdamW), with and without learning-rate schedules and parameter groups.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from chainrule import Tensor, nn, optim

STEPS, BATCH, SIZES = 100, 16, (6, 16, 12, 4)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    # These steps are tiny: PyTorch's thread pool only adds waits, and on a busy machine
    # (tests running in parallel) its spinning threads made each backward 100x slower.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


TORCH_ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "gelu": torch.nn.GELU}


def _models(activation: str) -> tuple[nn.MLP, torch.nn.Sequential]:
    ours = nn.MLP(
        SIZES[0], list(SIZES[1:-1]), SIZES[-1], activation=activation, dtype=np.float64, rng=0
    )
    layers: list[torch.nn.Module] = []
    for k in range(len(SIZES) - 1):
        layers.append(torch.nn.Linear(SIZES[k], SIZES[k + 1]))
        if k < len(SIZES) - 2:
            layers.append(TORCH_ACTIVATIONS[activation]())
    theirs = torch.nn.Sequential(*layers).double()
    # The same initial weights: PyTorch's names are ours without the "layers." prefix.
    theirs.load_state_dict(
        {k.removeprefix("layers."): torch.tensor(v) for k, v in ours.state_dict().items()}
    )
    return ours, theirs


def _batches(task: str) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(42)
    out = []
    for _ in range(STEPS):
        x = rng.standard_normal((BATCH, SIZES[0]))
        if task == "classify":
            y = (x[:, :4].argmax(axis=1) + (x[:, 4] > 1)) % SIZES[-1]  # learnable labels
        else:
            y = np.tanh(x[:, : SIZES[-1]] * x[:, 1:2])
        out.append((x, y))
    return out


# Optimisers and schedules have PyTorch's names and arguments: each config builds both.
# name: (activation, task, optimiser, its arguments, (schedule, its arguments) or None)
CONFIGS: dict[str, tuple[str, str, str, dict[str, Any], Any]] = {
    "sgd": ("tanh", "classify", "SGD", {"lr": 0.1}, None),
    "sgd_momentum": ("relu", "classify", "SGD", {"lr": 0.05, "momentum": 0.9}, None),
    "sgd_nesterov_wd": (
        "relu",
        "classify",
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
        None,
    ),
    "sgd_dampening_wd_steplr": (
        "gelu",
        "regress",
        "SGD",
        {"lr": 0.1, "momentum": 0.8, "dampening": 0.3, "weight_decay": 1e-2},
        ("StepLR", {"step_size": 30, "gamma": 0.5}),
    ),
    "adam": ("relu", "classify", "Adam", {"lr": 1e-2}, None),
    "adam_l2_amsgrad_cosine": (
        "tanh",
        "regress",
        "Adam",
        {"lr": 1e-2, "betas": (0.8, 0.99), "weight_decay": 1e-2, "amsgrad": True},
        ("CosineAnnealingLR", {"T_max": STEPS, "eta_min": 1e-4}),
    ),
    "adamw": ("gelu", "classify", "AdamW", {"lr": 1e-2, "weight_decay": 0.1}, None),
    "adamw_linear_decay": (
        "relu",
        "classify",
        "AdamW",
        {"lr": 2e-2},
        ("LinearLR", {"start_factor": 1.0, "end_factor": 0.0, "total_iters": STEPS}),
    ),
}


def _train(
    name: str, first_group: dict[str, Any] | None = None
) -> tuple[list[float], list[float], nn.MLP, torch.nn.Sequential]:
    """Train both models; ``first_group``: own hyperparameters for the first layer."""
    activation, task, optimiser, arguments, schedule = CONFIGS[name]
    ours, theirs = _models(activation)
    ours_params: Any = list(ours.parameters())
    their_params: Any = list(theirs.parameters())
    if first_group is not None:
        ours_params = [{"params": ours_params[:2], **first_group}, {"params": ours_params[2:]}]
        their_params = [{"params": their_params[:2], **first_group}, {"params": their_params[2:]}]
    opt = getattr(optim, optimiser)(ours_params, **arguments)
    topt = getattr(torch.optim, optimiser)(their_params, **arguments)
    sched = tsched = None
    if schedule is not None:
        kind, kwargs = schedule
        sched = getattr(optim.lr_scheduler, kind)(opt, **kwargs)
        tsched = getattr(torch.optim.lr_scheduler, kind)(topt, **kwargs)
    loss_fn = nn.CrossEntropyLoss() if task == "classify" else nn.MSELoss()
    tloss_fn = torch.nn.CrossEntropyLoss() if task == "classify" else torch.nn.MSELoss()
    losses, tlosses = [], []
    for x, y in _batches(task):
        opt.zero_grad()
        loss = loss_fn(ours(Tensor(x)), y)
        loss.backward()
        opt.step()
        topt.zero_grad()
        tloss = tloss_fn(theirs(torch.tensor(x)), torch.tensor(y))
        tloss.backward()
        topt.step()
        if sched is not None and tsched is not None:
            sched.step()
            tsched.step()
            np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12)
        losses.append(loss.item())
        tlosses.append(tloss.item())
    return losses, tlosses, ours, theirs


def _assert_same_training(
    losses: list[float], tlosses: list[float], ours: nn.MLP, theirs: torch.nn.Sequential
) -> None:
    np.testing.assert_allclose(losses, tlosses, rtol=1e-9, atol=0)
    # It did learn (the last 10 batches vs the first 10): not a comparison of a flat line.
    assert np.mean(losses[-10:]) < 0.9 * np.mean(losses[:10])
    for (name, p), tp in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        np.testing.assert_allclose(p, tp.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_per_step_losses_equal_pytorch_for_100_steps(name: str) -> None:
    _assert_same_training(*_train(name))


@pytest.mark.parametrize(
    ("name", "first_group"),
    [
        ("sgd_momentum", {"lr": 0.02, "momentum": 0.0}),
        ("adamw_linear_decay", {"lr": 5e-3, "betas": (0.5, 0.9), "weight_decay": 0.0}),
    ],
)
def test_parameter_groups_with_their_own_hyperparameters_equal_pytorch(
    name: str, first_group: dict[str, Any]
) -> None:
    _assert_same_training(*_train(name, first_group))
