"""checkpoint and checkpoint_sequential: the same gradients as without, for less memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule
from chainrule import Tensor, nn
from chainrule.utils import checkpoint_plan
from chainrule.utils.checkpoint import checkpoint, checkpoint_sequential

TOL = 1e-12


def _float64(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    return module


def mlp(depth: int = 6, width: int = 5, dropout: float = 0.0, seed: int = 0) -> nn.Sequential:
    nn.manual_seed(seed)
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return _float64(nn.Sequential(*layers, nn.Linear(width, 1)))  # type: ignore[return-value]


class Residual(nn.Module):
    def __init__(self, width: int) -> None:
        self.inner = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width))

    def forward(self, x: Any) -> Any:
        return x + self.inner(x)


def gradients(model: nn.Module, x0: np.ndarray, run: Callable[[Tensor], Tensor]) -> list[Any]:
    """d(sum of outputs)/d(input and every parameter), after ``run`` with rng seeded."""
    model.zero_grad()
    nn.manual_seed(123)  # the same dropout masks for every run
    x = Tensor(x0, requires_grad=True)
    run(x).sum().backward()
    assert x.grad is not None
    return [x.grad.numpy().copy()] + [p.grad.numpy().copy() for p in model.parameters()]


def assert_same(got: list[Any], want: list[Any]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=TOL)


X = np.random.default_rng(0).normal(size=(7, 5))


@pytest.mark.parametrize("segments", [1, 2, 3, 13, "log"])
def test_sequential_mlp_gradients_equal_plain(segments: int | str) -> None:
    net = mlp()
    plain = gradients(net, X, net)
    assert_same(gradients(net, X, lambda x: checkpoint_sequential(net, segments, x)), plain)


def test_checkpointed_gradients_agree_with_finite_differences() -> None:
    net = nn.Sequential(nn.Linear(5, 4, rng=0), nn.Tanh(), nn.Linear(4, 2, rng=1))
    _float64(net)
    chainrule.gradcheck(lambda x: checkpoint(net, x), X)


def test_residual_blocks_and_shared_parameters() -> None:
    block = _float64(Residual(5))
    shared = _float64(nn.Linear(5, 5, rng=3))  # used inside and outside the checkpoints

    def plain(x: Tensor) -> Tensor:
        return block(shared(block(shared(x))))  # type: ignore[no-any-return]

    def ckpt(x: Tensor) -> Tensor:
        h = checkpoint(lambda t: block(shared(t)), x)
        return block(checkpoint(shared, h))  # type: ignore[no-any-return]

    model = nn.Sequential(block, shared)
    assert_same(gradients(model, X, ckpt), gradients(model, X, plain))


def test_dropout_masks_replayed() -> None:
    def models() -> tuple[nn.Module, nn.Module]:
        # Built afresh per run: the second Dropout draws from its own generator (rng=7).
        own = _float64(nn.Sequential(nn.Dropout(0.5, rng=7), nn.Linear(1, 1, rng=1)))
        return mlp(dropout=0.5), own

    net, own = models()
    plain = gradients(nn.Sequential(net, own), X, lambda x: own(net(x)))
    net, own = models()
    got = gradients(
        nn.Sequential(net, own), X, lambda x: checkpoint(own, checkpoint_sequential(net, 3, x))
    )
    assert_same(got, plain)


def test_replay_leaves_the_callers_stream_where_the_plain_run_leaves_it() -> None:
    net = mlp(dropout=0.5)
    gradients(net, X, net)
    after_plain = nn.rng.default_generator().random(3)
    gradients(net, X, lambda x: checkpoint_sequential(net, 3, x))
    np.testing.assert_array_equal(nn.rng.default_generator().random(3), after_plain)
    state = nn.rng.get_rng_state()
    first = nn.rng.default_generator().random(2)
    nn.rng.set_rng_state(state)
    np.testing.assert_array_equal(nn.rng.default_generator().random(2), first)


def test_without_rng_replay_masks_differ() -> None:
    net = mlp(dropout=0.5)
    plain = gradients(net, X, net)
    got = gradients(
        net, X, lambda x: checkpoint(net, x, preserve_rng_state=False)
    )  # the recomputation draws new masks: the gradients are wrong
    assert any(np.abs(g - w).max() > 1e-3 for g, w in zip(got, plain, strict=True))


def test_nested_checkpoints() -> None:
    net = mlp(depth=4)
    inner, outer = net[:4], net[4:]

    def nested(x: Tensor) -> Tensor:
        return checkpoint(lambda t: outer(checkpoint(inner, t)), x)  # type: ignore[no-any-return]

    assert_same(gradients(net, X, nested), gradients(net, X, net))


def test_no_input_requires_grad_parameters_still_get_gradients() -> None:
    net = mlp()
    x = Tensor(X)  # requires_grad=False: only the closure's parameters need gradients
    net(x).sum().backward()
    want = [p.grad.numpy().copy() for p in net.parameters()]
    net.zero_grad()
    out = checkpoint(net, x)
    assert out.requires_grad
    out.sum().backward()
    assert_same([p.grad.numpy() for p in net.parameters()], want)


def test_nothing_requires_grad_records_nothing() -> None:
    out = checkpoint(lambda t: t * 2, Tensor(X))
    assert not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), X * 2)


def test_tuple_outputs_one_unused() -> None:
    w = Tensor(np.linspace(0.5, 1.5, 5), requires_grad=True)

    def f(x: Tensor) -> tuple[Tensor, Tensor, str]:
        return (x * w).tanh(), (x - w) ** 2, "tag"

    x = Tensor(X, requires_grad=True)
    a, b, tag = f(x)
    (a.sum() * 3).backward()
    want = [x.grad.numpy().copy(), w.grad.numpy().copy()]  # type: ignore[union-attr]
    x.grad = w.grad = None
    a, b, tag = checkpoint(f, x)
    assert tag == "tag" and b.shape == X.shape
    (a.sum() * 3).backward()  # b is not used by the loss
    assert_same([x.grad.numpy(), w.grad.numpy()], want)  # type: ignore[union-attr]


def test_unused_output_leaves_grad_none() -> None:
    net = mlp(depth=1)
    x = Tensor(X, requires_grad=True)
    checkpoint(net, x)
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full_like(X, 2))  # type: ignore[union-attr]
    assert all(p.grad is None for p in net.parameters())


def test_gradcheck_order_two_through_checkpoint() -> None:
    w = np.random.default_rng(1).normal(size=(5, 3))

    def f(x: Any, w: Any) -> Any:
        return checkpoint(lambda a, b: (a @ b).tanh() * a.sum(), x, w)

    assert chainrule.gradcheck(f, X, w, order=2)


def test_gradcheck_order_two_through_nested_checkpoints() -> None:
    w = np.random.default_rng(1).normal(size=(5, 5))

    def inner(a: Any, b: Any) -> Any:
        return (a @ b).tanh()

    def f(x: Any, w: Any) -> Any:
        return checkpoint(lambda a, b: checkpoint(inner, a, b).sin() * b.sum(), x, w)

    assert chainrule.gradcheck(f, X, w, order=2)


def test_double_backward_with_closure_parameter_shared_below() -> None:
    # w is read inside the checkpoint (closure) and also made its input: the second
    # derivative must count each path once.
    w = Tensor(np.array([0.3, -0.7, 1.1, 0.2, -0.4]), requires_grad=True)

    def hvp(ckpt: bool) -> np.ndarray:
        w.grad = None
        x = Tensor(X)
        h = (x * w).sin()
        body = lambda t: (t * w).tanh().sum()  # noqa: E731
        y = checkpoint(body, h) if ckpt else body(h)
        y.backward(create_graph=True)
        g = w.grad
        w.grad = None
        (g * Tensor(np.arange(5.0))).sum().backward()
        return w.grad.numpy().copy()  # type: ignore[union-attr]

    np.testing.assert_allclose(hvp(True), hvp(False), rtol=0, atol=TOL)


def test_parameter_hooks_run_once() -> None:
    net = mlp(depth=2)
    calls: list[int] = []

    def double(g: Tensor) -> Tensor:
        calls.append(1)
        return g * 2

    plain = gradients(net, X, net)
    net[0].weight.register_hook(double)
    got = gradients(net, X, lambda x: checkpoint_sequential(net, 2, x))
    assert len(calls) == 1
    np.testing.assert_allclose(got[1], 2 * plain[1], rtol=0, atol=TOL)  # doubled once
    assert_same(got[2:], plain[2:])


def test_closure_intermediate_used_only_inside() -> None:
    w = Tensor(np.linspace(-1.0, 1.0, 5), requires_grad=True)

    def run(ckpt: bool) -> np.ndarray:
        w.grad = None
        h = w.exp()  # an intermediate read from the closure, used by nothing else
        body = lambda x: (x * h).tanh()  # noqa: E731
        (checkpoint(body, Tensor(X)) if ckpt else body(Tensor(X))).sum().backward()
        return w.grad.numpy().copy()  # type: ignore[union-attr]

    np.testing.assert_allclose(run(True), run(False), rtol=0, atol=TOL)


def test_closure_intermediate_used_outside_too_is_reported() -> None:
    w = Tensor(np.linspace(-1.0, 1.0, 5), requires_grad=True)
    h = w.exp()
    out = checkpoint(lambda x: (x * h).tanh(), Tensor(X)).sum() + h.sum()
    with pytest.raises(RuntimeError, match="was freed by an earlier backward"):
        out.backward()
    assert w.grad is None


def test_input_modified_in_place_between_forward_and_backward() -> None:
    net = mlp(depth=2)
    x = Tensor(X)
    h = x * 1.0
    out = checkpoint(net, h)
    h += 1.0  # changes what the recomputation would read
    with pytest.raises(RuntimeError, match="'checkpoint' saved for its backward pass was modified"):
        out.sum().backward()
    assert all(p.grad is None for p in net.parameters())  # nothing half-accumulated


def test_parameter_updated_before_backward_is_caught() -> None:
    net = mlp(depth=2)
    out = checkpoint(net, Tensor(X))
    with chainrule.no_grad():
        net[0].weight -= 0.1
    with pytest.raises(RuntimeError, match="modified in place"):
        out.sum().backward()


def test_bad_segments_and_functions() -> None:
    net = mlp(depth=1)
    x = Tensor(X)
    for bad in (0, 4, 2.5, "sqrt", True):
        with pytest.raises(ValueError, match="segments must be an int from 1 to"):
            checkpoint_sequential(net, bad, x)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pass one of them"):
        checkpoint_sequential(net, 2, x, budget_bytes=10**6)
    with pytest.raises(TypeError, match="non-empty Sequential or list"):
        checkpoint_sequential([], 1, x)


# -- the planner ---------------------------------------------------------------------------


def test_budget_too_small_names_smallest_feasible_budget() -> None:
    net = mlp(depth=8, width=16)
    x = Tensor(np.ones((64, 16)))
    sizes = checkpoint_plan.measure(list(net), x)
    smallest = min(p.peak_bytes for p in checkpoint_plan.candidates(sizes))
    with pytest.raises(ValueError, match=f"smallest feasible budget is {smallest:,} bytes"):
        checkpoint_sequential(net, None, x, budget_bytes=smallest - 1)
    out = checkpoint_sequential(net, None, x, budget_bytes=smallest)  # exactly enough: fits
    assert out.shape == (64, 1)


def test_measured_sizes_are_the_lectures_activations() -> None:
    net = mlp(depth=3, width=16)
    sizes = checkpoint_plan.measure(list(net), Tensor(np.ones((10, 16))))
    act = 10 * 16 * 8
    # ReLU keeps its output h_k (its rule reads the mask from it; the next Linear reads it
    # too: counted once); Linear keeps no output f_k (ReLU reads only its shape), nor does
    # the last one. The input and parameters are leaves.
    assert [s.activation_bytes for s in sizes] == [0, act] * 3 + [0]
    assert [s.output_bytes for s in sizes] == [act] * 6 + [10 * 8]


def test_greedy_plan_on_uniform_layers() -> None:
    sizes = [checkpoint_plan.LayerSize(100, 100)] * 16
    whole = checkpoint_plan.plan(sizes, 10**9)
    assert whole.segments == ((0, 16),) and whole.recomputed_layers == 0
    # four segments of four: 3 boundaries + 4 layers (+ 3 gradients in flight)
    four = checkpoint_plan.peak_bytes(sizes, [(0, 4), (4, 8), (8, 12), (12, 16)])
    assert four == (3 + 4 + 3) * 100
    tight = checkpoint_plan.plan(sizes, four)
    assert tight.peak_bytes <= four
    assert tight.peak_bytes < checkpoint_plan.peak_bytes(sizes, [(0, 16)])


def _activation_peak(net: nn.Module, x: Tensor, run: Callable[[Tensor], Tensor]) -> int:
    """Peak traced bytes of forward + backward, less parameter gradients (as budgeted)."""
    net.zero_grad()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        run(x).sum().backward()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    grads = sum(p.grad.numpy().nbytes for p in net.parameters() if p.grad is not None)
    return peak - grads


def test_planned_run_stays_under_budget_measured_by_tracemalloc() -> None:
    net = mlp(depth=16, width=32)
    # Activations of 256 KB: the graph's Python objects (~1 KB a node) are small beside them.
    x = Tensor(np.random.default_rng(2).normal(size=(1024, 32)))
    sizes = checkpoint_plan.measure(list(net), x)
    plain_estimate = checkpoint_plan.peak_bytes(sizes, [(0, len(sizes))])
    smallest = min(p.peak_bytes for p in checkpoint_plan.candidates(sizes))
    plain = _activation_peak(net, x, net)
    for fraction in (0.6, 0.3, 0.0):  # from near the plain run's down to the smallest plan
        budget = int(smallest + (plain_estimate - smallest) * fraction)
        checkpoint_sequential(net, None, x, budget_bytes=budget)  # sizes measured (cached)
        planned = _activation_peak(
            net, x, lambda t, b=budget: checkpoint_sequential(net, None, t, b)
        )
        assert plain > budget  # the budget binds: without a plan the run would not fit
        assert planned <= budget, (fraction, planned, budget)


def test_sequential_gradients_match_pytorch() -> None:
    import torch

    net = mlp(depth=5)
    got = gradients(net, X, lambda x: checkpoint_sequential(net, 3, x))
    layers: list[Any] = []
    for m in net:
        if isinstance(m, nn.Linear):
            lin = torch.nn.Linear(m.in_features, m.out_features, dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(m.weight.numpy()))
                lin.bias.copy_(torch.from_numpy(m.bias.numpy()))
            layers.append(lin)
        else:
            layers.append(torch.nn.ReLU())
    tnet = torch.nn.Sequential(*layers)
    tx = torch.tensor(X, requires_grad=True)
    tnet(tx).sum().backward()
    assert tx.grad is not None
    want = [tx.grad.numpy()] + [p.grad.numpy() for p in tnet.parameters()]  # type: ignore[union-attr]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
