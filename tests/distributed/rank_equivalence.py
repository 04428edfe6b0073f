"""Worker: train a float64 MLP with DDP on this rank's slice of each global batch.

Arguments: OPTIMIZER (sgd or adamw), STEPS, PER_RANK_BATCH, BUCKET_CAP_MB, OUT (npz file
rank 0 writes: the final parameters, and the initial ones of rank 0 before broadcast).
"""

from __future__ import annotations

import sys

import numpy as np


def main() -> None:
    from chainrule import Tensor, nn, optim
    from chainrule import distributed as dist
    from chainrule.nn.parallel import DistributedDataParallel

    opt_name, steps, b, cap, out = sys.argv[1:6]
    steps_n, b_n = int(steps), int(b)
    dist.init_process_group("mpi", timeout=60)
    rank, world = dist.get_rank(), dist.get_world_size()
    net = nn.MLP(6, [16, 8], 4, dtype=np.float64, rng=np.random.default_rng(10 + rank))
    initial = {k: v.copy() for k, v in net.state_dict().items()}
    model = DistributedDataParallel(net, bucket_cap_mb=float(cap))
    params = list(model.parameters())
    opt = (
        optim.SGD(params, lr=0.05, momentum=0.9)
        if opt_name == "sgd"
        else optim.AdamW(params, lr=0.01, weight_decay=0.1)
    )
    data = np.random.default_rng(0)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(steps_n):
        x = data.normal(size=(world * b_n, 6))
        y = data.integers(0, 4, size=world * b_n)
        mine = slice(rank * b_n, (rank + 1) * b_n)
        opt.zero_grad()
        loss_fn(model(Tensor(x[mine])), y[mine]).backward()
        opt.step()
    if rank == 0:
        final = {k: v for k, v in net.state_dict().items()}
        np.savez(
            out,
            **{"final." + k: v for k, v in final.items()},
            **{"initial." + k: v for k, v in initial.items()},
        )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
