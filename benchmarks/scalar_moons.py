"""micrograd's moons demo, step by step, with chainrule's scalar engine and with micrograd.

The task of micrograd's demo notebook: scikit-learn ``make_moons(n_samples=100,
noise=0.1)``, labels -1/+1, ``MLP(2, [16, 16, 1])``, max-margin loss
``mean(relu(1 - y*score)) + 1e-4 * sum(p*p)``, full batch, SGD with
``lr = 1.0 - 0.9*k/100``. Both engines start from the same weights and run the same
steps, interleaved (chainrule, micrograd, chainrule, ...), so both see the same machine.

Two modes: the garbage collector as shipped (enabled), and paused during each step. Before
each timed step a full collection runs (untimed), so that no engine pays for the garbage
another left behind.

A third column, "chainrule, unfused", builds the same 2n-node neuron graph as micrograd
(``sum(w*x, b)``) instead of chainrule's one-node neuron: it measures the engine alone.

Run:  .venv/bin/python benchmarks/scalar_moons.py [--steps 20]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import micrograd
import micrograd.engine
import micrograd.nn
import numpy as np
from sklearn.datasets import make_moons

import chainrule
import chainrule.scalar as cs


class UnfusedNeuron(cs.Neuron):
    """micrograd's neuron graph (2n nodes of * and +) on chainrule's engine."""

    def __call__(self, x: Any) -> Any:
        act = sum((wi * xi for wi, xi in zip(self.w, x, strict=True)), self.b)
        return act.relu() if self.nonlin else act


def make_step(value_cls: type, model: Any, x: np.ndarray, y: np.ndarray) -> Callable[[int], float]:
    """One step of the demo for one engine; returns the loss before the update."""

    def step(k: int) -> float:
        inputs = [[value_cls(float(a)), value_cls(float(b))] for a, b in x]
        scores = [model(row) for row in inputs]
        losses = [(1 + -float(yi) * si).relu() for yi, si in zip(y, scores, strict=True)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = 1e-4 * sum(p * p for p in model.parameters())
        total = data_loss + reg_loss
        model.zero_grad()
        total.backward()
        lr = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= lr * p.grad
        return float(total.data)

    return step


def timed(step: Callable[[int], float], k: int, pause_gc: bool) -> tuple[float, float]:
    gc.collect()
    if pause_gc:
        gc.disable()
    t0 = time.perf_counter()
    loss = step(k)
    t1 = time.perf_counter()
    gc.enable()
    return t1 - t0, loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per mode")
    args = parser.parse_args()

    np.random.seed(1337)
    x, y = make_moons(n_samples=100, noise=0.1)
    y = y * 2 - 1

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"chainrule {chainrule.__version__}, micrograd {getattr(micrograd, '__version__', '0.1.0')}"
    )
    print(f"{args.steps} steps per mode, after 1 warm-up step; medians in ms per step\n")
    header = (
        f"{'gc mode':<10} {'micrograd':>10} {'chainrule':>10} {'ratio':>7}"
        f" {'unfused':>9} {'ratio':>7}   max |loss diff|"
    )
    print(header)
    print("-" * len(header))
    for pause in (False, True):
        models = {}
        for name, value_cls, mlp in (
            ("micrograd", micrograd.engine.Value, micrograd.nn.MLP),
            ("chainrule", cs.Value, cs.MLP),
            ("unfused", cs.Value, cs.MLP),
        ):
            random.seed(1337)
            model = mlp(2, [16, 16, 1])
            if name == "unfused":
                for layer in model.layers:
                    for neuron in layer.neurons:
                        neuron.__class__ = UnfusedNeuron
            models[name] = make_step(value_cls, model, x, y)
        times: dict[str, list[float]] = {name: [] for name in models}
        losses: dict[str, list[float]] = {name: [] for name in models}
        for k in range(args.steps + 1):
            for name, step in models.items():
                dt, loss = timed(step, k, pause)
                losses[name].append(loss)
                if k > 0:  # step 0 is the warm-up
                    times[name].append(dt)
        med = {name: statistics.median(ts) * 1e3 for name, ts in times.items()}
        diff = max(
            abs(a - b)
            for name in ("chainrule", "unfused")
            for a, b in zip(losses[name], losses["micrograd"], strict=True)
        )
        print(
            f"{'paused' if pause else 'enabled':<10} {med['micrograd']:>10.1f}"
            f" {med['chainrule']:>10.2f} {med['chainrule'] / med['micrograd']:>7.3f}"
            f" {med['unfused']:>9.2f} {med['unfused'] / med['micrograd']:>7.3f}   {diff:.1e}"
        )
    print("\nratio = chainrule / micrograd (lower is faster). Targets: <= 0.100 with the")
    print("collector enabled, <= 0.500 with it paused.")


if __name__ == "__main__":
    main()
