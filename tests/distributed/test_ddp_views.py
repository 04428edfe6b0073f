"""DDP's .grad as bucket views equals the engine's own .grad arrays, step after step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainrule import Tensor, nn, optim

from .mpi_helpers import run_ranks
from .rank_views import CONFIGS, SCHEDULE
from .test_collectives import run_python


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


WORLD_OF_ONE = """
import numpy as np, chainrule.distributed as dist
from chainrule import Tensor, nn, optim
from chainrule.nn.parallel import DistributedDataParallel
dist.init_process_group('mpi')
net = nn.MLP(3, [4], 2, dtype=np.float64, rng=np.random.default_rng(0))
ref = nn.MLP(3, [4], 2, dtype=np.float64, rng=np.random.default_rng(0))
model = DistributedDataParallel(net)
x, y = Tensor(np.random.default_rng(1).normal(size=(5, 3))), np.array([0, 1, 1, 0, 1])
flat = model._flats[0]
for m in (model, ref):
    nn.CrossEntropyLoss()(m(x), y).backward()
    nn.CrossEntropyLoss()(m(x), y).backward()
views = [p.grad.numpy() for p in net.parameters()]
print(all(np.shares_memory(v, flat) for v in views))
print(max(float(np.abs(p.grad.numpy() - q.grad.numpy()).max())
          for p, q in zip(net.parameters(), ref.parameters())))
optim.SGD(net.parameters(), lr=0.1).zero_grad(set_to_none=False)
print(float(np.abs(flat).max()), all(p.grad is not None for p in net.parameters()))
optim.SGD(net.parameters(), lr=0.1).zero_grad()
print(all(p.grad is None for p in net.parameters()))
try:
    DistributedDataParallel(net)
except ValueError as e:
    print(e)
"""


def test_in_a_world_of_one_grads_are_views_and_a_second_wrapper_is_refused() -> None:
    r = run_python(WORLD_OF_ONE)
    assert r.returncode == 0, r.stderr
    views, diff, zeroed, none, refused = r.stdout.strip().split("\n")
    assert views == "True"  # every .grad is a view into the flat buffer
    assert float(diff) < 1e-15  # two accumulated passes, as without DDP
    assert zeroed == "0.0 True"  # set_to_none=False zeros the views in place, keeps them
    assert none == "True"
    assert "parameter 'layers.0.weight' already has its .grad in the buckets" in refused
