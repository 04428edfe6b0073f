"""State that a training step reads, under threads and asyncio tasks.

Grad mode, anomaly mode and the ``default_dtype`` block belong to the running thread or
task (ContextVars); the modification clock and ``set_default_dtype`` are process-wide and
safe to share. These tests fail with a process-global grad-mode flag: a thread looping in
``no_grad()`` switched recording off for every other thread.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from chainrule import Tensor, default_dtype, detect_anomaly, is_grad_enabled, no_grad
from chainrule.optim import SGD
from chainrule.tensor import anomaly, ops
from chainrule.tensor.ops.loss import cross_entropy
from chainrule.tensor.primitive import _clock, mark_modified


@pytest.fixture(autouse=True)
def fast_switching() -> Iterator[None]:
    """Switch threads every microsecond, so interleavings that break shared state happen."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def run_threads(*targets: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def guard(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # reported in the main thread
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guard(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    if errors:
        raise errors[0]


def test_no_grad_in_one_thread_leaves_another_threads_graphs_and_gradients_exact() -> None:
    stop = threading.Event()
    bad: list[str] = []

    def evaluator() -> None:
        x = Tensor(np.ones(4))
        while not stop.is_set():
            with no_grad():
                (x * 2.0).sum()

    def trainer() -> None:
        try:
            for step in range(3000):
                w = Tensor(np.arange(1.0, 5.0), requires_grad=True)
                y = (w * w).sum() + (w * 10.0).sum()  # d/dw = 2w + 10 = [12, 14, 16, 18]
                if not y.requires_grad:
                    bad.append(f"step {step}: the graph was not recorded")
                    continue
                y.backward()
                assert w.grad is not None
                if w.grad.numpy().tolist() != [12.0, 14.0, 16.0, 18.0]:
                    bad.append(f"step {step}: w.grad = {w.grad.numpy().tolist()}")
        finally:
            stop.set()

    run_threads(evaluator, trainer)
    assert bad == []
    assert is_grad_enabled()  # and nothing was left switched off for the process


def _train(seed: int, steps: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = Tensor(rng.standard_normal((3, 5)), requires_grad=True)
    b = Tensor(np.zeros(3), requires_grad=True)
    x = Tensor(rng.standard_normal((16, 5)))
    y = rng.integers(0, 3, 16)
    opt = SGD([w, b], lr=0.1, momentum=0.9)
    for _ in range(steps):
        opt.zero_grad()
        loss = cross_entropy(ops.linear(x, w, b).tanh(), y)
        loss.backward()
        opt.step()
        with no_grad():  # an evaluation between steps, as training loops do
            ops.linear(x, w, b).sum()
    return w.numpy().copy()


def test_two_threads_training_two_models_match_the_serial_runs_bitwise() -> None:
    expected = {seed: _train(seed, 200) for seed in (1, 2)}
    got: dict[int, np.ndarray] = {}

    def job(seed: int) -> Callable[[], None]:
        def run() -> None:
            got[seed] = _train(seed, 200)

        return run

    run_threads(job(1), job(2))
    for seed in (1, 2):
        np.testing.assert_array_equal(got[seed], expected[seed])


def test_a_new_thread_starts_recording_even_when_its_parent_is_in_no_grad() -> None:
    seen: list[bool] = []
    with no_grad():
        run_threads(lambda: seen.append(is_grad_enabled()))
        assert not is_grad_enabled()
    assert seen == [True]


def test_anomaly_mode_is_per_thread() -> None:
    inside = threading.Event()
    release = threading.Event()
    other: list[bool] = []

    def checker() -> None:
        with detect_anomaly():
            inside.set()
            release.wait(30)

    def observer() -> None:
        inside.wait(30)
        other.append(anomaly.is_anomaly_enabled())
        # an op that makes inf: no AnomalyError here, the other thread's mode is its own
        other.append(bool(np.isinf((Tensor(np.array([0.0]), requires_grad=True).log()).numpy())[0]))
        release.set()

    run_threads(checker, observer)
    assert other == [False, True]


def test_asyncio_tasks_keep_their_own_grad_mode() -> None:
    async def evaluate() -> list[bool]:
        seen = []
        with no_grad():
            for _ in range(5):
                await asyncio.sleep(0)  # let the other task run inside this block
                seen.append(is_grad_enabled())
        return seen

    async def train() -> list[bool]:
        seen = []
        for _ in range(5):
            await asyncio.sleep(0)
            w = Tensor(np.ones(2), requires_grad=True)
            seen.append((w * 3.0).requires_grad)
        return seen

    async def main() -> tuple[list[bool], list[bool]]:
        a, b = await asyncio.gather(evaluate(), train())
        return a, b

    evaluated, trained = asyncio.run(main())
    assert evaluated == [False] * 5
    assert trained == [True] * 5


def test_a_decorated_no_grad_function_runs_in_several_threads_at_once() -> None:
    @no_grad()
    def evaluate(x: Tensor) -> bool:
        return (x * 2.0).requires_grad

    results: list[bool] = []

    def worker() -> None:
        x = Tensor(np.ones(3), requires_grad=True)
        for _ in range(500):
            results.append(evaluate(x))
            if not (x * 2.0).requires_grad:  # outside the decorated call: recorded
                results.append(True)

    run_threads(worker, worker)
    assert results == [False] * 1000


def test_the_modification_clock_loses_no_change_under_concurrent_writers() -> None:
    tensors = [Tensor(np.zeros(2)) for _ in range(4)]
    start = _clock[0]

    def writer(t: Tensor) -> Callable[[], None]:
        def run() -> None:
            for _ in range(5000):
                mark_modified(t)

        return run

    run_threads(*(writer(t) for t in tensors))
    assert _clock[0] - start == 4 * 5000
    assert all(t._version[0] == 5000 for t in tensors)


def test_an_in_place_change_made_by_another_thread_is_caught_at_backward() -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    x = Tensor(np.arange(3.0))
    y = (w * x).sum()  # saves x
    run_threads(lambda: x.__imul__(2.0))
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_default_dtype_block_in_one_thread_does_not_change_another_threads_tensors() -> None:
    inside = threading.Event()
    release = threading.Event()
    dtypes: list[str] = []

    def float64_block() -> None:
        with default_dtype(np.float64):
            dtypes.append(str(Tensor([1.0]).dtype))
            inside.set()
            release.wait(30)

    def other() -> None:
        inside.wait(30)
        dtypes.append(str(Tensor([1.0]).dtype))
        release.set()

    run_threads(float64_block, other)
    assert dtypes == ["float64", "float32"]
