"""DDP's .grad as bucket views equals the engine's own .grad arrays, step after step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainrule import Tensor, nn, optim

from .mpi_helpers import run_ranks
from .rank_views import CONFIGS, SCHEDULE


def one_process(world: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The oracle: rank 0's start, the whole batches, the same schedule of passes."""
    net = nn.MLP(5, [7, 6], 3, dtype=np.float64, rng=np.random.default_rng(0))
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    data = np.random.default_rng(3)
    loss_fn = nn.CrossEntropyLoss()
    grads = {}
    for s, (start, local, synced) in enumerate(SCHEDULE):
        if start in ("none", "zeros"):
            opt.zero_grad(set_to_none=start == "none")
        if start == "user":
            first = next(iter(net.parameters()))
            # Each rank's own .grad of 0.5 enters the average: still 0.5.
            first.grad = Tensor(np.full(first.shape, 0.5))
        for _ in range(local + synced):
            x, y = data.normal(size=(world * 2, 5)), data.integers(0, 3, size=world * 2)
            loss_fn(net(Tensor(x)), y).backward()
        for name, p in net.named_parameters():
            grads[f"{s}.{name}"] = p.grad.numpy().copy()
        opt.step()
    return grads, net.state_dict()


@pytest.mark.parametrize("world", [2, 3])
def test_bucket_view_grads_equal_the_engines_own_after_every_step(
    tmp_path: Path, world: int
) -> None:
    out = tmp_path / "views.npz"
    r = run_ranks(world, "rank_views.py", str(out))
    assert r.returncode == 0, r.stderr
    saved = np.load(out)
    assert saved["is_view"].all()  # the view wrappers' .grad really are views
    grads, final = one_process(world)
    plain = CONFIGS.index((False, False))  # the engine's own .grad, copied in and out
    for c in range(len(CONFIGS)):
        for key, expected in grads.items():
            got = saved[f"grad.{c}.{key}"]
            np.testing.assert_allclose(
                got, saved[f"grad.{plain}.{key}"], rtol=0, atol=1e-12, err_msg=f"{c} {key}"
            )
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12, err_msg=f"{c} {key}")
        for name, value in final.items():
            np.testing.assert_allclose(saved[f"final.{c}.{name}"], value, rtol=0, atol=1e-12)
