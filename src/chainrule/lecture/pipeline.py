"""When the model does not fit one process: a deep MLP trained as a pipeline of K stages.

Each MPI rank builds only its own stage's layers (so the whole model never exists in
one process), trains with Adam on the task y = sin(x), and records when each of its
micro-batches' forwards and backwards ran. Rank 0 gathers the records and reports the
measured bubble next to the tick model's (K - 1)/(M + K - 1), each stage's peak
activation memory, and draws the Gantt chart (``chainrule pipeline``).

The memory cap (``memory_cap_mb``) is a limit the operating system enforces: each rank
sets ``RLIMIT_DATA`` (private writable memory: NumPy's arrays, Python's heap) to what it
already uses after start-up plus the cap, so the cap counts the run's parameters,
gradients, optimizer state and activations, not the interpreter, MPI's shared-memory
segments or the BLAS library. An array that would cross it raises ``MemoryError``.
(``RLIMIT_AS``, the address space, is not used: Open MPI and OpenBLAS reserve large
mappings they never touch, so a cap on it measures them instead of the model.)
"""

from __future__ import annotations

import itertools
import resource
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule import nn, optim
from chainrule.distributed.pipelining import (
    PipelineStage,
    Schedule1F1B,
    ScheduleGPipe,
    gpipe_bubble_formula,
    tick_bubble,
)
from chainrule.distributed.pipelining._comm import abort, communicator
from chainrule.distributed.pipelining.stage import balanced_cuts

SCHEDULES = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}
MB = 2**20


@dataclass(frozen=True)
class PipelineConfig:
    """One pipeline run: K stages, M micro-batches, the model and the training."""

    stages: int = 2
    microbatches: int = 4
    schedule: str = "1f1b"
    steps: int = 20
    batch: int = 64
    width: int = 256
    layers: int = 8  # Linear(width, width) layers, Tanh between them
    lr: float = 1e-3
    seed: int = 0
    memory_cap_mb: float | None = None
    recompute: bool = False  # checkpoint each stage's inside (GPipe's recomputation)


@dataclass
class StageReport:
    """What one rank measured (gathered to rank 0)."""

    stage: int
    layers: tuple[int, int]  # first, last Linear layer index of this stage
    parameters: int
    peak_activation_bytes: int
    events: list[list[tuple[str, int, float, float]]] = field(default_factory=list)  # per step
    losses: list[float] = field(default_factory=list)  # last stage: mean loss per step
    private_bytes: int = 0  # the most private memory over the start-up baseline, per step


class OutOfMemory(MemoryError):
    """A stage crossed the per-process memory cap."""


def layer_cuts(config: PipelineConfig) -> list[tuple[int, int]]:
    """[first, end) Linear-layer ranges of the K stages, balanced by parameter count."""
    cost = [float(config.width * config.width + config.width)] * config.layers
    cuts = [0, *balanced_cuts(cost, config.stages), config.layers]
    return list(itertools.pairwise(cuts))


def build_stage(config: PipelineConfig, stage: int) -> nn.Sequential:
    """The layers of ``stage`` only; layer i drawn from its own seed, whichever rank builds it."""
    first, end = layer_cuts(config)[stage]
    mods: list[nn.Module] = []
    for i in range(first, end):
        if i > 0:
            mods.append(nn.Tanh())  # between layers i - 1 and i, kept with the later one
        rng = np.random.default_rng([config.seed, i])
        mods.append(nn.Linear(config.width, config.width, dtype=np.float32, rng=rng))
    return nn.Sequential(*mods)


def batch_of(config: PipelineConfig, step: int) -> tuple[np.ndarray, np.ndarray]:
    """The inputs x and targets sin(x) of ``step``, the same on every rank that draws them."""
    rng = np.random.default_rng([config.seed, 10_000 + step])
    x = rng.normal(size=(config.batch, config.width)).astype(np.float32)
    return x, np.sin(x)


