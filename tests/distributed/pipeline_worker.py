"""Run under mpiexec by tests/distributed/test_pipeline_mpi.py: one rank = one stage.

``python pipeline_worker.py equiv``: for both schedules and M in {1, 2, 8}, the pipeline's
gradients (step 1) and parameters (after 20 optimizer steps) must equal single-process
training of the same model on the same batches (float64, 1e-10), also with recomputation
(GPipe M = 8, 1F1B M = 2); 1F1B's peak activation memory must be below GPipe's on every
stage at M = 8, and GPipe's with recomputation on every stage of more than one layer.
Prints ``EQUIV OK`` on each rank.
``raise`` / ``kill``: stage 1 raises / is killed at its third micro-batch of step 2.
``mismatch``: stage 0 outputs 5 features where stage 1's first Linear takes 8.
``badbatch``: stage 0 is given a batch of 10 rows for 4 micro-batches in step 2.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import numpy as np

import chainrule.distributed as dist
from chainrule import Tensor, nn, optim
from chainrule.distributed.pipelining import (
    PipelineStage,
    Schedule1F1B,
    ScheduleGPipe,
    split_sequential,
)
from chainrule.distributed.pipelining._comm import communicator

TOL = 1e-10
STEPS = 20
BATCH = 16


def make_model(seed: int) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    f64 = np.float64
    return nn.Sequential(
        nn.Linear(6, 8, dtype=f64, rng=rng), nn.Tanh(),
        nn.Linear(8, 8, dtype=f64, rng=rng), nn.Tanh(),
        nn.Linear(8, 8, dtype=f64, rng=rng), nn.Tanh(),
        nn.Linear(8, 3, dtype=f64, rng=rng),
    )  # fmt: skip


def make_optimizer(kind: str, params: Any) -> optim.Optimizer:
    if kind == "sgd":
        return optim.SGD(params, lr=0.05, momentum=0.9)
    return optim.Adam(params, lr=0.01)


def batches() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(123)
    return [(rng.normal(size=(BATCH, 6)), rng.normal(size=(BATCH, 3))) for _ in range(STEPS)]


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b)
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


def equiv(rank: int, k: int) -> None:
    data = batches()
    peaks: dict[str, int] = {}
    combos = [(c, m, False) for c in (ScheduleGPipe, Schedule1F1B) for m in (1, 2, 8)]
    combos += [(ScheduleGPipe, 8, True), (Schedule1F1B, 2, True)]  # with recomputation
    for n, (sched_cls, m, recompute) in enumerate(combos):
        opt_kind = ("sgd", "adam")[n % 2]
        ref = make_model(7)
        ref_opt = make_optimizer(opt_kind, ref.parameters())
        pipe = make_model(7)
        parts = split_sequential(pipe, k)
        mine = parts[rank]
        # The reference layers at the same positions as this stage's.
        pos = [next(i for i, layer in enumerate(pipe) if layer is ml) for ml in mine]
        ref_params = [p for i in pos for p in ref[i].parameters()]
        stage = PipelineStage(mine, rank, k, recompute=recompute)
        schedule = sched_cls(stage, m, nn.MSELoss())
        opt = make_optimizer(opt_kind, mine.parameters())
        for step, (x, y) in enumerate(data):
            ref_opt.zero_grad()
            ref_loss = nn.MSELoss()(ref(Tensor(x)), y)
            ref_loss.backward()
            opt.zero_grad()
            losses: list[Tensor] = []
            if rank == 0 and k == 1:
                out = schedule.step(x, target=y, losses=losses)
            elif rank == 0:
                out = schedule.step(x)
            elif rank == k - 1:
                out = schedule.step(target=y, losses=losses)
            else:
                out = schedule.step()
            if rank == k - 1:
                assert out is not None and len(losses) == m
                assert abs(out.item() - ref_loss.item()) < TOL, (out.item(), ref_loss.item())
            if step == 0:
                d = max_diff(
                    [p.grad.numpy() for p in mine.parameters()],  # type: ignore[union-attr]
                    [p.grad.numpy() for p in ref_params],  # type: ignore[union-attr]
                )
                assert d < TOL, f"{sched_cls.__name__} M={m}: gradients differ by {d}"
            opt.step()
            ref_opt.step()
        d = max_diff([p.numpy() for p in mine.parameters()], [p.numpy() for p in ref_params])
        assert d < TOL, f"{sched_cls.__name__} M={m}: parameters differ by {d} after {STEPS}"
        start = make_model(7)
        moved = max_diff([p.numpy() for p in mine.parameters()],
                         [p.numpy() for i in pos for p in start[i].parameters()])  # fmt: skip
        assert moved > 1e-3, "training did not change the parameters"
        extra = " recompute" if recompute else ""
        print(f"rank {rank}: {sched_cls.__name__} M={m}{extra} {opt_kind}: ok", flush=True)
        if m == 8:
            peaks[sched_cls.__name__ + extra] = stage.peak_activation_bytes
    assert peaks["Schedule1F1B"] < peaks["ScheduleGPipe"], peaks
    # Recomputation frees what a stage keeps between its input and output: nothing on a
    # stage of one layer or of a Linear and its Tanh (Tanh's rule reads its output, which
    # the stage holds anyway, and no rule reads the Linear's), something on longer stages.
    assert peaks["ScheduleGPipe recompute"] <= peaks["ScheduleGPipe"], peaks
    if len(split_sequential(make_model(7), k)[rank]) > 2:
        assert peaks["ScheduleGPipe recompute"] < peaks["ScheduleGPipe"], peaks
    print(f"rank {rank}: peak activation bytes at M=8: {peaks}", flush=True)
    print(f"rank {rank}: EQUIV OK", flush=True)


class Fault(nn.Module):
    """Identity until the third micro-batch of step 2, then raises or kills its process."""

    def __init__(self, how: str) -> None:
        self.how, self.calls = how, 0

    def forward(self, x: Any) -> Any:
        self.calls += 1
        if self.calls == 4 + 3:  # step 2 (4 micro-batches each), third micro-batch
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("injected failure in this stage's forward")
        return x


def fault(rank: int, k: int, how: str) -> None:
    model = make_model(7)
    parts = split_sequential(model, k)
    if how == "mismatch" and rank == 0:
        parts[0] = nn.Sequential(nn.Linear(6, 5, dtype=np.float64, rng=0))
    mine = (
        nn.Sequential(*parts[rank], Fault(how)) if rank == 1 and how != "mismatch" else parts[rank]
    )
    schedule = ScheduleGPipe(PipelineStage(mine, rank, k), 4, nn.MSELoss())
    for step, (x, y) in enumerate(batches()[:3]):
        if rank == 0:
            schedule.step(x[:10] if how == "badbatch" and step == 1 else x)
        elif rank == k - 1:
            schedule.step(target=y)
        else:
            schedule.step()
    print(f"rank {rank}: finished without the fault", flush=True)


if __name__ == "__main__":
    comm = communicator()
    if sys.argv[1] == "equiv" and comm.Get_size() == 4:
        # With a default process group the stages talk over its communicator.
        group = dist.init_process_group("mpi")
        assert PipelineStage(make_model(7), comm.Get_rank(), 4).comm is group.comm
        print(f"rank {comm.Get_rank()}: stages use the default process group", flush=True)
    if sys.argv[1] == "equiv":
        equiv(comm.Get_rank(), comm.Get_size())
    else:
        fault(comm.Get_rank(), comm.Get_size(), sys.argv[1])
