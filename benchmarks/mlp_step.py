"""One training step of a ReLU MLP: chainrule vs hand-written NumPy vs PyTorch (CPU).

A step is forward, softmax cross-entropy (mean over the batch), backward and an SGD update,
in float32, at three sizes:

    small   2-16-16-2        batch 100
    medium  784-256-256-10   batch 128
    large   1024-4096-4096-10 batch 512

"hand-written NumPy" is ``chainrule.lecture.matrix``: the lecture's equations
(f_k = β_k + Ω_k h_k, ∂ℓ/∂Ω_k = ∂ℓ/∂f_k h_kᵀ, ∂ℓ/∂f_{k-1} = 𝕀[f_{k-1} > 0] ⊙ Ω_kᵀ ∂ℓ/∂f_k).
All three start from the same weights and see the same batch; they run in alternating
blocks of steps (chainrule, NumPy, PyTorch, then another order, ...) after a warm-up, and
the table shows medians (see ``interleaved`` for how the blocks are sized).

Also: the per-operation overhead of a tiny elementwise op and a tiny matmul (forward and
backward), chainrule vs PyTorch.

Run:  .venv/bin/python benchmarks/mlp_step.py [--sizes small,medium,large] [--rounds N]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_info

import chainrule
from chainrule import Tensor
from chainrule.lecture import matrix
from chainrule.optim import SGD
from chainrule.tensor import ops
from chainrule.tensor.ops.loss import cross_entropy

SIZES = {  # layer sizes, batch, rounds (each candidate runs one block per round)
    "small": ([2, 16, 16, 2], 100, 40),
    "medium": ([784, 256, 256, 10], 128, 60),
    "large": ([1024, 4096, 4096, 10], 512, 6),
}
LR = 0.01


def make_steps(sizes: list[int], batch: int) -> dict[str, Callable[[], float]]:
    rng = np.random.default_rng(0)
    net = matrix.init_network(sizes, rng, dtype=np.float32)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)

    # hand-written NumPy: the lecture's column layout (one input per column)
    x_cols = np.ascontiguousarray(x.T)

    def numpy_step() -> float:
        fp = matrix.forward(net, x_cols)
        loss, dl_df = matrix.cross_entropy(fp.f[-1], y, mean=True)
        matrix.sgd_step(net, matrix.backward(net, fp, dl_df), LR)
        return loss

    # chainrule: rows are inputs, Linear's weight is Ω_k (out × in), bias β_k
    weights = [Tensor(w.copy(), requires_grad=True) for w in net.weights]
    biases = [Tensor(b.ravel().copy(), requires_grad=True) for b in net.biases]
    xt = Tensor(x)
    opt = SGD([*weights, *biases], lr=LR)

    def chainrule_step() -> float:
        h = xt
        for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
            f = ops.linear(h, w, b)
            h = f.relu() if k < len(weights) - 1 else f
        loss = cross_entropy(h, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.item())

    tw = [torch.tensor(w, requires_grad=True) for w in net.weights]
    tb = [torch.tensor(b.ravel(), requires_grad=True) for b in net.biases]
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    topt = torch.optim.SGD([*tw, *tb], lr=LR)

    def torch_step() -> float:
        h = tx
        for k, (w, b) in enumerate(zip(tw, tb, strict=True)):
            f = torch.nn.functional.linear(h, w, b)
            h = f.relu() if k < len(tw) - 1 else f
        loss = torch.nn.functional.cross_entropy(h, ty)
        topt.zero_grad()
        loss.backward()
        topt.step()
        return float(loss.item())

    return {"chainrule": chainrule_step, "numpy": numpy_step, "pytorch": torch_step}


def interleaved(
    steps: dict[str, Callable[[], Any]],
    rounds: int,
    warmup: int,
    min_block: int = 2,
    block_seconds: float = 0.05,
) -> dict[str, list[float]]:
    """Seconds per call of each candidate: the median of each of its blocks, one per round.

    Each round runs every candidate for one block of calls (A A A ... B B B ... C C C ...).
    A block lasts at least ``block_seconds`` (and ``min_block`` calls): a library that
    just took over the cores runs from cold caches, and the previous one's idle threads
    (OpenBLAS's, PyTorch's OpenMP pool) spin for a while; blocks long enough to reach the
    steady state that a training loop runs in keep that switching cost out of the
    comparison. The first call of each block is run but not timed. The order of the
    candidates goes through every permutation in turn, so that each one follows every
    other one equally often. The blocks of one round run within a fraction of a second of
    each other, so a ratio of two candidates is best taken round by round (``paired``):
    the machine's slow drifts cancel in it.
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    block = {}
    for name, step in steps.items():
        t0 = time.perf_counter()
        step()
        block[name] = max(min_block, math.ceil(block_seconds / (time.perf_counter() - t0)))
    orders = list(itertools.permutations(steps))
    medians: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(rounds):
        for name in orders[r % len(orders)]:
            steps[name]()  # not timed: see above
            times = []
            for _ in range(block[name]):
                t0 = time.perf_counter()
                steps[name]()
                times.append(time.perf_counter() - t0)
            medians[name].append(statistics.median(times))
    return medians


