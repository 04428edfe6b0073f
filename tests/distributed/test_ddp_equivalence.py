"""N ranks with per-rank batch b train like one process with batch N·b (float64, 1e-10)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainrule import Tensor, nn, optim

from .mpi_helpers import run_ranks

STEPS, B = 50, 5


def single_process(
    initial: dict[str, np.ndarray], opt_name: str, world: int
) -> dict[str, np.ndarray]:
    """The reference: one process, batch world·B, the same data stream, rank 0's start."""
    net = nn.MLP(6, [16, 8], 4, dtype=np.float64)
    net.load_state_dict(initial)
    params = list(net.parameters())
    opt = (
        optim.SGD(params, lr=0.05, momentum=0.9)
        if opt_name == "sgd"
        else optim.AdamW(params, lr=0.01, weight_decay=0.1)
    )
    data = np.random.default_rng(0)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(STEPS):
        x = data.normal(size=(world * B, 6))
        y = data.integers(0, 4, size=world * B)
        opt.zero_grad()
        loss_fn(net(Tensor(x)), y).backward()
        opt.step()
    return net.state_dict()


@pytest.mark.parametrize(
    ("world", "opt_name", "cap_mb"),
    [(2, "sgd", 25.0), (2, "adamw", 25.0), (3, "sgd", 0.0005), (3, "adamw", 0.0005)],
)
def test_ddp_matches_one_process_with_the_whole_batch(
    tmp_path: Path, world: int, opt_name: str, cap_mb: float
) -> None:
    out = tmp_path / "final.npz"
    r = run_ranks(world, "rank_equivalence.py", opt_name, str(STEPS), str(B), str(cap_mb), str(out))
    assert r.returncode == 0, r.stderr
    saved = np.load(out)
    initial = {k[len("initial.") :]: saved[k] for k in saved.files if k.startswith("initial.")}
    final = {k[len("final.") :]: saved[k] for k in saved.files if k.startswith("final.")}
    expected = single_process(initial, opt_name, world)
    for name, value in expected.items():
        moved = np.abs(value - initial[name]).max()
        assert moved > 1e-3, f"{name} barely trained: the test would prove nothing"
        np.testing.assert_allclose(final[name], value, rtol=0, atol=1e-10, err_msg=name)
