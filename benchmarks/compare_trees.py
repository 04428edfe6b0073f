"""Two source trees of chainrule side by side: is the second one slower than the first?

Each tree is timed in its own Python process (``PYTHONPATH=<tree>``), the two trees
alternating (A B B A A B ...) so that the machine's drifts fall on both alike. A process
times, after a warm-up, the training step of ``benchmarks/mlp_step.py`` (ReLU MLP, fused
linear, cross-entropy, backward, SGD; float32) at the small and medium sizes, and the
forward + backward of a one-element mul and a 4x4 matmul; it reports the median of its
blocks. The table gives each tree's median over its processes and the ratio B / A (the
median of the ratios of the paired rounds): above 1, tree B is slower.

Run (from the repository root, one BLAS thread):

    .venv/bin/python benchmarks/compare_trees.py <main checkout>/src src [--rounds 8]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

SIZES = {"small": ([2, 16, 16, 2], 100), "medium": ([784, 256, 256, 10], 128)}
METRICS = ["step small (ms)", "step medium (ms)", "mul fwd+bwd (µs)", "matmul 4x4 fwd+bwd (µs)"]
SCALE = {"ms": 1e3, "µs": 1e6}


def _worker(seconds: float, clock: str) -> dict[str, float]:
    """Run in the tree's process: the median time of each metric, in the metric's unit.

    ``clock`` 'cpu' (the default) times the process's own CPU time: on a shared machine
    with more runnable processes than cores, the wall clock also counts the time the
    process waited for a core, which has nothing to do with either tree."""
    now = time.process_time if clock == "cpu" else time.perf_counter
    import numpy as np

    from chainrule import Tensor
    from chainrule.optim import SGD
    from chainrule.tensor import ops
    from chainrule.tensor.ops.loss import cross_entropy

    def mlp_step(sizes: list[int], batch: int) -> Callable[[], Any]:
        rng = np.random.default_rng(0)
        weights = [
            Tensor(
                (rng.standard_normal((o, i)) * np.sqrt(2.0 / i)).astype(np.float32),
                requires_grad=True,
            )
            for i, o in itertools.pairwise(sizes)
        ]
        biases = [Tensor(np.zeros(o, np.float32), requires_grad=True) for o in sizes[1:]]
        x = Tensor(rng.standard_normal((batch, sizes[0])).astype(np.float32))
        y = rng.integers(0, sizes[-1], batch)
        opt = SGD([*weights, *biases], lr=0.01)

        def step() -> None:
            h = x
            for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
                f = ops.linear(h, w, b)
                h = f.relu() if k < len(weights) - 1 else f
            loss = cross_entropy(h, y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        return step

    a, b = (Tensor(np.ones(1, np.float32), requires_grad=True) for _ in range(2))
    m, n = (Tensor(np.ones((4, 4), np.float32), requires_grad=True) for _ in range(2))
    one, four = np.ones(1, np.float32), np.ones((4, 4), np.float32)
    candidates: dict[str, Callable[[], Any]] = {
        METRICS[0]: mlp_step(*SIZES["small"]),
        METRICS[1]: mlp_step(*SIZES["medium"]),
        METRICS[2]: lambda: (a * b).backward(one),
        METRICS[3]: lambda: (m @ n).backward(four),
    }
    out = {}
    for name, fn in candidates.items():
        for _ in range(20):  # warm-up
            fn()
        blocks = []
        end = time.perf_counter() + seconds / len(candidates)
        while time.perf_counter() < end or len(blocks) < 5:
            t0 = now()
            for _ in range(10):
                fn()
            blocks.append((now() - t0) / 10)
        out[name] = statistics.median(blocks) * SCALE[name.rsplit("(", 1)[1][:-1]]
    return out


def _run(tree: str, seconds: float, clock: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"  # one BLAS thread: both trees alike, and no fight over the cores
    done = subprocess.run(
        [sys.executable, __file__, "--worker", str(seconds), "--clock", clock],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tree_a", nargs="?", help="source folder A (the reference)")
    parser.add_argument("tree_b", nargs="?", help="source folder B (the candidate)")
    parser.add_argument("--rounds", type=int, default=8, help="processes per tree")
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per process")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--worker", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(_worker(args.worker, args.clock)))
        return
    if not (args.tree_a and args.tree_b):
        parser.error("give two source folders: A (reference) and B (candidate)")
    cpus = os.cpu_count()
    print(f"machine: {platform.machine()}, {cpus} CPUs; Python {platform.python_version()}")
    print(f"A = {args.tree_a}\nB = {args.tree_b}")
    print(f"{args.rounds} processes each, alternating; {args.clock} time, one BLAS thread")
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    for r in range(args.rounds):
        order = ("A", "B") if r % 2 == 0 else ("B", "A")
        for which in order:
            tree = args.tree_a if which == "A" else args.tree_b
            runs[which].append(_run(tree, args.seconds, args.clock))
    print(f"\n{'metric':<26}{'A':>10}{'B':>10}{'B / A':>8}")
    for name in METRICS:
        a = [run[name] for run in runs["A"]]
        b = [run[name] for run in runs["B"]]
        ratio = statistics.median(y / x for x, y in zip(a, b, strict=True))
        print(f"{name:<26}{statistics.median(a):>10.2f}{statistics.median(b):>10.2f}{ratio:>8.3f}")


if __name__ == "__main__":
    main()
