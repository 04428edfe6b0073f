"""SGD's last step, p -= lr * d through a scratch array, in blocks of rows on large
parameters (chainrule.optim.arrays.descend): the bits of the two whole-array lines."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import Tensor, nn, optim
from chainrule.optim import arrays


def values(shape: tuple[int, ...], seed: int, dtype: type = np.float32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 6, shape)).astype(dtype)
    specials = np.array([np.inf, -np.inf, np.nan, -0.0, 0.0, 1e-40, 3e38]).astype(dtype)
    flat = a.reshape(-1)
    picks = rng.choice(flat.size, size=min(flat.size, 7), replace=False)
    flat[picks] = specials[: picks.size]
    return a


def reference(p: np.ndarray, d: np.ndarray, lr: float) -> np.ndarray:
    tmp = np.empty_like(p)
    np.multiply(d, lr, out=tmp)
    out = p.copy()
    out -= tmp
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(37, 11), (5, 3, 4), (1, 50), (50, 1)])
@pytest.mark.parametrize("d_is_tmp", [False, True])
def test_blocked_descent_gives_the_two_lines_bits(
    dtype: type, shape: tuple[int, ...], d_is_tmp: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(arrays, "BLOCKED_BYTES", 16)  # block even these small arrays
    monkeypatch.setattr(
        arrays, "BLOCK_BYTES", 3 * int(np.prod(shape[1:])) * np.dtype(dtype).itemsize
    )
    with np.errstate(all="ignore"):
        p, d = values(shape, 1, dtype), values(shape, 2, dtype)
        want = reference(p, d, 0.37)
        tmp = d.copy() if d_is_tmp else np.empty_like(p)
        arrays.descend(np, p, tmp if d_is_tmp else d, 0.37, tmp)
    assert np.array_equal(p.view(f"i{p.itemsize}"), want.view(f"i{want.itemsize}"))


def test_blocked_descent_loops_over_row_blocks_and_leaves_d_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, ...]] = []
    multiply = np.multiply

    def counting(a: np.ndarray, b: float, out: np.ndarray) -> np.ndarray:
        calls.append(out.shape)
        return multiply(a, b, out=out)

    p, d = values((10, 4), 3), values((10, 4), 4)
    d_before = d.copy()
    monkeypatch.setattr(arrays, "BLOCKED_BYTES", 16)
    monkeypatch.setattr(arrays, "BLOCK_BYTES", 4 * 4 * 4)  # 4 rows of 4 float32
    monkeypatch.setattr(arrays.np, "multiply", counting)
    with np.errstate(all="ignore"):
        arrays.descend(np, p, d, 0.5, np.empty_like(p))
    assert calls == [(4, 4), (4, 4), (2, 4)]
    assert np.array_equal(d, d_before, equal_nan=True)


def test_overlapping_arrays_are_updated_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # tmp a view of d's memory one row on: rows of tmp written by a block would be read as
    # rows of d by the next. Whole arrays then (NumPy's ufuncs handle the overlap).
    monkeypatch.setattr(arrays, "BLOCKED_BYTES", 16)
    monkeypatch.setattr(arrays, "BLOCK_BYTES", 16)
    base = values((11, 4), 5)
    d, tmp = base[:10], base[1:]
    p = values((10, 4), 6)
    want = reference(p, d.copy(), 0.25)
    with np.errstate(all="ignore"):
        arrays.descend(np, p, d, 0.25, tmp)
    assert np.array_equal(p.view(np.int32), want.view(np.int32))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"momentum": 0.9},
        {"momentum": 0.9, "nesterov": True},
        {"weight_decay": 0.01},
        {"momentum": 0.5, "dampening": 0.3, "weight_decay": 0.1},
    ],
)
def test_sgd_on_a_large_layer_gives_the_bits_of_unblocked_updates(
    kwargs: dict[str, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    def train(blocked: bool) -> list[np.ndarray]:
        monkeypatch.setattr(arrays, "BLOCKED_BYTES", 64 if blocked else 1 << 62)
        monkeypatch.setattr(arrays, "BLOCK_BYTES", 5 * 30 * 4)
        nn.manual_seed(0)
        model = nn.MLP(30, [40], 3)
        opt = optim.SGD(model.parameters(), lr=0.1, **kwargs)
        rng = np.random.default_rng(0)
        x = Tensor(rng.standard_normal((16, 30)).astype(np.float32))
        y = rng.integers(0, 3, 16)
        for _ in range(4):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return [p.numpy().copy() for p in model.parameters()]

    for a, b in zip(train(False), train(True), strict=True):
        assert np.array_equal(a.view(np.int32), b.view(np.int32))
