"""One training step on an NVIDIA GPU: chainrule on CuPy vs PyTorch CUDA vs hand-written CuPy.

A step is forward, softmax cross-entropy (mean over the batch), backward and an SGD update
(lr 0.01), in float32, of two ReLU MLPs:

    small   1024-4096-4096-10   batch 512
    large   4096-8192-8192-10   batch 4096

All three start from the same weights and see the same batch (the test suite checks, on
the CPU, that the three make the same step). They run in alternating blocks of steps
(chainrule, PyTorch, CuPy, then another order, ...) after a warm-up; a block ends with a
device synchronisation, and its time divided by its steps is one sample; the table shows
medians, the achieved TFLOP/s (6·B·Σ in·out per step, less the unneeded ∂ℓ/∂x of the first
layer) and the ratio to PyTorch. Issue #15's target: chainrule within 1.1x of PyTorch.

Also measured: the device's float32 matmul peak (an 8192³ ``cupy.matmul``), and with
``--tf32`` everything again with TF32 tensor cores (PyTorch's
``torch.backends.cuda.matmul.allow_tf32``; CuPy's compute type, which ``CUPY_TF32=1``
sets at its first matmul and ``cupy._core._routines_linalg.set_compute_type`` in-process).

Host synchronisations, three ways. (1) A detector: the step once under
``cupyx.allow_synchronize(False)`` (CuPy raises at the first device synchronisation it
makes: the column shows 0, or where the first one is) and PyTorch's under
``torch.cuda.set_sync_debug_mode("warn")`` (one warning per synchronising call: counted).
(2) Timing: "issue ms" is the host's time to enqueue one step on an idle GPU without
waiting; with no synchronisation the host runs ahead of the GPU, so issue ms is well below
ms/step for a GPU-bound step, while each synchronisation makes the host wait. (3)
chainrule's step again with a device synchronisation forced after every recorded operation
of the forward pass (a hook on ``Primitive.__call__`` that also counts them; each has one
backward node): the gap to the plain step is what waiting on every operation would cost.

Without CuPy or a GPU it prints ``gpu.py: no GPU: <reason>`` and exits with status 0
(nothing to measure is not a failure of the code); ``--require-gpu`` makes that status 1
(``scripts/gpu-check`` uses it). A candidate that fails is reported and the others run.

Run:  python benchmarks/gpu.py [--sizes small,large] [--tf32] [--quick] [--require-gpu]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

SIZES = {  # layer sizes, batch, rounds, steps per block
    "small": ([1024, 4096, 4096, 10], 512, 25, 10),
    "large": ([4096, 8192, 8192, 10], 4096, 9, 2),
}
LR = 0.01
Step = Callable[[], Any]


def initial(sizes: list[int], batch: int, seed: int = 0) -> tuple[list[Any], Any, Any]:
    """PyTorch-style initial weights [(W (out, in), b (out,))...], a batch x and labels y."""
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in itertools.pairwise(sizes):
        bound = 1.0 / np.sqrt(n_in)
        w = rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32)
        params.append((w, rng.uniform(-bound, bound, n_out).astype(np.float32)))
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    return params, x, rng.integers(0, sizes[-1], batch)


def handwritten(xp: Any, params: list[Any], x: Any, y: Any) -> tuple[Step, Callable[[], Any]]:
    """The step written out with the array library ``xp`` (CuPy; NumPy in the tests):
    f_k = h_k Ω_kᵀ + β_k, ∂ℓ/∂Ω_k = ∂ℓ/∂f_kᵀ h_k, ∂ℓ/∂h_k = ∂ℓ/∂f_k Ω_k, ReLU's mask."""
    ws = [xp.array(w) for w, _ in params]  # copies (NumPy would share the caller's)
    bs = [xp.array(b) for _, b in params]
    xd, yd = xp.asarray(x), xp.asarray(y)
    rows = xp.arange(len(y))

    def step() -> Any:
        hs = [xd]
        for k, (w, b) in enumerate(zip(ws, bs, strict=True)):
            f = hs[-1] @ w.T + b
            hs.append(xp.maximum(f, 0) if k < len(ws) - 1 else f)
        logits = hs.pop()
        z = logits - logits.max(axis=1, keepdims=True)
        e = xp.exp(z)
        total = e.sum(axis=1, keepdims=True)
        loss = (xp.log(total[:, 0]) - z[rows, yd]).mean()
        g = e / total  # ∂ℓ/∂f = (softmax - onehot) / B
        g[rows, yd] -= 1
        g /= len(y)
        for k in range(len(ws) - 1, -1, -1):
            h = hs[k]
            dw, db = g.T @ h, g.sum(axis=0)
            if k > 0:
                g = (g @ ws[k]) * (h > 0)
            ws[k] -= LR * dw
            bs[k] -= LR * db
        return loss

    def read() -> list[np.ndarray]:
        return [_host(a) for a in ws + bs]

    return step, read


