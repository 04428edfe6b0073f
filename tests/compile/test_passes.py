"""chainrule.compile's rewrites of the traced lines: each one keeps eager mode's bits."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

import chainrule
from chainrule import Tensor, nn, optim
from chainrule.compile import blocks
from chainrule.nn import functional as F


def special_values(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Random float32 values with inf, -inf, nan, -0.0 and +0.0 among them."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(np.float32)
    flat = a.reshape(-1)
    picks = rng.choice(flat.size, size=min(flat.size, 10), replace=False)
    specials = np.array([np.inf, -np.inf, np.nan, -0.0, 0.0], np.float32)
    flat[picks] = specials[np.arange(picks.size) % specials.size]
    return a


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.int32)


def relu_grads(transposed: bool) -> Callable[[Tensor], Tensor]:
    x = Tensor(special_values((6, 7), 1), requires_grad=True)

    def step(c: Tensor) -> Tensor:
        x.grad = None
        h = x.relu()
        g_in = c.T if transposed else c  # a gradient in the other memory order than x
        loss = (h * g_in).sum()
        loss.backward()
        return loss

    step.x = x  # type: ignore[attr-defined]
    return step


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf - inf, inf * 0 on purpose
@pytest.mark.parametrize("transposed", [False, True])
def test_relu_backward_line_gives_the_engines_bits_with_inf_nan_and_signed_zeros(
    transposed: bool,
) -> None:
    # The gradient holds inf, nan and -0.0 where x > 0 and where not: a product g * mask
    # (nan where inf meets 0, -0.0 for negative g) or a where() with another zero would
    # differ from the engine's select in these bits.
    eager_step, traced_step = relu_grads(transposed), relu_grads(transposed)
    compiled = chainrule.compile(traced_step)
    shape = (7, 6) if transposed else (6, 7)
    for seed in range(4):
        c = Tensor(special_values(shape, 10 + seed))
        eager_step(c)
        compiled(c)
        want, got = eager_step.x.grad.numpy(), traced_step.x.grad.numpy()  # type: ignore[attr-defined]
        assert np.array_equal(bits(want), bits(got))
        assert want.strides == got.strides
    assert compiled.traces <= 2
    assert "np.multiply(" in compiled.source and ".view(_dtype_int32)" in compiled.source


@pytest.mark.parametrize("small_blocks", [False, True])
def test_blocked_sgd_update_gives_eager_bits(
    small_blocks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 390 x 390 float32 is 594 KB: updated in blocks of rows from 512 KB on. With blocks
    # of 7 rows of 390 (390 rows not a multiple of the block) the 390 x 20 weight is
    # blocked too; the 3 x 390 one fits in one block, and 1-d biases are never blocked.
    monkeypatch.setattr(blocks, "BLOCKED_BYTES", 512 * 1024)
    if small_blocks:
        monkeypatch.setattr(blocks, "BLOCKED_BYTES", 64)
        monkeypatch.setattr(blocks, "BLOCK_BYTES", 7 * 390 * 4)
    eager_params, eager_step = sgd_mlp(20, (390, 390), lr=0.05)
    params, step = sgd_mlp(20, (390, 390), lr=0.05)
    compiled = chainrule.compile(step)
    rng = np.random.default_rng(2)
    x, y = Tensor(rng.standard_normal((8, 20)).astype(np.float32)), rng.integers(0, 3, 8)
    for _ in range(5):
        assert eager_step(x, y).item() == compiled(x, y).item()
    for p, q in zip(eager_params, params, strict=True):
        assert np.array_equal(bits(p.numpy()), bits(q.numpy()))
        assert np.array_equal(bits(p.grad.numpy()), bits(q.grad.numpy()))
    loops = compiled.source.count("for _i in range(")
    assert loops == (2 if small_blocks else 1)


def test_in_place_rewrite_never_writes_an_operand_whose_memory_is_read_later() -> None:
    w = Tensor(np.arange(12, dtype=np.float32).reshape(3, 4) / 7, requires_grad=True)

    def step(x: Tensor) -> Tensor:
        a = x * w  # a fresh array
        view = a.T  # a view of a's memory, read after a's last use by name
        b = a + 1.0  # a is dead by name here: writing b into it would change view
        wt = w.T * 3.0  # w.T views a parameter: never written
        c = w.T + 0.5
        return (b.sum(axis=0) * view.sum(axis=1)).sum() + (wt * c).sum()

    compiled = chainrule.compile(step)
    x = Tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4))
    w_before = w.numpy().copy()
    want = [step(x).item() for _ in range(3)]
    got = [compiled(x).item() for _ in range(3)]
    assert got == want
    assert np.array_equal(w.numpy(), w_before)
    src = compiled.source
    assert "mul1 += 1.0" not in src and "trans2 *= " not in src  # a + 1.0, w.T * 3.0 kept
    assert "in place:" in src  # the pass ran (on lines whose operands are dead)


def test_in_place_rewrite_is_used_on_dead_temporaries_and_keeps_eager_bits() -> None:
    rng = np.random.default_rng(4)
    w = Tensor(rng.standard_normal((5, 3)).astype(np.float32) * 0.3, requires_grad=True)
    opt = optim.SGD([w], lr=0.01)

    def step(x: Tensor) -> Tensor:
        opt.zero_grad()
        h = x @ w + 1.0  # (x @ w) is dead after the add: written in place
        loss = (h.exp() * 0.5).sum()
        loss.backward()
        opt.step()
        return loss

    w_eager = Tensor(w.numpy().copy(), requires_grad=True)
    opt_eager = optim.SGD([w_eager], lr=0.01)

    def eager(x: Tensor) -> Tensor:
        opt_eager.zero_grad()
        loss = ((x @ w_eager + 1.0).exp() * 0.5).sum()
        loss.backward()
        opt_eager.step()
        return loss

    compiled = chainrule.compile(step)
    x = Tensor(rng.standard_normal((4, 5)).astype(np.float32) * 0.3)
    for _ in range(6):
        assert eager(x).item() == compiled(x).item()
    assert np.array_equal(bits(w.numpy()), bits(w_eager.numpy()))
    assert np.array_equal(bits(w.grad.numpy()), bits(w_eager.grad.numpy()))
    assert "in place:" in compiled.source


def sgd_model(
    n_in: int = 2, widths: Sequence[int] = (8,), lr: float = 0.1, dtype: Any = np.float32
) -> tuple[nn.Module, optim.Optimizer, Callable[..., Any]]:
    """An MLP, its SGD optimiser and its step (seeded: two calls give the same model)."""
    nn.manual_seed(0)
    model = nn.MLP(n_in, list(widths), 3)
    for p in model.parameters():
        if p.dtype != dtype:
            p.data = p.data.astype(dtype)
    opt = optim.SGD(model.parameters(), lr=lr)

    def step(x: Tensor, y: np.ndarray) -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, opt, step


def sgd_mlp(
    n_in: int = 2, widths: Sequence[int] = (8,), lr: float = 0.1
) -> tuple[list[Tensor], Callable[..., Any]]:
    """An MLP's parameters and its SGD step."""
    model, _, step = sgd_model(n_in, widths, lr)
    return list(model.parameters()), step


