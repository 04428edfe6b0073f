"""Worker: DDP's four ways to hold and average gradients, on one schedule of passes.

Argument: OUT (npz file rank 0 writes). The same float64 MLP is trained by four DDP
wrappers side by side (``.grad`` as bucket views or not, all-reduce after backward or
overlapped with it), on the same data, through a schedule that exercises what views make
delicate: ``zero_grad()`` dropping them, ``zero_grad(set_to_none=False)`` zeroing them in
place, ``no_sync()`` accumulation, two synced passes without zeroing in between, and a
``.grad`` the user bound to a Tensor of their own. Rank 0 saves every wrapper's gradients
after each step and its final parameters.
"""

from __future__ import annotations

import sys

import numpy as np

# Each step: (how the step starts, passes inside no_sync, synced passes).
SCHEDULE = [
    ("none", 0, 1),
    ("none", 2, 1),  # gradient accumulation: two local passes, then a synced one
    ("zeros", 0, 1),  # zero_grad(set_to_none=False): the views are zeroed in place
    ("zeros", 1, 1),
    ("keep", 0, 2),  # no zero_grad, two synced passes: the second adds to the average
    ("user", 0, 1),  # the user binds .grad of one parameter to a Tensor of their own
    ("none", 0, 1),
]
CONFIGS = [(True, False), (True, True), (False, False), (False, True)]  # (views, overlap)


def main() -> None:
    from chainrule import Tensor, nn, optim
    from chainrule import distributed as dist
    from chainrule.nn.parallel import DistributedDataParallel

    out = sys.argv[1]
    dist.init_process_group("mpi", timeout=60)
    rank, world = dist.get_rank(), dist.get_world_size()
    runs = []
    for views, overlap in CONFIGS:
        net = nn.MLP(5, [7, 6], 3, dtype=np.float64, rng=np.random.default_rng(rank))
        model = DistributedDataParallel(
            net, bucket_cap_mb=2e-4, gradient_as_bucket_view=views, overlap=overlap
        )
        runs.append((net, model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9)))
    data = np.random.default_rng(3)
    loss_fn = nn.CrossEntropyLoss()
    saved: dict[str, np.ndarray] = {}
    for s, (start, local, synced) in enumerate(SCHEDULE):
        batches = []
        for _ in range(local + synced):
            x, y = data.normal(size=(world * 2, 5)), data.integers(0, 3, size=world * 2)
            batches.append((x[rank * 2 : rank * 2 + 2], y[rank * 2 : rank * 2 + 2]))
        for c, (net, model, opt) in enumerate(runs):
            if start in ("none", "zeros"):
                opt.zero_grad(set_to_none=start == "none")
            if start == "user":
                first = next(iter(net.parameters()))
                first.grad = Tensor(np.full(first.shape, 0.5))
            for k, (x, y) in enumerate(batches):
                if k < local:
                    with model.no_sync():
                        loss_fn(model(Tensor(x)), y).backward()
                else:
                    loss_fn(model(Tensor(x)), y).backward()
            for name, p in net.named_parameters():
                saved[f"grad.{c}.{s}.{name}"] = p.grad.numpy().copy()
            opt.step()
    for c, (net, _, _) in enumerate(runs):
        for name, value in net.state_dict().items():
            saved[f"final.{c}.{name}"] = value
    views = runs[0][0]
    saved["is_view"] = np.array(
        [p.grad.numpy().base is not None for p in views.parameters()], dtype=bool
    )
    if rank == 0:
        np.savez(out, **saved)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