def chainrule_step(
    params: list[Any], x: Any, y: Any, device: str
) -> tuple[Step, Callable[[], Any]]:
    import chainrule as cr
    from chainrule.tensor import ops
    from chainrule.tensor.ops.loss import cross_entropy

    ws = [cr.tensor(w, device=device, requires_grad=True) for w, _ in params]
    bs = [cr.tensor(b, device=device, requires_grad=True) for _, b in params]
    xd = cr.tensor(x, device=device)
    yd: Any = y if device == "cpu" else cr.tensor(y, device=device)
    opt = cr.optim.SGD([*ws, *bs], lr=LR)

    def step() -> Any:
        h = xd
        for k, (w, b) in enumerate(zip(ws, bs, strict=True)):
            f = ops.linear(h, w, b)
            h = f.relu() if k < len(ws) - 1 else f
        loss = cross_entropy(h, yd)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step, lambda: [t.cpu().numpy().copy() for t in ws + bs]


def torch_step(params: list[Any], x: Any, y: Any, device: str) -> tuple[Step, Callable[[], Any]]:
    import torch

    layers: list[Any] = []
    for w, b in params:
        lin = torch.nn.Linear(w.shape[1], w.shape[0], device=device)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    xd, yd = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

    def step() -> Any:
        loss = torch.nn.functional.cross_entropy(model(xd), yd)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def read() -> list[np.ndarray]:
        lins = [m for m in model if isinstance(m, torch.nn.Linear)]
        out = [m.weight for m in lins] + [m.bias for m in lins]
        return [t.detach().cpu().numpy() for t in out]

    return step, read


def _host(a: Any) -> np.ndarray:
    return a.get() if hasattr(a, "get") else np.asarray(a)


def step_flops(sizes: list[int], batch: int) -> float:
    products = [a * b for a, b in itertools.pairwise(sizes)]
    return 2.0 * batch * (3 * sum(products) - products[0])


def no_gpu_reason() -> str | None:
    """Why this machine cannot run the benchmark (None: it can)."""
    try:
        import cupy
    except Exception as exc:
        return f"CuPy does not import ({type(exc).__name__}: {exc}); pip install 'chainrule[cuda]'"
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            return "CuPy finds no GPU"
    except Exception as exc:
        return f"CuPy cannot reach a GPU ({exc})"
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed (pip install torch: the CUDA build)"
    if not torch.cuda.is_available():
        return f"PyTorch {torch.__version__} has no CUDA (install a CUDA build of torch)"
    return None


def sync() -> None:
    import cupy

    cupy.cuda.runtime.deviceSynchronize()  # every stream: PyTorch's and CuPy's


def block(step: Step, n: int) -> tuple[float, float]:
    """(ms per step with the GPU's work included, ms for the host to issue one step)."""
    sync()
    t0 = time.perf_counter()
    step()
    issued = time.perf_counter() - t0
    for _ in range(n - 1):
        step()
    sync()
    return 1e3 * (time.perf_counter() - t0) / n, 1e3 * issued