def xy() -> tuple[Tensor, np.ndarray]:
    rng = np.random.default_rng(5)
    return Tensor(rng.standard_normal((10, 2)).astype(np.float32)), rng.integers(0, 3, 10)


def twins(steps: int) -> tuple[list[Tensor], Callable[..., Any], list[Tensor], Any]:
    """The same seeded SGD model twice, one stepped eagerly and one compiled, ``steps``
    calls each on ``xy()``: (eager params, eager step, params, compiled step)."""
    eager_params, eager_step = sgd_mlp()
    params, step = sgd_mlp()
    compiled = chainrule.compile(step)
    x, y = xy()
    for _ in range(steps):
        eager_step(x, y)
        compiled(x, y)
    return eager_params, eager_step, params, compiled


def test_a_kept_old_grad_is_never_overwritten_by_the_next_compiled_step() -> None:
    params, step = sgd_mlp()
    compiled = chainrule.compile(step)
    x, y = xy()
    for _ in range(3):
        compiled(x, y)
    kept = [p.grad for p in params]  # the caller holds the old .grad tensors
    values = [g.numpy().copy() for g in kept]
    compiled(x, y)
    for p, g, v in zip(params, kept, values, strict=True):
        assert p.grad is not g  # a new Tensor, as eager mode makes
        assert np.array_equal(g.numpy(), v)  # the kept one still holds the old gradient


def test_an_unheld_grad_tensor_is_reused_and_a_changed_one_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    eager_params, eager_step, params, compiled = twins(steps=3)
    x, y = xy()
    made: list[int] = []  # Tensors built by the compiled step
    wrap = Tensor._wrap
    monkeypatch.setattr(Tensor, "_wrap", staticmethod(lambda a: made.append(1) or wrap(a)))
    compiled(x, y)
    assert len(made) == 1  # only the loss: every .grad Tensor was reused
    params[0].grad.name = "renamed"  # no longer as a fresh Tensor: must be replaced
    params[1].grad.mul_(2.0)  # changed in place: version bumped, still reusable
    watched = weakref.ref(params[2].grad)  # a weak reference sees the object: replaced
    made.clear()
    compiled(x, y)
    assert len(made) == 3 and watched() is None
    assert params[0].grad.name == ""
    monkeypatch.undo()
    eager_step(x, y)
    eager_step(x, y)
    for p, q in zip(eager_params, params, strict=True):  # (before .numpy() samples them)
        assert q.grad._version == p.grad._version == [0, 0]
        assert q.grad._fp is None and p.grad._fp is None and not q.grad.requires_grad
    for p, q in zip(eager_params, params, strict=True):
        assert np.array_equal(bits(p.grad.numpy()), bits(q.grad.numpy()))
        assert np.array_equal(bits(p.numpy()), bits(q.numpy()))


