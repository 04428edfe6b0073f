"""chainrule.compile: the replayed program gives eager mode's bits, and says what it cannot do."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule
from chainrule import Tensor, nn, optim
from chainrule.compile import TraceError
from chainrule.nn import functional as F

OPTIMIZERS: dict[str, Callable[[list[Any]], optim.Optimizer]] = {
    "sgd": lambda p: optim.SGD(p, lr=0.1),
    "momentum": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "nesterov": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, dampening=0.0),
    "adam": lambda p: optim.Adam(p, lr=0.01),
    "adamw": lambda p: optim.AdamW(p, lr=0.01, weight_decay=0.05),
}


def make_fused(opt_name: str, dropout: float) -> tuple[nn.Module, Callable[..., Any]]:
    """An nn.MLP trained with the fused ops (linear, cross_entropy)."""
    nn.manual_seed(0)
    model = nn.MLP(2, [16, 16], 3, dropout=dropout)
    opt = OPTIMIZERS[opt_name](list(model.parameters()))

    def step(x: Tensor, y: np.ndarray) -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, step


def make_plain(opt_name: str, dropout: float) -> tuple[list[Tensor], Callable[..., Any]]:
    """The same network written with plain ops: @, +, relu, exp/sum/log (a softmax loss)."""
    rng = np.random.default_rng(3)
    sizes = [2, 16, 16, 3]
    ws = [Tensor(rng.standard_normal((a, b)) * 0.5, requires_grad=True, dtype=np.float32)
          for a, b in itertools.pairwise(sizes)]  # fmt: skip
    bs = [Tensor(np.zeros(b), requires_grad=True, dtype=np.float32) for b in sizes[1:]]
    params = [*ws, *bs]
    opt = OPTIMIZERS[opt_name](params)

    def step(x: Tensor, onehot: Tensor) -> Tensor:
        h = x
        for k, (w, b) in enumerate(zip(ws, bs, strict=True)):
            h = h @ w + b
            if k < len(ws) - 1:
                h = F.dropout(h.relu(), dropout)
        e = (h - h.max(axis=1, keepdims=True)).exp()
        logp = (e / e.sum(axis=1, keepdims=True)).log()
        loss = -(logp * onehot).sum() / x.shape[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return params, step


def data(n: int = 100, seed: int = 1) -> tuple[Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    return Tensor(rng.standard_normal((n, 2)).astype(np.float32)), rng.integers(0, 3, n)


def run(step: Callable[..., Any], args: tuple[Any, ...], n: int) -> list[float]:
    nn.manual_seed(7)  # the dropout masks' stream
    return [step(*args).item() for _ in range(n)]


def same_arrays(a: list[Tensor], b: list[Tensor]) -> bool:
    return all(
        np.array_equal(p.numpy(), q.numpy(), equal_nan=True) for p, q in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_fused_mlp_compiled_equals_eager_bitwise_after_100_steps(
    opt_name: str, dropout: float
) -> None:
    eager_model, eager_step = make_fused(opt_name, dropout)
    model, step = make_fused(opt_name, dropout)
    compiled = chainrule.compile(step)
    x, y = data()
    assert run(eager_step, (x, y), 100) == run(compiled, (x, y), 100)
    assert same_arrays(list(eager_model.parameters()), list(model.parameters()))
    assert compiled.traces <= 3  # traced while the optimiser's state settles, then replayed


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("opt_name", ["sgd", "momentum", "adam", "adamw"])
def test_plain_ops_mlp_compiled_equals_eager_bitwise(opt_name: str, dropout: float) -> None:
    eager_params, eager_step = make_plain(opt_name, dropout)
    params, step = make_plain(opt_name, dropout)
    compiled = chainrule.compile(step)
    x, y = data()
    onehot = Tensor(np.eye(3, dtype=np.float32)[y])
    assert run(eager_step, (x, onehot), 100) == run(compiled, (x, onehot), 100)
    assert same_arrays(eager_params, params)
    assert same_arrays([p.grad for p in eager_params], [p.grad for p in params])


def test_source_shows_forward_backward_and_update_as_numpy() -> None:
    _, step = make_fused("sgd", 0.0)
    compiled = chainrule.compile(step)
    x, y = data()
    for _ in range(3):
        compiled(x, y)
    src = compiled.source
    for part in ("# -- forward", "# -- backward", "# -- update", "np.maximum(", " @ ", "np.exp("):
        assert part in src
    assert "layers_0_weight -= layers_0_weight_tmp0" in src  # the SGD update, by name
    assert compiled.traces == 2  # the first call creates .grad and SGD's scratch buffers


def test_new_shapes_trace_again_and_known_shapes_reuse_their_program() -> None:
    eager_model, eager_step = make_fused("momentum", 0.0)
    model, step = make_fused("momentum", 0.0)
    compiled = chainrule.compile(step)
    batches = [data(100, 1), data(100, 2), data(37, 3), data(37, 4), data(100, 5), data(37, 6)]
    out_eager = [eager_step(*b).item() for b in batches]
    out = [compiled(*b).item() for b in batches]
    assert out == out_eager
    assert same_arrays(list(eager_model.parameters()), list(model.parameters()))
    assert compiled.traces == 3  # 100 (state created, then settled), 37 once; then reuse


def test_dropout_masks_differ_across_calls_and_equal_eager_masks() -> None:
    drop = nn.Dropout(0.5)

    def masks(x: Tensor) -> Tensor:
        return drop(x) * 1.0

    compiled = chainrule.compile(masks)
    x = Tensor(np.ones((8, 50), np.float32))
    nn.manual_seed(11)
    eager = [masks(x).numpy().copy() for _ in range(4)]
    nn.manual_seed(11)
    traced = [compiled(x).numpy().copy() for _ in range(4)]
    assert compiled.traces == 1
    assert all(np.array_equal(a, b) for a, b in zip(eager, traced, strict=True))
    assert not np.array_equal(traced[1], traced[2])  # two replays, two fresh masks
    assert "random(" in compiled.source


def test_layer_generator_draws_come_from_that_generator() -> None:
    def model(seed: int) -> nn.Module:
        return nn.Dropout(0.5, rng=seed)

    eager, traced = model(3), model(3)
    compiled = chainrule.compile(lambda x: traced(x) * 1.0)
    x = Tensor(np.ones((4, 30), np.float32))
    a = [eager(x).numpy().copy() for _ in range(3)]
    b = [compiled(x).numpy().copy() for _ in range(3)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


def test_value_dependent_control_flow_raises_naming_the_line() -> None:
    w = Tensor(np.ones(3, np.float32), requires_grad=True)

    def step(x: Tensor) -> Tensor:
        loss = (w * x).sum()
        if loss > 0:  # depends on the data: a trace cannot follow it
            loss = loss * 2
        return loss

    with pytest.raises(TraceError, match=r"test_compile\.py:\d+ \(`if loss > 0:") as info:
        chainrule.compile(step)(Tensor(np.ones(3, np.float32)))
    assert "return the tensor" in str(info.value)
    assert np.array_equal(w.numpy(), np.ones(3, np.float32))  # nothing left traced
    assert type(w.numpy()) is np.ndarray


def test_item_inside_the_step_raises() -> None:
    w = Tensor(np.ones(3, np.float32), requires_grad=True)

    def step(x: Tensor) -> float:
        return (w * x).sum().item()

    with pytest.raises(TraceError, match=r"`item\(\)`.*test_compile\.py"):
        chainrule.compile(step)(Tensor(np.ones(3, np.float32)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_non_finite_loss_falls_back_to_eager_through_the_guard() -> None:
    eager_model, eager_step = make_fused("sgd", 0.0)
    model, step = make_fused("sgd", 0.0)
    compiled = chainrule.compile(step)
    x, y = data()
    for _ in range(3):
        assert compiled(x, y).item() == eager_step(x, y).item()
    bad = x.numpy().copy()
    bad[0, 0] = np.inf  # a row of logits with inf: the engine's guarded path
    with np.errstate(all="ignore"):
        a, b = eager_step(Tensor(bad), y).item(), compiled(Tensor(bad), y).item()
    assert np.isnan(a) == np.isnan(b) and (np.isnan(a) or a == b)
    assert same_arrays(list(eager_model.parameters()), list(model.parameters()))


def test_changed_learning_rate_and_eval_mode_trace_again() -> None:
    def make() -> tuple[nn.Module, optim.Optimizer, Callable[..., Any]]:
        nn.manual_seed(0)
        model = nn.MLP(2, [16], 3, dropout=0.3)
        opt = optim.SGD(model.parameters(), lr=0.1)

        def step(x: Tensor, y: np.ndarray) -> Tensor:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        return model, opt, step

    (e_model, e_opt, e_step), (model, opt, step) = make(), make()
    compiled = chainrule.compile(step)
    x, y = data()
    nn.manual_seed(1)
    theirs = [e_step(x, y).item() for _ in range(3)]
    nn.manual_seed(1)
    ours = [compiled(x, y).item() for _ in range(3)]
    traces = compiled.traces
    for o, m in ((e_opt, e_model), (opt, model)):
        o.param_groups[0]["lr"] = 0.01
        m.eval()
    theirs += [e_step(x, y).item() for _ in range(2)]
    ours += [compiled(x, y).item() for _ in range(2)]
    assert ours == theirs
    assert compiled.traces == traces + 1
    assert same_arrays(list(e_model.parameters()), list(model.parameters()))


def test_hooks_make_compile_run_eagerly_with_a_warning() -> None:
    w = Tensor(np.ones(3, np.float32), requires_grad=True)
    seen: list[np.ndarray] = []

    def step(x: Tensor) -> Tensor:
        y = w * x
        y.register_hook(lambda g: seen.append(g.numpy().copy()))
        loss = y.sum()
        loss.backward()
        return loss

    compiled = chainrule.compile(step)
    x = Tensor(np.arange(3, dtype=np.float32))
    with pytest.warns(RuntimeWarning, match="registers a tensor hook"):
        compiled(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning only
        compiled(x)
        compiled(x)
    assert len(seen) == 3  # the hook ran on every call
    assert np.array_equal(w.grad.numpy(), 3 * np.arange(3, dtype=np.float32))


def test_anomaly_mode_runs_eagerly() -> None:
    _, step = make_fused("sgd", 0.0)
    compiled = chainrule.compile(step)
    x, y = data()
    with chainrule.detect_anomaly(), pytest.warns(RuntimeWarning, match="detect_anomaly"):
        compiled(x, y)
    assert compiled.traces == 0


def test_shared_weight_with_accumulated_gradients_equals_eager() -> None:
    def make() -> tuple[Tensor, Callable[..., Any]]:
        rng = np.random.default_rng(0)
        w = Tensor(rng.standard_normal((8, 8)).astype(np.float32) * 0.3, requires_grad=True)
        opt = optim.SGD([w], lr=0.1, momentum=0.5)

        def step(x: Tensor) -> Tensor:
            h = (x @ w).relu()
            h = (h @ w).relu()
            h = (h @ w).tanh()
            loss = (h * h).sum() + (x @ w).sum() * 0.1  # four uses of w: three sums of grads
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        return w, step

    (w1, eager), (w2, step) = make(), make()
    compiled = chainrule.compile(step)
    x = Tensor(np.random.default_rng(1).standard_normal((30, 8)).astype(np.float32))
    assert run(eager, (x,), 50) == run(compiled, (x,), 50)
    assert same_arrays([w1], [w2])


def test_large_intermediates_are_freed_after_last_use_and_results_stay_equal() -> None:
    def make() -> tuple[nn.Module, Callable[..., Any]]:
        nn.manual_seed(0)
        model = nn.MLP(64, [512], 10, dropout=0.1)  # 256 x 512 float32 activations: 512 KB
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

        def step(x: Tensor, y: np.ndarray) -> Tensor:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        return model, step

    (m1, eager), (m2, step) = make(), make()
    compiled = chainrule.compile(step)
    rng = np.random.default_rng(0)
    x, y = Tensor(rng.standard_normal((256, 64)).astype(np.float32)), rng.integers(0, 10, 256)
    assert run(eager, (x, y), 5) == run(compiled, (x, y), 5)
    assert same_arrays(list(m1.parameters()), list(m2.parameters()))
    assert "\n    del " in compiled.source


@pytest.mark.parametrize("dataset", ["moons", "digits"])
def test_fit_with_compile_gives_the_same_history_as_eager(dataset: str) -> None:
    from chainrule.data import load_dataset
    from chainrule.training import build_model, default_config, fit

    splits = load_dataset(dataset)
    config = default_config(dataset, epochs=2)  # digits: dropout 0.3, a cosine schedule
    runs = []
    for compiled in (False, True):
        model = build_model(config, splits.info)
        history = fit(model, splits, config, compile=compiled)
        runs.append(([(m.train_loss, m.train_acc, m.test_loss, m.test_acc) for m in history],
                     [p.numpy().copy() for p in model.parameters()]))  # fmt: skip
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))


def test_cli_train_compile_writes_the_same_metrics_as_eager(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv

    from chainrule.cli import main

    rows = []
    for flag in ([], ["--compile"]):
        out = tmp_path / f"run{len(flag)}"
        code = main(["train", "--dataset", "moons", "--epochs", "2", "--no-plots",
                     "--out", str(out), *flag])  # fmt: skip
        assert code == 0
        assert "steps/s" in capsys.readouterr().out
        with open(out / "metrics.csv") as f:
            rows.append([{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)])
    assert rows[0] == rows[1]


def test_a_new_learning_rate_is_read_by_the_program_without_tracing_again() -> None:
    def make() -> tuple[nn.Module, optim.Optimizer, Callable[..., Any]]:
        nn.manual_seed(0)
        model = nn.MLP(2, [16], 3)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(x: Tensor, y: np.ndarray) -> Tensor:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        return model, opt, step

    (e_model, e_opt, e_step), (model, opt, step) = make(), make()
    compiled = chainrule.compile(step)
    x, y = data()
    theirs, ours = [], []
    for k in range(12):
        for o in (e_opt, opt):
            o.param_groups[0]["lr"] = 0.1 / (1 + k)  # a schedule: a new float every call
        theirs.append(e_step(x, y).item())
        ours.append(compiled(x, y).item())
    assert ours == theirs
    assert same_arrays(list(e_model.parameters()), list(model.parameters()))
    assert compiled.traces == 2
    assert "param_groups[0]['lr']" in compiled.source
