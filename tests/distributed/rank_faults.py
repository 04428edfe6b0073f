"""Worker for the fault tests. Argument: the fault.

- ``raise``: rank 1 raises ValueError in its third step; the others go on training.
- ``kill``: rank 1 kills itself with SIGKILL in its third step.
- ``structure``: rank 1 builds a model with a different hidden layer.
- ``partial``: the last rank skips an all_reduce the others call and works on (timeout 2 s).
- ``ddp_partial`` / ``ddp_partial_overlap``: the last rank skips a DDP backward pass the
  others run (timeout 2 s), with the all-reduce after backward or overlapped with it.
- ``forever``: every rank trains for ever (the test interrupts it with Ctrl-C).
"""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np


def main() -> None:
    from chainrule import Tensor, nn, optim
    from chainrule import distributed as dist
    from chainrule.nn.parallel import DistributedDataParallel

    fault = sys.argv[1]
    partial = fault.startswith(("partial", "ddp_partial"))
    dist.init_process_group("mpi", timeout=2 if partial else 600)
    rank, world = dist.get_rank(), dist.get_world_size()
    print(f"rank {rank} ready pid {os.getpid()}", flush=True)
    if fault == "partial":
        x = np.ones(3)
        if rank != world - 1:
            dist.all_reduce(x)
        else:
            time.sleep(20)  # busy elsewhere, past the others' deadline
        return
    hidden = [9] if fault == "structure" and rank == 1 else [8]
    model = DistributedDataParallel(nn.MLP(4, hidden, 2), overlap=fault.endswith("overlap"))
    if partial:
        x = Tensor(np.ones((4, 4), dtype=np.float32))
        if rank != world - 1:
            nn.CrossEntropyLoss()(model(x), np.array([0, 1, 0, 1])).backward()
        else:
            time.sleep(20)  # busy elsewhere, past the others' deadline
        return
    opt = optim.SGD(model.parameters(), lr=0.1)
    step = 0
    while True:
        step += 1
        if step == 3 and rank == 1 and fault == "raise":
            raise ValueError("the data of rank 1 ran out")
        if step == 3 and rank == 1 and fault == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        x = np.random.default_rng(step).normal(size=(4, 4)).astype(np.float32)
        opt.zero_grad()
        nn.CrossEntropyLoss()(model(Tensor(x)), np.array([0, 1, 0, 1])).backward()
        opt.step()
        time.sleep(0.01)
        if fault != "forever" and step > 10_000:
            break


if __name__ == "__main__":
    main()