def test_grad_reuse_covers_every_slot_of_a_tensor() -> None:
    # A slot added to Tensor must be tested or reset by the reused-.grad line as well.
    from chainrule.compile import _engine

    assert set(Tensor.__slots__) == set(_engine.REUSE_COVERS)


def test_a_compiled_update_bumps_each_version_and_the_clock_as_eager_mode_does() -> None:
    from chainrule.tensor import versions

    eager_params, _, params, compiled = twins(steps=4)
    x, y = xy()
    assert [p._version[0] for p in params] == [p._version[0] for p in eager_params]
    before = versions._clock[0]
    compiled(x, y)
    assert versions._clock[0] == before + 1  # one change of all the parameters at once
    assert {p._version[1] for p in params} == {before + 1}
    w = params[0]
    loss = (w * w).sum()  # a graph recorded before the update saved w
    compiled(x, y)
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()  # sees the update, as after an eager step


def test_each_learning_rate_is_read_once_per_call_under_a_name_no_one_else_uses() -> None:
    nn.manual_seed(0)
    model = nn.MLP(2, [8], 3)
    opt = optim.SGD(model.parameters(), lr=0.1)

    def step(lr: Tensor, y: np.ndarray) -> Tensor:  # a user name that is taken: `lr`
        opt.zero_grad()
        loss = F.cross_entropy(model(lr), y)
        loss.backward()
        opt.step()
        return loss

    compiled = chainrule.compile(step)
    x, y = xy()
    compiled(x, y)
    compiled(x, y)
    source = compiled.source
    assert source.count("param_groups[0]['lr']") == 1  # four parameters, one read
    assert "lr_1 = _o" in source and "lr_1_f32 = np.asarray(lr_1, " in source
    assert ", lr_1_f32, out=" in source
    opt.param_groups[0]["lr"] = 0.0  # read afresh on the next call: nothing moves
    before = [p.numpy().copy() for p in model.parameters()]
    compiled(x, y)
    after = [p.numpy() for p in model.parameters()]
    assert all(np.array_equal(b, a) for b, a in zip(before, after, strict=True))
    assert compiled.traces == 2


def test_relus_zero_is_a_typed_constant_that_gives_the_numbers_bits() -> None:
    from chainrule.tensor.ops import elementwise

    for dtype in (np.float16, np.float32, np.float64):
        x = special_values((5, 7), 3).astype(dtype)
        got, want = elementwise._relu(x), np.maximum(x, 0)
        assert got.dtype == want.dtype == dtype
        assert np.array_equal(got.view(f"i{got.itemsize}"), want.view(f"i{want.itemsize}"))
    for x in (np.array([-2, 0, 3]), np.array([True, False])):  # no float: keeps the number
        got, want = elementwise._relu(x), np.maximum(x, 0)
        assert got.dtype == want.dtype and np.array_equal(got, want)
    zero = elementwise._ZEROS[np.dtype(np.float32)]
    with pytest.raises(ValueError):
        zero[...] = 1.0  # read-only: shared by every call
    _, step = sgd_mlp()
    compiled = chainrule.compile(step)
    x, y = xy()
    compiled(x, y)
    compiled(x, y)
    assert "np.maximum(" in compiled.source and ", _zero1)" in compiled.source


@pytest.mark.parametrize("lr", [1 / 3, 1e-8, 0.30000000000000004, np.float64(1 / 3), 2])
def test_a_learning_rate_converted_once_gives_eagers_bits(lr: Any) -> None:
    (e_model, e_opt, e_step), (model, opt, step) = sgd_model(), sgd_model()
    compiled = chainrule.compile(step)
    x, y = xy()
    for k in range(6):
        if k == 3:  # a new value (a NumPy scalar, an int) after the trace: as eager mode
            e_opt.param_groups[0]["lr"] = opt.param_groups[0]["lr"] = lr
        e_step(x, y)
        compiled(x, y)
    assert "lr_f32 = np.asarray(lr, np.float32)" in compiled.source
    assert compiled.traces == 2
    for p, q in zip(e_model.parameters(), model.parameters(), strict=True):
        assert p.dtype == q.dtype == np.float32
        assert np.array_equal(bits(p.numpy()), bits(q.numpy()))


def test_a_float64_update_reads_the_learning_rate_as_it_is() -> None:
    _, _, step = sgd_model(dtype=np.float64)
    compiled = chainrule.compile(step)
    x, y = xy()
    x = Tensor(x.numpy().astype(np.float64))
    compiled(x, y)
    compiled(x, y)
    assert "lr_f32" not in compiled.source and ", lr, out=" in compiled.source