def paired(a: list[float], b: list[float]) -> float:
    """The median over rounds of a's time / b's time in the same round."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def op_overhead(repeats: int) -> None:
    a, b = (Tensor(np.ones(1, np.float32), requires_grad=True) for _ in range(2))
    m, n = (Tensor(np.ones((4, 4), np.float32), requires_grad=True) for _ in range(2))
    ta, tb = (torch.ones(1, requires_grad=True) for _ in range(2))
    tm, tn = (torch.ones(4, 4, requires_grad=True) for _ in range(2))

    def run(f: Callable[[], Any]) -> Callable[[], None]:
        def step() -> None:
            for _ in range(100):
                f()

        return step

    ops_ = {
        "mul (1 elem)": (lambda: (a * b).backward(np.ones(1, np.float32)),
                         lambda: (ta * tb).backward(torch.ones(1))),
        "matmul 4x4": (lambda: (m @ n).backward(np.ones((4, 4), np.float32)),
                       lambda: (tm @ tn).backward(torch.ones(4, 4))),
    }  # fmt: skip
    print(f"\nper-op overhead, forward + backward, µs (median, calls of 100 in {repeats} rounds)")
    print(f"{'op':<14} {'chainrule':>10} {'pytorch':>10} {'ratio':>7}")
    for name, (ours, theirs) in ops_.items():
        med = interleaved({"chainrule": run(ours), "pytorch": run(theirs)}, repeats, 3)
        cr, pt = (statistics.median(med[k]) * 1e4 for k in ("chainrule", "pytorch"))
        ratio = paired(med["chainrule"], med["pytorch"])
        print(f"{name:<14} {cr:>10.1f} {pt:>10.1f} {ratio:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--rounds", type=int, default=0, help="blocks per candidate (0: auto)")
    args = parser.parse_args()

    blas = ", ".join(
        f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)"
        for i in threadpool_info()
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; Python {platform.python_version()}"
    )
    print(f"chainrule {chainrule.__version__}, NumPy {np.__version__}, PyTorch {torch.__version__}")
    print(f"BLAS: {blas}; torch threads: {torch.get_num_threads()}")
    print(
        "\nms per training step (median), float32; ratio = chainrule / other (median of "
        "the ratios of each round)"
    )
    columns = ("chainrule", "numpy", "pytorch")
    print(
        f"{'size':<8}" + "".join(f"{c:>11}" for c in columns) + f"{'vs numpy':>10}{'vs torch':>10}"
    )
    for size in args.sizes.split(","):
        sizes, batch, rounds = SIZES[size]
        steps = make_steps(sizes, batch)
        med = interleaved(steps, args.rounds or rounds, warmup=2)
        cr, npy, pt = (statistics.median(med[k]) * 1e3 for k in ("chainrule", "numpy", "pytorch"))
        vs_numpy = paired(med["chainrule"], med["numpy"])
        vs_torch = paired(med["chainrule"], med["pytorch"])
        print(f"{size:<8}{cr:>11.3f}{npy:>11.3f}{pt:>11.3f}{vs_numpy:>10.2f}{vs_torch:>10.2f}")
    op_overhead(20)


if __name__ == "__main__":
    main()
