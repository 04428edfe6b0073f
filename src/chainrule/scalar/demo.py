"""micrograd's demo with chainrule's scalar engine: an MLP learns the two moons."""

from __future__ import annotations

import random
import time

from chainrule.scalar.engine import Value
from chainrule.scalar.nn import MLP


def two_moons(n: int, noise: float, seed: int) -> tuple[list[list[float]], list[float]]:
    """scikit-learn's two moons with labels -1/+1."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    return x.tolist(), [2.0 * float(label) - 1.0 for label in y]


def train_moons(steps: int = 100, seed: int = 1337, log_every: int = 10) -> tuple[float, float]:
    """Train ``MLP(2, [16, 16, 1])`` with the max-margin loss; returns (loss, accuracy)."""
    x, y = two_moons(100, 0.1, seed)
    random.seed(seed)
    model = MLP(2, [16, 16, 1])
    print(f"{model!r}\n{len(model.parameters())} parameters, 100 points, {steps} SGD steps")
    start = time.perf_counter()
    loss, acc = 0.0, 0.0
    for k in range(steps):
        scores = [model([Value(a), Value(b)]) for a, b in x]
        margins = [(1 - yi * si).relu() for yi, si in zip(y, scores, strict=True)]  # type: ignore[operator]
        total = sum(margins) * (1.0 / len(margins)) + 1e-4 * sum(p * p for p in model.parameters())
        assert isinstance(total, Value)
        model.zero_grad()
        total.backward()
        lr = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= lr * p.grad
        loss = total.data
        hits = [(yi > 0) == (s.data > 0) for yi, s in zip(y, scores, strict=True)]  # type: ignore[union-attr]
        acc = sum(hits) / len(hits)
        if k % log_every == 0 or k == steps - 1:
            print(f"step {k:3d}  loss {loss:.4f}  accuracy {acc:.0%}")
    print(f"{steps} steps in {time.perf_counter() - start:.1f} s")
    return loss, acc