def _private_bytes() -> int:
    """VmData: the private writable memory RLIMIT_DATA counts (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    raise OSError("cannot read VmData from /proc/self/status (the memory cap needs Linux)")


def set_memory_cap(cap_mb: float) -> tuple[int, int]:
    """Limit this process to what it uses now plus ``cap_mb`` MiB; returns the old limit."""
    old = resource.getrlimit(resource.RLIMIT_DATA)
    limit = _private_bytes() + int(cap_mb * MB)
    if old[1] != resource.RLIM_INFINITY:
        limit = min(limit, old[1])
    resource.setrlimit(resource.RLIMIT_DATA, (limit, old[1]))
    return old


def _train(config: PipelineConfig, rank: int, comm: Any, baseline: int) -> StageReport:
    k = config.stages
    module = build_stage(config, rank)
    stage = PipelineStage(module, rank, k, recompute=config.recompute, comm=comm)
    schedule = SCHEDULES[config.schedule](stage, config.microbatches, nn.MSELoss())
    schedule.timed = True
    opt = optim.Adam(module.parameters(), lr=config.lr)
    first, end = layer_cuts(config)[rank]
    n_params = sum(p.numel() for p in module.parameters())
    report = StageReport(rank, (first, end - 1), n_params, 0)
    for step in range(config.steps):
        x, y = batch_of(config, step)
        opt.zero_grad()
        if k == 1:
            loss = schedule.step(x, target=y)
        elif rank == 0:
            loss = schedule.step(x)
        elif rank == k - 1:
            loss = schedule.step(target=y)
        else:
            loss = schedule.step()
        opt.step()
        report.private_bytes = max(report.private_bytes, _private_bytes() - baseline)
        report.events.append([(kd, mb, a - schedule.step_start, b - schedule.step_start)
                              for kd, mb, a, b in stage.events])  # fmt: skip
        if loss is not None:
            report.losses.append(float(loss.item()))
    report.peak_activation_bytes = stage.peak_activation_bytes
    return report


def run_rank(config: PipelineConfig) -> list[StageReport] | None:
    """Train on this rank's stage; rank 0 returns every stage's report, others None.

    A stage that fails (out of memory included) prints one line naming the stage and, on
    more than one rank, stops them all (``MPI_Abort``); on one rank it raises.
    """
    comm = communicator()
    rank = comm.Get_rank()
    baseline = _private_bytes()
    old_limit = set_memory_cap(config.memory_cap_mb) if config.memory_cap_mb else None
    try:
        report = _train(config, rank, comm, baseline)
    except MemoryError as exc:
        first, end = layer_cuts(config)[rank]
        params = (end - first) * (config.width**2 + config.width)
        msg = (
            f"stage {rank} of {config.stages} is out of memory: its {end - first} layers' "
            f"parameters ({4 * params / MB:.1f} MiB), their gradients, Adam's state and "
            f"scratch arrays and the activations exceed the cap of "
            f"{config.memory_cap_mb:g} MiB per process "
            f"({exc}); use more stages (--stages {config.stages + 1}) or a larger cap"
        )
        if config.stages == 1:
            raise OutOfMemory(msg) from None
        abort(comm, f"pipeline stopped: {msg}")
    finally:
        if old_limit is not None:
            # The cap bounds training; gathering and drawing the picture are not the model.
            resource.setrlimit(resource.RLIMIT_DATA, old_limit)
    reports: list[StageReport] | None = comm.gather(report, root=0)  # small: pickled is fine
    return reports


@dataclass(frozen=True)
class Summary:
    """Rank 0's figures for the report: bubbles, per-stage costs, losses."""

    tick_bubble: float
    formula: str
    measured_bubble: float  # median over steps after the first
    measured_steps: int
    stage_ms: list[tuple[float, float]]  # per stage: median forward, backward ms per micro-batch


def summarize(config: PipelineConfig, reports: list[StageReport]) -> Summary:
    """The measured bubble of each step (its median) and the tick model's exact one."""
    from chainrule.distributed.pipelining.timeline import measured_bubble

    steps = range(1 if config.steps > 1 else 0, config.steps)  # step 0 warms caches up
    bubbles = [measured_bubble([r.events[s] for r in reports]) for s in steps]
    exact = tick_bubble(config.schedule, config.stages, config.microbatches)
    assert exact == gpipe_bubble_formula(config.stages, config.microbatches)
    k, m = config.stages, config.microbatches
    ms = []
    for r in reports:
        f = [1e3 * (b - a) for s in steps for kd, _, a, b in r.events[s] if kd == "F"]
        bw = [1e3 * (b - a) for s in steps for kd, _, a, b in r.events[s] if kd == "B"]
        ms.append((statistics.median(f), statistics.median(bw)))
    return Summary(
        float(exact), f"(K-1)/(M+K-1) = {k - 1}/{m + k - 1}", statistics.median(bubbles),
        len(bubbles), ms,
    )  # fmt: skip
