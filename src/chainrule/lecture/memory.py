"""Backprop is memory hungry: the bytes a deep MLP holds over time, op by op, and the trade.

The lecture: the forward pass must store every intermediate quantity f_k and h_k for the
backward pass, which uses them in reverse order. So the memory held rises through the
forward pass, peaks at the loss, and falls through the backward pass as each layer's
quantities are used and freed. The prediction is the sum of the f_k and h_k sizes; the
engine keeps only what its rules read (``retain_inputs``/``retain_output`` of each
primitive): the h_k, which ReLU's rule reads its mask 𝕀[f_k > 0] = 𝕀[h_k > 0] from and the
next layer's ∂ℓ/∂Ω rule reads, but not the f_k, so its peak is about half the prediction.
Gradient checkpointing (``chainrule.utils.checkpoint``) keeps only some of them and
recomputes the rest during backward. ``memory_profile`` runs one forward and backward
pass of the lecture's deep ReLU network, f_k = β_k + Ω_k h_k, h_{k+1} = ReLU[f_k], with

- ``none``: no checkpointing;
- ``sqrt``: √n segments (``checkpoint_sequential(blocks, round(√n), x)``);
- ``every layer``: each layer (Linear + ReLU) its own segment;
- ``planner``: Chen's greedy plan under a budget (``budget_bytes=``);
- ``log``: recursive bisection (``segments="log"``),

and records, after every operation (each Linear and ReLU, forward, recomputed or
backward), the bytes NumPy holds beyond the parameters and the data (``tracemalloc``,
which NumPy reports its buffers to). ``plot_profile`` draws them.
"""

from __future__ import annotations

import math
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import nn
from chainrule.tensor.tensor import Tensor
from chainrule.utils import checkpoint_plan
from chainrule.utils.checkpoint import checkpoint_sequential

STRATEGIES = ("none", "sqrt", "every layer", "planner", "log")
COLORS = {"none": "#d62728", "sqrt": "#1f77b4", "every layer": "#2ca02c",
          "planner": "#9467bd", "log": "#ff7f0e"}  # fmt: skip


@dataclass(frozen=True)
class Event:
    """The bytes held just after one operation ran (or its gradient was computed)."""

    # "forward", "recompute" (a forward op run again during backward), "backward", and
    # "end" (after the backward pass)
    phase: str
    op: str  # e.g. "linear 3", "relu 3"
    bytes: int


@dataclass(frozen=True)
class StrategyRun:
    """One strategy's forward and backward pass, measured."""

    name: str
    segments: str  # what was checkpointed, in words
    events: list[Event]
    peak_bytes: int  # the highest bytes held at any moment (between events too)
    grad_bytes: int  # the parameters' gradients at the end (the planner does not count them)
    forward_flops: int
    extra_forward_flops: int  # FLOPs of the recomputed operations
    step_seconds: float  # median time of forward + backward, without measuring overhead


@dataclass(frozen=True)
class MemoryProfile:
    layers: int
    width: int
    batch: int
    predicted_bytes: int  # the lecture: the sum of the f_k and h_k sizes
    budget_bytes: int
    runs: list[StrategyRun] = field(default_factory=list)


class _Recorder:
    """Where the probes write: on only during the measured pass."""

    def __init__(self) -> None:
        self.on = False
        self.backward = False  # forward ops seen now are recomputations
        self.events: list[Event] = []
        self.base = 0

    def add(self, phase: str, op: str) -> None:
        if self.on:
            self.events.append(Event(phase, op, tracemalloc.get_traced_memory()[0] - self.base))


class _Probe(nn.Module):
    """Runs one operation and notes the bytes held after it, and after its gradient."""

    def __init__(self, inner: nn.Module, op: str, flops: int, rec: _Recorder) -> None:
        self.inner, self.op, self.flops, self.rec = inner, op, flops, rec

    def forward(self, x: Any) -> Any:
        y = self.inner(x)
        self.rec.add("recompute" if self.rec.backward else "forward", self.op)
        if self.rec.on and y.requires_grad:
            y.register_hook(self._noted)
        return y

    def _noted(self, g: Any) -> None:
        self.rec.add("backward", self.op)


def deep_mlp(
    layers: int, width: int, batch: int, seed: int = 0
) -> tuple[nn.Sequential, Tensor, Tensor, _Recorder, dict[str, int]]:
    """The lecture's network as blocks [Linear, ReLU] × layers + Linear, probed, float64."""
    nn.manual_seed(seed)
    rec = _Recorder()
    flops: dict[str, int] = {}
    blocks: list[nn.Module] = []
    for k in range(layers + 1):
        lin = nn.Linear(width, width if k < layers else 1)
        for p in lin.parameters():
            p.data = p.numpy().astype(np.float64)
        out = width if k < layers else 1
        flops[f"linear {k}"] = 2 * batch * width * out + batch * out  # Ω h and + β
        ops: list[nn.Module] = [_Probe(lin, f"linear {k}", flops[f"linear {k}"], rec)]
        if k < layers:
            flops[f"relu {k}"] = batch * width
            ops.append(_Probe(nn.ReLU(), f"relu {k}", flops[f"relu {k}"], rec))
        blocks.append(nn.Sequential(*ops))
    rng = np.random.default_rng(seed)
    x = Tensor(rng.normal(size=(batch, width)))
    y = Tensor(rng.normal(size=(batch, 1)))
    return nn.Sequential(*blocks), x, y, rec, flops


