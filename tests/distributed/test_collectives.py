"""Collectives on 2 and 3 ranks, DDP's no_sync accumulation and bucket order, one-rank worlds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chainrule import Tensor, nn

from .mpi_helpers import env, run_ranks


@pytest.mark.parametrize("world", [2, 3])
def test_collectives_and_ddp_accumulation(tmp_path: Path, world: int) -> None:
    out = tmp_path / "report.json"
    r = run_ranks(world, "rank_checks.py", str(out))
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    ranks = np.arange(world)
    vals = np.stack([ranks + 1.0, 10.0 - ranks], axis=1)  # row r: rank r's values
    np.testing.assert_array_equal(rep["SUM"], vals.sum(0))
    np.testing.assert_array_equal(rep["PRODUCT"], vals.prod(0))
    np.testing.assert_array_equal(rep["MIN"], vals.min(0))
    np.testing.assert_array_equal(rep["MAX"], vals.max(0))
    np.testing.assert_allclose(rep["AVG"], vals.mean(0), rtol=1e-15)
    src = np.arange(6.0).reshape(2, 3) * world  # rank world-1's tensor
    expected = np.arange(6.0).reshape(2, 3)  # rank 0's, with columns 0 and 2 from src
    expected[:, ::2] = src[:, ::2]
    np.testing.assert_array_equal(rep["broadcast"], expected)
    assert rep["gathered"] == [{"rank": r, "tag": "r" * r} for r in range(world)]

    # The oracle: one process, rank 0's initial weights, the three whole batches' gradients
    # accumulated (each the mean over world*2 samples), as DDP's no_sync passes add up.
    net = nn.MLP(3, [5, 4], 2, dtype=np.float64)
    net.load_state_dict({k: np.array(v) for k, v in rep["initial"].items()})
    for x, y in zip(rep["xs"], rep["ys"], strict=True):
        nn.CrossEntropyLoss()(net(Tensor(np.array(x))), np.array(y)).backward()
    for name, p in net.named_parameters():
        np.testing.assert_allclose(rep["grads"][name], p.grad.numpy(), rtol=0, atol=1e-13)
        np.testing.assert_allclose(
            rep["after_step"][name], p.numpy() - 0.1 * p.grad.numpy(), rtol=0, atol=1e-13
        )
    assert rep["local_after_no_sync_differs"]  # no_sync passes did not communicate
    # Six parameters in six buckets, all started by the gradient hooks during the pass
    # (overlapping backward), none left for after it.
    assert rep["n_buckets"] == 6
    assert rep["buckets_started_in_pass"] == 6


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env()
    )


def test_a_process_started_without_mpiexec_is_a_world_of_one() -> None:
    r = run_python(
        "import numpy as np, chainrule.distributed as dist\n"
        "from chainrule import nn\n"
        "from chainrule.nn.parallel import DistributedDataParallel\n"
        "dist.init_process_group('mpi')\n"
        "x = np.array([2.0]); dist.all_reduce(x); dist.barrier()\n"
        "m = DistributedDataParallel(nn.Linear(2, 1))\n"
        "print(dist.get_rank(), dist.get_world_size(), x[0], dist.all_gather_object('a'))\n"
        "dist.destroy_process_group(); print(dist.is_initialized())\n"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["0 1 2.0 ['a']", "False"]


def test_without_mpi4py_everything_else_works_and_the_error_names_the_extra() -> None:
    r = run_python(
        "import sys; sys.modules['mpi4py'] = None  # as if not installed\n"
        "import chainrule, chainrule.distributed as dist, chainrule.data\n"
        "from chainrule.nn.parallel import DistributedDataParallel\n"
        "from chainrule.data import DistributedSampler\n"
        "print(list(DistributedSampler(range(4), num_replicas=2, rank=0, shuffle=False)))\n"
        "try:\n"
        "    dist.init_process_group('mpi')\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    assert r.returncode == 0, r.stderr
    assert "[0, 2]" in r.stdout
    assert "pip install 'chainrule[distributed]'" in r.stdout


def test_errors_before_init_and_bad_arguments_say_what_to_do() -> None:
    import chainrule.distributed as dist

    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(ValueError, match="backend 'nccl' is not available"):
        dist.init_process_group("nccl")
    with pytest.raises(ValueError, match="timeout must be positive"):
        dist.init_process_group("mpi", timeout=0)
    assert not dist.is_initialized()
