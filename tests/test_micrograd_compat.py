"""A micrograd program gives the same numbers when only its imports change.

Each program is written once against an engine namespace (``Value``, ``MLP``) and run with
micrograd and with chainrule, from the same random seed.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import micrograd.engine
import micrograd.nn
import numpy as np
import pytest
from sklearn.datasets import make_moons

import chainrule.scalar


@pytest.fixture(autouse=True)
def _pause_garbage_collector() -> Iterator[None]:
    # micrograd's graphs are reference cycles; collecting them dominates its run time.
    gc.disable()
    yield
    gc.enable()
    gc.collect()


MICROGRAD = SimpleNamespace(Value=micrograd.engine.Value, MLP=micrograd.nn.MLP)
CHAINRULE = SimpleNamespace(Value=chainrule.scalar.Value, MLP=chainrule.scalar.MLP)


def assert_same(a: list[float], b: list[float], rel: float = 1e-12) -> None:
    assert len(a) == len(b)
    np.testing.assert_allclose(np.array(a, float), np.array(b, float), rtol=rel, atol=1e-300)


def expression_program(eng: Any, seed: int) -> list[float]:
    """Every op micrograd has, numbers on either side, shared sub-expressions."""
    rng = random.Random(seed)
    a, b, c = (eng.Value(rng.uniform(-2, 2)) for _ in range(3))
    d = a * b + b**3
    e = c - a / (b * b + 1.5)
    f = (d * 2 + 1 - e).relu() + (-e).relu() + 3 / (1 + a * a)
    g = f * e + f**2 + d / 4 - 2 * c
    g.backward()
    return [v.data for v in (d, e, f, g)] + [v.grad for v in (a, b, c, d, e, f)]


@pytest.mark.parametrize("seed", range(8))
def test_expression_program_matches_micrograd(seed: int) -> None:
    assert_same(expression_program(CHAINRULE, seed), expression_program(MICROGRAD, seed))


def mlp_program(eng: Any, seed: int, nin: int, nouts: list[int]) -> list[float]:
    random.seed(seed)
    model = eng.MLP(nin, nouts)
    rng = random.Random(seed + 1000)
    out: list[float] = []
    for _ in range(3):
        x = [eng.Value(rng.uniform(-3, 3)) for _ in range(nin)]
        y = model(x)
        ys = y if isinstance(y, list) else [y]
        loss = sum((yi * yi for yi in ys), eng.Value(0.0))
        model.zero_grad()
        loss.backward()
        out += [yi.data for yi in ys] + [p.grad for p in model.parameters()]
        out += [xi.grad for xi in x]
    return out + [p.data for p in model.parameters()]


@pytest.mark.parametrize("seed", [0, 1, 42, 1337])
@pytest.mark.parametrize("nin,nouts", [(2, [16, 16, 1]), (3, [4, 4, 1]), (4, [8, 3]), (5, [2])])
def test_mlp_forward_and_gradients_match_micrograd(seed: int, nin: int, nouts: list[int]) -> None:
    assert_same(mlp_program(CHAINRULE, seed, nin, nouts), mlp_program(MICROGRAD, seed, nin, nouts))


def moons_training(eng: Any, seed: int, nouts: list[int], steps: int = 20) -> list[float]:
    """micrograd's demo loop: max-margin loss, L2, SGD with a decaying learning rate."""
    np.random.seed(seed)
    x, y = make_moons(n_samples=40, noise=0.1)
    y = y * 2 - 1
    random.seed(seed)
    model = eng.MLP(2, nouts)
    history: list[float] = []
    for k in range(steps):
        inputs = [list(map(eng.Value, row)) for row in x]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores, strict=True)]
        data_loss = sum(losses) * (1.0 / len(losses))
        total = data_loss + 1e-4 * sum(p * p for p in model.parameters())
        model.zero_grad()
        total.backward()
        lr = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= lr * p.grad
        history.append(total.data)
    return history + [p.data for p in model.parameters()]


@pytest.mark.parametrize("seed,nouts", [(1337, [16, 16, 1]), (7, [8, 1]), (3, [6, 6, 6, 1])])
def test_twenty_training_steps_match_micrograd(seed: int, nouts: list[int]) -> None:
    ours, theirs = moons_training(CHAINRULE, seed, nouts), moons_training(MICROGRAD, seed, nouts)
    assert_same(ours, theirs)
    assert ours[19] < ours[0]  # and it actually learns


def test_reprs_match_micrograd() -> None:
    for eng in (CHAINRULE, MICROGRAD):
        random.seed(0)
        eng.repr = repr(eng.MLP(2, [3, 1]))
    assert CHAINRULE.repr == MICROGRAD.repr


def test_single_neuron_hidden_layer_feeds_the_next_layer() -> None:
    # micrograd fails here (a layer of one neuron returns a bare Value); chainrule wraps it.
    random.seed(0)
    model = chainrule.scalar.MLP(2, [1, 3, 1])
    y = model([1.0, 2.0])
    assert isinstance(y, chainrule.scalar.Value)
    y.backward()
    assert any(p.grad != 0 for p in model.parameters())


def test_neuron_with_wrong_number_of_inputs_says_so() -> None:
    random.seed(0)
    model = chainrule.scalar.MLP(3, [2])
    with pytest.raises(ValueError, match="3 weights but 2 inputs"):
        model([1.0, 2.0])
