"""The engine on an array library other than NumPy: array-api-strict, the standard's strict
reference (CPU), stands in for CuPy. One library per operation; gradients stay in it."""

from __future__ import annotations

from typing import Any

import array_api_strict as xps
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainrule import nn
from chainrule.tensor import Tensor, array_api, backend, no_grad, ops
from chainrule.tensor.ops.loss import cross_entropy
from chainrule.tensor.primitive import primitive
from tests.tensor.programs import LEAF_SHAPES, Steps, leaves, programs, run_program, weighted_sum


def _train(model: nn.Module, x: Any, y: Any, steps: int, lr: float) -> list[float]:
    losses = []
    for _ in range(steps):
        loss = cross_entropy(model(x), y)
        for p in model.parameters():
            p.grad = None
        loss.backward()
        with no_grad():
            for p in model.parameters():
                p -= lr * p.grad
        losses.append(float(loss))
    return losses


def test_the_mlp_trains_on_array_api_strict_with_the_numbers_it_has_on_numpy() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((32, 4)), rng.integers(0, 3, 32)
    on_numpy = nn.MLP(4, [16, 16], 3, dtype=np.float64, rng=0)
    on_strict = nn.MLP(4, [16, 16], 3, dtype=np.float64, rng=0)
    for p in on_strict.parameters():
        p.data = xps.asarray(p.numpy())  # the same weights, held by array-api-strict
    losses = _train(on_numpy, Tensor(x), y, steps=5, lr=0.5)
    strict_losses = _train(on_strict, Tensor(xps.asarray(x)), xps.asarray(y), steps=5, lr=0.5)
    assert losses[-1] < losses[0]  # it learns
    np.testing.assert_allclose(strict_losses, losses, rtol=1e-12)
    for p, q in zip(on_numpy.parameters(), on_strict.parameters(), strict=True):
        assert backend.array_namespace(q) is xps and backend.array_namespace(q.grad) is xps
        np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=1e-12, atol=1e-14)


def test_two_libraries_in_one_operation_raise_naming_the_op_and_both() -> None:
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(xps.ones(3))
    with pytest.raises(TypeError, match=r"mul: .*numpy and array_api_strict.*same library"):
        a * b
    with pytest.raises(TypeError, match=r"matmul: .*numpy and array_api_strict"):
        ops.matmul(b, np.ones(3))


def test_an_op_without_an_array_api_version_says_it_is_numpy_only() -> None:
    cumsum = primitive(np.cumsum, "cumsum")
    with pytest.raises(TypeError, match=r"cumsum: .*NumPy arrays only.*array_api_strict"):
        cumsum(Tensor(xps.ones(3), requires_grad=True))


def test_a_write_through_data_is_caught_on_array_api_strict_too() -> None:
    w = Tensor(xps.ones(4), requires_grad=True)
    loss = (w * w).sum()
    w.data *= 2  # behind the engine's back: only the on-device fingerprint sees it
    with pytest.raises(RuntimeError, match=r"modified in place"):
        loss.backward()


def test_a_tensor_is_an_array_api_object_whose_namespace_records() -> None:
    x = Tensor(xps.asarray([0.5, -1.0]), requires_grad=True)
    xp = x.__array_namespace__()
    assert xp is array_api and backend.namespace(x) is array_api
    y = xp.sum(xp.exp(x) * xp.ones_like(x))  # recorded: d/dx Σ e^x = e^x
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.5, -1.0]), rtol=1e-15)
    assert backend.array_namespace(x.grad) is xps
    assert Tensor(xps.asarray([1, 2])).dtype == xps.int64
    assert repr(Tensor(xps.ones(2))) == "Tensor([1., 1.], dtype=float64)"


@pytest.mark.parametrize("name", ["erf", "erfc", "gelu", "bce_with_logits", "clone"])
def test_the_nn_primitives_give_numpys_values_and_gradients_on_array_api_strict(
    name: str,
) -> None:
    from chainrule.nn import functional as F
    from chainrule.tensor.torch_methods import clone

    fns = {"erf": F.erf, "erfc": F.erfc, "gelu": F.gelu, "clone": clone,
           "bce_with_logits": lambda z: F.bce_with_logits(z, z * 0.0 + 0.25)}  # fmt: skip
    values = np.linspace(-6.0, 3.0, 10)
    results = []
    for make in (np.asarray, xps.asarray):
        x = Tensor(make(values), requires_grad=True)
        out = fns[name](x)
        out.sum().backward()
        assert backend.array_namespace(out) is backend.array_namespace(x.grad)
        results.append((out.numpy(), x.grad.numpy()))
    (v, g), (sv, sg) = results
    np.testing.assert_allclose(sv, v, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(sg, g, rtol=1e-14, atol=1e-300)


@settings(max_examples=40, deadline=None)
@given(shapes=LEAF_SHAPES, steps=programs(), seed=st.integers(0, 2**32 - 1))
def test_random_programs_give_numpys_gradients_on_array_api_strict(
    shapes: Any, steps: Steps, seed: int
) -> None:
    # Random compositions of the ops, first and second order (create_graph): every
    # gradient on array-api-strict equals the one on NumPy and stays in its library.
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal(s) for s in shapes.input_shapes]
    found = []
    for xp in (np, xps):
        xs, txs = leaves(inputs, xp)
        results, _ = run_program(steps, xs, txs)
        ws = [np.random.default_rng(seed + 1).standard_normal(r.shape) for r in xs + results]
        weighted_sum(xs + results, ws, xp).backward(create_graph=True)
        first = [x.grad for x in xs]
        for x in xs:
            x.grad = None
        recorded = [g for g in first if g is not None and g.requires_grad]
        if recorded:
            weighted_sum(recorded, [np.ones(g.shape) for g in recorded], xp).backward()
        for g in [*first, *(x.grad for x in xs)]:
            assert g is None or backend.array_namespace(g) is xp
        found.append([None if g is None else g.numpy() for g in [*first, *(x.grad for x in xs)]])
    for a, b in zip(*found, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
