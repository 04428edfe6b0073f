"""benchmarks/gpu.py, checked where no GPU is: its three candidates make the same step
(run on the CPU: NumPy for CuPy, PyTorch's CPU device), and it says why it measures
nothing on a machine without CuPy or a GPU."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gpu_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "benchmarks" / "gpu.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_the_three_candidates_make_the_same_training_step(gpu_bench: Any) -> None:
    params, x, y = gpu_bench.initial([6, 8, 5, 3], batch=7, seed=1)
    start = [w.copy() for w, _ in params] + [b.copy() for _, b in params]
    runs = {
        "hand": gpu_bench.handwritten(np, params, x, y),
        "chainrule": gpu_bench.chainrule_step(params, x, y, "cpu"),
        "torch": gpu_bench.torch_step(params, x, y, "cpu"),
    }
    losses = {name: [float(step().item()) for _ in range(2)] for name, (step, _) in runs.items()}
    after = {name: read() for name, (_, read) in runs.items()}
    for name in ("hand", "chainrule"):
        np.testing.assert_allclose(losses[name], losses["torch"], rtol=1e-5)
        for a, b, w0 in zip(after[name], after["torch"], start, strict=True):
            assert not np.allclose(a, w0)  # the step changed every array
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_step_flops_counts_forward_and_the_needed_backward_products(gpu_bench: Any) -> None:
    # sizes 2-3-4, batch 5: forward 2·5·(6+12), ∂Ω of both layers the same, ∂h of the second
    assert gpu_bench.step_flops([2, 3, 4], 5) == 180 + 180 + 120


def test_without_a_gpu_it_says_why_and_exits_0_or_1_if_required(
    gpu_bench: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # CuPy absent, whatever this machine has
    assert gpu_bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("gpu.py: no GPU: CuPy does not import") and "chainrule[cuda]" in out
    assert gpu_bench.main(["--require-gpu"]) == 1


def test_unknown_sizes_are_refused(gpu_bench: Any) -> None:
    with pytest.raises(SystemExit):
        gpu_bench.main(["--sizes", "huge"])


def test_the_per_op_hook_counts_the_operations_of_a_step_and_comes_off(gpu_bench: Any) -> None:
    from chainrule.tensor.primitive import Primitive

    original = Primitive.__call__
    params, x, y = gpu_bench.initial([4, 5, 3], batch=6)
    step, _ = gpu_bench.chainrule_step(params, x, y, "cpu")
    calls: list[int] = []
    with gpu_bench.after_every_op(lambda: calls.append(1)) as ops:
        step()
    # forward: linear, relu, linear, cross-entropy; backward: their rules' primitive calls
    assert ops[0] == len(calls) >= 4
    assert Primitive.__call__ is original


def fake_cupy() -> tuple[ModuleType, ModuleType, ModuleType]:
    """A CuPy made of NumPy (one 'GPU', synchronisation a no-op) and its cupyx, to run the
    benchmark's GPU-only code (tables, TF32 switch, sync counts) on the CPU."""
    import contextlib
    import types

    cupy = types.ModuleType("cupy")
    for name in ("asarray", "array", "arange", "maximum", "exp", "log", "float32", "ndarray"):
        setattr(cupy, name, getattr(np, name))
    cupy.__version__ = "0-fake"  # type: ignore[attr-defined]
    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 1, deviceSynchronize=lambda: None,
        getDeviceProperties=lambda i: {"name": b"Fake GPU"}, runtimeGetVersion=lambda: 0,
        driverGetVersion=lambda: 0,
    )  # fmt: skip
    cupy.cuda = types.SimpleNamespace(runtime=runtime)  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    cupy.random = types.SimpleNamespace(  # type: ignore[attr-defined]
        standard_normal=lambda shape, dtype: rng.standard_normal(shape).astype(dtype)
    )
    pool = types.SimpleNamespace(free_all_blocks=lambda: None)
    cupy.get_default_memory_pool = lambda: pool  # type: ignore[attr-defined]
    linalg = types.ModuleType("cupy._core._routines_linalg")
    linalg.COMPUTE_TYPE_TF32, linalg.COMPUTE_TYPE_DEFAULT = 7, 1  # type: ignore[attr-defined]
    linalg.set_compute_type = lambda dtype, kind: None  # type: ignore[attr-defined]
    core = types.ModuleType("cupy._core")
    core._routines_linalg = linalg  # type: ignore[attr-defined]
    cupyx = types.ModuleType("cupyx")

    class DeviceSynchronized(RuntimeError):
        pass

    cupyx.DeviceSynchronized = DeviceSynchronized  # type: ignore[attr-defined]
    cupyx.allow_synchronize = lambda allow: contextlib.nullcontext()  # type: ignore[attr-defined]
    return cupy, core, linalg, cupyx  # type: ignore[return-value]


def test_the_gpu_run_prints_its_tables_on_a_simulated_gpu(
    gpu_bench: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cupy, core, linalg, cupyx = fake_cupy()  # type: ignore[misc]
    for name, module in [("cupy", cupy), ("cupy._core", core), ("cupyx", cupyx),
                         ("cupy._core._routines_linalg", linalg)]:  # fmt: skip
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(gpu_bench, "no_gpu_reason", lambda: None)
    monkeypatch.setitem(gpu_bench.SIZES, "small", ([8, 16, 16, 4], 12, 3, 2))
    peak = gpu_bench.matmul_peak
    monkeypatch.setattr(gpu_bench, "matmul_peak", lambda: peak(n=32, reps=2))
    # PyTorch and chainrule on the CPU (the simulated GPU is NumPy)
    for maker in ("torch_step", "chainrule_step"):
        real = getattr(gpu_bench, maker)
        monkeypatch.setattr(gpu_bench, maker, lambda p, x, y, d, real=real: real(p, x, y, "cpu"))
    assert gpu_bench.main(["--sizes", "small", "--tf32", "--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("device: Fake GPU")
    assert out.count("matmul peak:") == 2 and "== TF32 matmuls" in out
    for name in ("chainrule", "PyTorch", "CuPy by hand"):
        assert out.count(f"  {name:14} ") == 2, out  # one row in each table
    assert out.count("first-step losses agree") == 2
    assert "recorded operations per step (and as many backward nodes)" in out
    assert "target (chainrule within 1.1x of PyTorch)" in out and "FAILED" not in out
