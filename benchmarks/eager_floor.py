"""How fast can an eager engine be? The plain-ops small step on a featureless engine.

``compile.py`` measures chainrule's eager plain-ops step (``h @ W + b``, ``relu``,
``exp``/``sum``/``log``) against the lecture's hand-written NumPy. This script asks what
part of the gap any eager engine written in Python must pay: it runs the same step on a
*bare* engine, micrograd's design carried over to arrays (each operation makes a node with
its inputs and a closure for its VJP; backward sorts the graph and calls the closures),
with nothing else: no dtype promotion, no in-place or version checks, no hooks, no
shape fitting beyond the two broadcasts this network has, no error messages. The NumPy
calls are the ones the compiled program makes, so the difference is recording and walking.

Candidates (interleaved blocks, medians of per-round ratios to ``numpy``):

- ``numpy``: ``chainrule.lecture.matrix``, the lecture's equations by hand;
- ``bare eager``: the bare engine below;
- ``chainrule eager``: the same step on chainrule's engine;
- ``chainrule compiled``: ``chainrule.compile`` of it (the NumPy calls alone, no engine).

The last three are ``compile.py``'s plain-style candidates, from the same weights and batch.

Run:  .venv/bin/python benchmarks/eager_floor.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import compile as compile_bench
from mlp_step import LR, SIZES

Grads = Callable[[np.ndarray], tuple[np.ndarray, ...]]
_ZERO = np.zeros((), np.float32)


class Bare:
    """An array, the nodes it came from and the closure giving their gradients."""

    __slots__ = ("data", "grad", "inputs", "vjp")

    def __init__(self, data: Any, inputs: tuple[Bare, ...] = (), vjp: Grads | None = None):
        self.data, self.inputs, self.vjp, self.grad = data, inputs, vjp, None

    def __matmul__(self, other: Bare) -> Bare:
        a, b = self.data, other.data
        return Bare(a @ b, (self, other), lambda g: (g @ b.T, a.T @ g))

    def __add__(self, bias: Bare) -> Bare:  # (batch, n) + (n,)
        return Bare(self.data + bias.data, (self, bias), lambda g: (g, g.sum(axis=0)))

    def __sub__(self, col: Bare) -> Bare:  # (batch, n) - (batch, 1)
        return Bare(self.data - col.data, (self, col), lambda g: (g, -g.sum(axis=1, keepdims=True)))

    def __mul__(self, const: np.ndarray) -> Bare:
        return Bare(self.data * const, (self,), lambda g: (g * const,))

    def __neg__(self) -> Bare:
        return Bare(-self.data, (self,), lambda g: (-g,))

    def __truediv__(self, n: float) -> Bare:
        return Bare(self.data / n, (self,), lambda g: (g / n,))

    def relu(self) -> Bare:
        out = np.maximum(self.data, _ZERO)
        return Bare(out, (self,), lambda g: (g * (out > _ZERO),))

    def exp(self) -> Bare:
        out = np.exp(self.data)
        return Bare(out, (self,), lambda g: (g * out,))

    def log(self) -> Bare:
        x = self.data
        return Bare(np.log(x), (self,), lambda g: (g / x,))

    def row_max(self) -> Bare:
        x = self.data
        m = np.maximum.reduce(x, axis=1, keepdims=True)

        def vjp(g: np.ndarray) -> tuple[np.ndarray, ...]:
            ties = x == m
            return (np.where(ties, g / ties.sum(axis=1, keepdims=True), 0.0),)

        return Bare(m, (self,), vjp)

    def row_sum(self) -> Bare:
        shape = self.data.shape
        out = np.add.reduce(self.data, axis=1, keepdims=True)
        return Bare(out, (self,), lambda g: (np.broadcast_to(g, shape),))

    def total(self) -> Bare:
        shape = self.data.shape
        out = np.asarray(np.add.reduce(self.data, axis=None))
        return Bare(out, (self,), lambda g: (np.broadcast_to(g, shape),))

    def backward(self) -> None:
        order: list[Bare] = []
        seen: set[int] = set()
        stack: list[tuple[Bare, bool]] = [(self, False)]
        while stack:  # depth-first, children after their inputs
            node, done = stack.pop()
            if done:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((i, False) for i in node.inputs)
        grads: dict[int, np.ndarray] = {id(self): np.ones((), np.float32)}
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node.vjp is None:  # a leaf
                node.grad = g if node.grad is None else node.grad + g
                continue
            for parent, gp in zip(node.inputs, node.vjp(g), strict=True):
                k = id(parent)
                grads[k] = gp if k not in grads else grads[k] + gp


def make_steps() -> dict[str, Callable[[], Any]]:
    sizes, batch, _ = SIZES["small"]
    theirs, _ = compile_bench.make_steps(sizes, batch, "plain")  # numpy, eager, compiled
    net, x, y = compile_bench.problem(sizes, batch)  # the same start, for the bare engine
    onehot = np.eye(sizes[-1], dtype=np.float32)[y]
    depth = len(net.weights) - 1
    bw = [Bare(w.T.copy()) for w in net.weights]
    bb = [Bare(b.ravel().copy()) for b in net.biases]
    bare_params = [*bw, *bb]
    bx = Bare(x)

    def bare_step() -> Any:
        h = bx
        for k in range(depth + 1):
            h = h @ bw[k] + bb[k]
            if k < depth:
                h = h.relu()
        z = h - h.row_max()
        loss = -((z - z.exp().row_sum().log()) * onehot).total() / batch
        for p in bare_params:
            p.grad = None
        loss.backward()
        for p in bare_params:
            p.data -= LR * p.grad
        return loss.data

    return {
        "numpy": theirs["numpy"],
        "bare eager": bare_step,
        "chainrule eager": theirs["eager"],
        "chainrule compiled": theirs["compiled"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--block", type=int, default=200, help="steps per block")
    args = parser.parse_args()
    with threadpool_limits(1):
        steps = make_steps()
        for step in steps.values():  # warm-up (compile traces on its first two calls)
            for _ in range(args.block):
                step()
        times: dict[str, list[float]] = {name: [] for name in steps}
        for r in range(args.rounds):
            names = list(steps) if r % 2 == 0 else list(reversed(steps))
            for name in names:
                step = steps[name]
                t0 = time.perf_counter()
                for _ in range(args.block):
                    step()
                times[name].append((time.perf_counter() - t0) / args.block)
    base = times["numpy"]
    print("plain-ops small step (2-16-16-2, batch 100), float32, one BLAS thread")
    print(f"{'candidate':20s} {'µs/step':>9s} {'/ numpy':>8s}")
    for name, ts in times.items():
        ratio = statistics.median(t / b for t, b in zip(ts, base, strict=True))
        print(f"{name:20s} {statistics.median(ts) * 1e6:9.1f} {ratio:8.2f}")


if __name__ == "__main__":
    main()
