"""Worker: collectives and DDP details checked on every rank; rank 0 writes a JSON report.

Argument: OUT (the JSON file). The test compares the numbers with oracles computed in the
test process (one process, the whole batch).
"""

from __future__ import annotations

import json
import sys

import numpy as np


def main() -> None:
    from chainrule import Tensor, nn, optim
    from chainrule import distributed as dist
    from chainrule.nn.parallel import DistributedDataParallel

    out = sys.argv[1]
    dist.init_process_group("mpi", timeout=60)
    rank, world = dist.get_rank(), dist.get_world_size()
    report: dict[str, object] = {"world": world}

    values = np.array([rank + 1.0, 10.0 - rank])
    for op in ("SUM", "PRODUCT", "MIN", "MAX", "AVG"):
        x = values.copy()
        dist.all_reduce(x, op=dist.ReduceOp[op])
        report[op] = x.tolist()
    t = Tensor(np.arange(6.0).reshape(2, 3) * (rank + 1))
    view = t.numpy()[:, ::2]  # a non-contiguous array goes through a copy and back
    dist.broadcast(view, src=world - 1)
    report["broadcast"] = t.numpy().tolist()
    report["gathered"] = dist.all_gather_object({"rank": rank, "tag": "r" * rank})

    # DDP: gradient accumulation with no_sync (two local passes, then a synced one), many
    # small buckets, and the order in which the buckets start.
    net = nn.MLP(3, [5, 4], 2, dtype=np.float64, rng=np.random.default_rng(rank))
    # One parameter per bucket, all-reduced from the hooks during backward (overlap=True).
    model = DistributedDataParallel(net, bucket_cap_mb=1e-5, overlap=True)
    data = np.random.default_rng(7)
    xs = [data.normal(size=(world * 2, 3)) for _ in range(3)]
    ys = [data.integers(0, 2, size=world * 2) for _ in range(3)]
    mine = slice(rank * 2, rank * 2 + 2)
    loss_fn = nn.CrossEntropyLoss()
    with model.no_sync():
        for k in range(2):
            loss_fn(model(Tensor(xs[k][mine])), ys[k][mine]).backward()
    local = {n: p.grad.numpy().copy() for n, p in net.named_parameters()}
    loss_fn(model(Tensor(xs[2][mine])), ys[2][mine]).backward()
    report["n_buckets"] = len(model._buckets)
    report["buckets_started_in_pass"] = model.buckets_started_in_pass
    report["grads"] = {n: p.grad.numpy().tolist() for n, p in net.named_parameters()}
    report["local_after_no_sync_differs"] = bool(
        dist.all_gather_object({n: v.tolist() for n, v in local.items()})[0]
        != dist.all_gather_object({n: v.tolist() for n, v in local.items()})[-1]
    )
    initial = {
        n: v.tolist()
        for n, v in nn.MLP(3, [5, 4], 2, dtype=np.float64, rng=np.random.default_rng(0))
        .state_dict()
        .items()
    }
    report["initial"] = initial
    report["xs"] = [x.tolist() for x in xs]
    report["ys"] = [y.tolist() for y in ys]
    optim.SGD(model.parameters(), lr=0.1).step()  # the averaged grads are what step reads
    report["after_step"] = {n: v.tolist() for n, v in net.state_dict().items()}
    if rank == 0:
        with open(out, "w") as f:
            json.dump(report, f)
    dist.destroy_process_group()
    report_after = dist.is_initialized()
    assert report_after is False


if __name__ == "__main__":
    main()