def interleaved(
    steps: dict[str, Step], rounds: int, n: int
) -> dict[str, list[tuple[float, float]]]:
    names = list(steps)
    out: dict[str, list[tuple[float, float]]] = {k: [] for k in names}
    for name in names:  # warm-up: allocations, cuBLAS handles, kernel compilation
        block(steps[name], 2)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            out[name].append(block(steps[name], n))
    return out


def matmul_peak(n: int = 8192, reps: int = 10) -> float:
    """TFLOP/s of an n x n float32 cupy.matmul (median of reps, the current compute type)."""
    import cupy

    a = cupy.random.standard_normal((n, n), dtype=cupy.float32)
    b = cupy.random.standard_normal((n, n), dtype=cupy.float32)
    times = []
    for _ in range(reps + 2):
        sync()
        t0 = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / statistics.median(times[2:]) / 1e12


def set_tf32(on: bool) -> str:
    """Switch TF32 matmuls in PyTorch and CuPy; says how CuPy's was set."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = on
    try:
        import cupy
        from cupy._core import _routines_linalg as linalg

        # (cpdef enum values of CuPy's linalg module: TF32 = 7, DEFAULT = 1)
        tf32, default = (
            getattr(linalg, f"COMPUTE_TYPE_{n}", v) for n, v in (("TF32", 7), ("DEFAULT", 1))
        )
        kind = tf32 if on else default
        linalg.set_compute_type(cupy.float32, kind)
        return "cupy._core._routines_linalg.set_compute_type"
    except (ImportError, AttributeError):
        if on != (os.environ.get("CUPY_TF32") == "1"):
            return "NOT SET: this CuPy reads CUPY_TF32 once; rerun with CUPY_TF32=1"
        return "CUPY_TF32"


def syncs_of(name: str, step: Step) -> str:
    """Host synchronisations in one step, by CuPy's or PyTorch's detector (see the doc)."""
    if name == "PyTorch":
        import torch

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                torch.cuda.set_sync_debug_mode("warn")
            except (AssertionError, RuntimeError) as exc:  # a torch without CUDA
                return f"n/a ({exc})"
            try:
                step()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return str(sum("synchroniz" in str(w.message) for w in caught))
    import cupyx

    allow = getattr(cupyx, "allow_synchronize", None)
    if allow is None:
        return "n/a (no cupyx.allow_synchronize)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (deprecated since CuPy 10, still working)
            with allow(False):
                step()
    except cupyx.DeviceSynchronized:
        frame = traceback.extract_tb(sys.exc_info()[2])[-2]
        return f">=1 (first: {os.path.basename(frame.filename)}:{frame.lineno} {frame.name})"
    return "0"


@contextlib.contextmanager
def after_every_op(hook: Callable[[], None]) -> Iterator[list[int]]:
    """Call ``hook`` after every chainrule operation (forward ops and the primitives the
    VJP rules call); yields a one-element list counting them."""
    from chainrule.tensor.primitive import Primitive

    original = Primitive.__call__
    count = [0]

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = original(self, *args, **kwargs)
        count[0] += 1
        hook()
        return out

    Primitive.__call__ = call  # type: ignore[method-assign]
    try:
        yield count
    finally:
        Primitive.__call__ = original  # type: ignore[method-assign]


def build(sizes: list[int], batch: int) -> tuple[dict[str, Step], dict[str, str], dict[str, float]]:
    """Each candidate's step (made and run once: the same first step from the same
    weights), what failed, and each first step's loss (they must agree)."""
    import cupy

    params, x, y = initial(sizes, batch)
    steps: dict[str, Step] = {}
    failed: dict[str, str] = {}
    losses: dict[str, float] = {}
    makers = {
        "chainrule": lambda: chainrule_step(params, x, y, "cuda"),
        "PyTorch": lambda: torch_step(params, x, y, "cuda"),
        "CuPy by hand": lambda: handwritten(cupy, params, x, y),
    }
    for name, make in makers.items():
        try:
            step, _ = make()
            losses[name] = float(step().item())  # fails here, not in the middle of the timing
            steps[name] = step
        except Exception as exc:
            failed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:150]}"
    return steps, failed, losses