def predicted_bytes(layers: int, width: int, batch: int) -> int:
    """Σ |f_k| + |h_k| in float64: f_0..f_{K-1} and h_1..h_K of width D, and f_K."""
    return 8 * batch * (2 * layers * width + 1)


def _runner(
    name: str, model: nn.Sequential, budget: int, sizes: list[checkpoint_plan.LayerSize]
) -> tuple[Callable[[Tensor], Any], str]:
    n = len(model)
    if name == "none":
        return model, "nothing: every h_k kept (no rule reads the f_k)"
    if name == "sqrt":
        s = max(1, round(math.sqrt(n)))
        return (lambda x: checkpoint_sequential(model, s, x)), f"{s} segments of ~{n // s} layers"
    if name == "every layer":
        return (lambda x: checkpoint_sequential(model, n, x)), f"{n} segments of 1 layer"
    if name == "log":
        return (lambda x: checkpoint_sequential(model, "log", x)), "recursive halves"
    plan = checkpoint_plan.plan(sizes, budget)  # a budget too small fails here, early
    text = f"{len(plan.segments)} segments (budget {budget:,} B)"
    return (lambda x: checkpoint_sequential(model, None, x, budget)), text


def memory_profile(
    layers: int = 16,
    width: int = 128,
    batch: int = 256,
    budget_bytes: int | None = None,
    strategies: tuple[str, ...] = STRATEGIES,
    repeats: int = 3,
    seed: int = 0,
) -> MemoryProfile:
    """Measure each strategy's bytes over time, peak, recomputed FLOPs and step time.

    ``budget_bytes`` (for ``planner``) defaults to half of the planner's estimate without
    checkpointing (or the smallest feasible budget, if that is more). Raises ValueError
    (the planner's message) when no plan fits the budget.
    """
    for name in strategies:
        if name not in STRATEGIES:
            raise ValueError(
                f"memory_profile: unknown strategy {name!r}; choose from {STRATEGIES}."
            )
    model, x, y, rec, flops = deep_mlp(layers, width, batch, seed)
    sizes = checkpoint_plan.layer_sizes(model, list(model), x)  # measured once, cached
    if budget_bytes is None:  # half, or the least that any plan needs if that is more
        smallest = min(p.peak_bytes for p in checkpoint_plan.candidates(sizes))
        budget_bytes = max(smallest, checkpoint_plan.peak_bytes(sizes, [(0, len(sizes))]) // 2)
    profile = MemoryProfile(layers, width, batch, predicted_bytes(layers, width, batch),
                            budget_bytes)  # fmt: skip
    for name in strategies:
        run, text = _runner(name, model, budget_bytes, sizes)

        def step(run: Callable[[Tensor], Any] = run) -> None:
            model.zero_grad()
            loss = ((run(x) - y) ** 2).sum()
            rec.backward = True
            try:
                loss.backward()
            finally:
                rec.backward = False

        step()  # warm-up: first-call costs are not the strategy's
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            seconds.append(time.perf_counter() - start)
        model.zero_grad()
        rec.events = []
        tracemalloc.start()
        try:
            rec.base = tracemalloc.get_traced_memory()[0]
            rec.on = True
            step()
            rec.add("end", "after backward")  # what is left: the parameters' gradients
            peak = tracemalloc.get_traced_memory()[1] - rec.base
        finally:
            rec.on = False
            tracemalloc.stop()
        events = rec.events
        extra = sum(flops[e.op] for e in events if e.phase == "recompute")
        forward = sum(flops[e.op] for e in events if e.phase == "forward")
        grads = sum(p.grad.numpy().nbytes for p in model.parameters() if p.grad is not None)
        run_record = StrategyRun(name, text, events, peak, grads, forward, extra,
                                 float(np.median(seconds)))  # fmt: skip
        profile.runs.append(run_record)
    return profile


def plot_profile(profile: MemoryProfile, path: Path) -> Path:
    """Bytes held after each operation, one line per strategy, and the lecture's prediction.

    Written atomically (``chainrule.io.atomic_savefig``): an existing picture is replaced
    only by a complete one.
    """
    from chainrule.io import atomic_savefig
    from chainrule.training.plots import _pyplot

    plt = _pyplot()
    mib = 2.0**20
    fig, ax = plt.subplots(figsize=(11, 5), constrained_layout=True)
    try:
        for r in profile.runs:
            ys = [0.0] + [e.bytes / mib for e in r.events]
            ax.plot(range(len(ys)), ys, color=COLORS[r.name], lw=1.4,
                    label=f"{r.name}: peak {r.peak_bytes / mib:.1f} MiB")  # fmt: skip
            recomputed = [i + 1 for i, e in enumerate(r.events) if e.phase == "recompute"]
            if recomputed and r.name != "log":
                ax.scatter(recomputed, [ys[i] for i in recomputed], s=6, color=COLORS[r.name])
        predicted = profile.predicted_bytes / mib
        ax.axhline(predicted, color="black", ls="--", lw=1,
                   label=f"lecture: Σ f_k + h_k = {predicted:.1f} MiB")  # fmt: skip
        ax.set(
            xlabel="operations in the order they ran (forward ops, then backward ops; dots: "
            "forward ops recomputed during backward)",
            ylabel="MiB held beyond parameters and data",
            title=f"Deep ReLU MLP, {profile.layers} layers of width {profile.width}, batch "
            f"{profile.batch}, float64: memory over one forward + backward pass",
        )
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
        atomic_savefig(fig, path)
    finally:
        plt.close(fig)
    return path