def report(label: str, sizes: list[int], batch: int, rounds: int, n: int) -> dict[str, float]:
    steps, failed, losses = build(sizes, batch)
    times = interleaved(steps, rounds, n)
    flops = step_flops(sizes, batch)
    medians = {k: statistics.median(t for t, _ in v) for k, v in times.items()}
    base = medians.get("PyTorch")
    print(f"\n{label}: MLP {'-'.join(map(str, sizes))}, batch {batch}, float32 "
          f"({rounds} rounds x {n} steps)")  # fmt: skip
    print(f"  {'candidate':14} {'ms/step':>9} {'min':>9} {'TFLOP/s':>8} {'vs PyTorch':>10} "
          f"{'issue ms':>9}  syncs/step")  # fmt: skip
    for name, samples in times.items():
        med, best = medians[name], min(t for t, _ in samples)
        issue = statistics.median(i for _, i in samples)
        ratio = f"{med / base:.2f}x" if base else "-"
        print(f"  {name:14} {med:9.3f} {best:9.3f} {flops / med / 1e9:8.1f} {ratio:>10} "
              f"{issue:9.3f}  {syncs_of(name, steps[name])}")  # fmt: skip
    for name, why in failed.items():
        print(f"  {name:14} FAILED: {why}")
    if len(losses) > 1:
        spread = max(losses.values()) - min(losses.values())
        same = "agree" if spread <= 1e-4 * max(abs(v) for v in losses.values()) else "DISAGREE"
        shown = ", ".join(f"{k} {v:.6f}" for k, v in losses.items())
        print(f"  first-step losses {same} (float32, rel. 1e-4): {shown}")
    if "chainrule" in steps:
        # The other count: the same step with a synchronisation forced after each
        # operation; the gap to the plain step is what per-op waiting would cost.
        with after_every_op(lambda: None) as ops:
            steps["chainrule"]()
        with after_every_op(sync):
            forced = statistics.median(block(steps["chainrule"], n)[0] for _ in range(3))
        print(
            f"  chainrule: {ops[0]} recorded operations per step (and as many backward "
            f"nodes); with a device synchronisation after each forward one {forced:.3f} "
            f"ms/step (without: {medians['chainrule']:.3f})"
        )
    if base and "chainrule" in medians:
        vs = medians["chainrule"] / base
        verdict = "met" if vs <= 1.1 else "NOT met"
        print(f"  target (chainrule within 1.1x of PyTorch): {vs:.2f}x, {verdict}")
    return medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="small,large", help="comma-separated: small,large")
    parser.add_argument("--tf32", action="store_true", help="measure again with TF32 matmuls")
    parser.add_argument("--quick", action="store_true", help="a third of the rounds")
    parser.add_argument("--require-gpu", action="store_true", help="exit 1 without a GPU")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SIZES]
    if unknown:
        parser.error(f"unknown sizes {unknown}; choose from {sorted(SIZES)}")
    reason = no_gpu_reason()
    if reason is not None:
        print(f"gpu.py: no GPU: {reason}; nothing measured")
        return 1 if args.require_gpu else 0
    import cupy
    import torch

    import chainrule

    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print(f"device: {name}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, "
          f"driver {cupy.cuda.runtime.driverGetVersion()}; CuPy {cupy.__version__}, PyTorch "
          f"{torch.__version__}, chainrule {chainrule.__version__}")  # fmt: skip
    modes = [False, True] if args.tf32 else [False]
    for tf32 in modes:
        how = set_tf32(tf32)
        mode = "TF32" if tf32 else "float32"
        print(f"\n== {mode} matmuls" + (f" (CuPy: {how})" if tf32 else ""))
        print(f"matmul peak: {matmul_peak():.1f} TFLOP/s ({mode}, 8192^3 cupy.matmul)")
        for size in chosen:
            sizes, batch, rounds, n = SIZES[size]
            if args.quick:
                rounds = max(3, rounds // 3)
            report(f"{size} ({mode})", sizes, batch, rounds, n)
            cupy.get_default_memory_pool().free_all_blocks()
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
