"""Memory and time of one forward + backward pass, with and without gradient checkpointing.

The model is a deep ReLU MLP whose activations dominate memory: ``--layers`` n blocks of
Linear(D, D) + ReLU, batch ``--batch``, float32, loss = sum of the outputs. chainrule and
PyTorch (CPU) get the same weights and input (drawn with NumPy, He-uniform). Candidates:

- ``chainrule``: no checkpointing; ``chainrule-sqrt``: ``checkpoint_sequential(net, √n, x)``;
  ``chainrule-log``: ``checkpoint_sequential(net, "log", x)`` (recursive halves);
- ``torch``: no checkpointing; ``torch-sqrt``: ``torch.utils.checkpoint.checkpoint_sequential``
  (``use_reentrant=False``), the same segments.

Memory: each candidate runs in a fresh process (one step), so no run inherits another's
freed memory. ``traced`` is the peak of ``tracemalloc`` above the state before the step
(parameters and input already there); NumPy reports its buffers to tracemalloc, PyTorch's
allocator does not, so PyTorch has only ``rss``: the process's peak resident set
(``ru_maxrss``) above its resident set before the step. *Activation memory* is the peak less
the parameters' gradients (the same for every strategy).

Time: the candidates of one library pair are timed in ONE process, interleaved (the order
rotates every round) after a warm-up step each; the table shows medians and ratios. Both
libraries use one BLAS / intra-op thread (the machine is shared; ratios hold better).

Allocator: with glibc's default malloc, large arrays freed in the middle of a step go back
to the operating system and are faulted in again when the next segment (or its
recomputation) allocates them, which costs checkpointed runs (of both libraries) time the
plain run does not pay. ``MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=4294967296``
in the environment keeps them in the process; the first line says which settings ran.

Gradients: each memory worker saves d loss / d (every weight and bias); the parent compares
them: chainrule's checkpointed runs against its plain run (bitwise: the same BLAS calls in
the same order), PyTorch's against chainrule's (float32, largest relative difference).

Run:  .venv/bin/python benchmarks/memory.py [--layers 64] [--width 512] [--batch 2048]
      [--rounds 5] [--log-layers 16,64,256] [--log-rounds 3]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse
import json
import math
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MIB = 2.0**20


def weights(layers: int, width: int, batch: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    bound = math.sqrt(6.0 / width)  # He-uniform: activations keep their scale through ReLUs
    ws = []
    for _ in range(layers):
        ws.append(rng.uniform(-bound, bound, size=(width, width)).astype(np.float32))
        ws.append(rng.uniform(-0.1, 0.1, size=width).astype(np.float32))
    return ws, rng.normal(size=(batch, width)).astype(np.float32)


def build(name: str, layers: int, width: int, batch: int) -> tuple[Callable[[], None], Any]:
    """A step (forward + backward) of candidate ``name``, and its parameters."""
    ws, x0 = weights(layers, width, batch)
    segments = max(1, round(math.sqrt(layers)))
    if name.startswith("chainrule"):
        from chainrule import Tensor, nn
        from chainrule.utils.checkpoint import checkpoint_sequential

        mods: list[Any] = []
        for k in range(layers):
            lin = nn.Linear(width, width)
            lin.weight.data, lin.bias.data = ws[2 * k], ws[2 * k + 1]
            mods += [lin, nn.ReLU()]
        net = nn.Sequential(*mods)
        x = Tensor(x0)
        mode: Any = {"chainrule": None, "chainrule-sqrt": segments, "chainrule-log": "log"}[name]

        def step() -> None:
            net.zero_grad()
            out = net(x) if mode is None else checkpoint_sequential(net, mode, x)
            out.sum().backward()

        return step, list(net.parameters())
    import torch
    from torch.utils.checkpoint import checkpoint_sequential as torch_sequential

    tmods: list[torch.nn.Module] = []
    for k in range(layers):
        lin_t = torch.nn.Linear(width, width)
        with torch.no_grad():
            lin_t.weight.copy_(torch.from_numpy(ws[2 * k]))
            lin_t.bias.copy_(torch.from_numpy(ws[2 * k + 1]))
        tmods += [lin_t, torch.nn.ReLU()]
    tnet = torch.nn.Sequential(*tmods)
    tx = torch.from_numpy(x0)

    def tstep() -> None:
        tnet.zero_grad(set_to_none=True)
        if name == "torch":
            out = tnet(tx)
        else:
            out = torch_sequential(tnet, segments, tx, use_reentrant=False)
        out.sum().backward()

    return tstep, list(tnet.parameters())


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _grad_arrays(name: str, params: list[Any]) -> list[np.ndarray]:
    if name.startswith("chainrule"):
        return [p.grad.numpy() for p in params]
    return [p.grad.detach().numpy() for p in params]


def worker(args: argparse.Namespace) -> None:
    """One candidate's memory in this fresh process: prints one JSON line."""
    _one_thread()
    # A tiny step first: lazy imports and first-call set-up (PyTorch's checkpoint machinery
    # loads modules on first use) are not counted as the step's memory.
    build(args.worker, 1, 8, 2)[0]()
    step, params = build(args.worker, args.layers, args.width, args.batch)
    rss0 = _rss_bytes()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    step()
    traced = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0
    grads = _grad_arrays(args.worker, params)
    np.savez(args.grads, *grads)
    torch_side = args.worker.startswith("torch")
    print(json.dumps({
        "traced": None if torch_side else traced,
        "rss": rss,
        "grad_bytes": sum(g.nbytes for g in grads),
        "param_bytes": sum(g.nbytes for g in grads),
    }))  # fmt: skip


def _one_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dev dependency
        pass


def measure(name: str, args: argparse.Namespace, layers: int, tmp: Path) -> dict[str, Any]:
    grads = tmp / f"{name}-{layers}.npz"
    cmd = [sys.executable, __file__, "--worker", name, "--layers", str(layers), "--width",
           str(args.width), "--batch", str(args.batch), "--grads", str(grads)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    with np.load(grads) as z:
        result["grads"] = [z[k] for k in sorted(z.files, key=lambda s: int(s.split("_")[1]))]
    return result


def timings(
    names: list[str], args: argparse.Namespace, layers: int, rounds: int
) -> dict[str, float]:
    """Median step time of each candidate, interleaved in this process, after a warm-up."""
    steps = {n: build(n, layers, args.width, args.batch)[0] for n in names}
    for n in names:
        steps[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            steps[n]()
            times[n].append(time.perf_counter() - start)
    return {n: statistics.median(t) for n, t in times.items()}


def _compare(a: list[np.ndarray], b: list[np.ndarray]) -> str:
    if all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)):
        return "bitwise equal"
    rel = max(
        float(np.abs(x - y).max() / max(np.abs(y).max(), 1e-30)) for x, y in zip(a, b, strict=True)
    )
    return f"max rel. diff {rel:.1e}"


def machine() -> str:
    import torch
    from threadpoolctl import threadpool_info

    malloc = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("MALLOC_"))
    blas = ", ".join(f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)"
                     for i in threadpool_info() if i["user_api"] == "blas")  # fmt: skip
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; Python "
            f"{platform.python_version()}, NumPy {np.__version__} (BLAS: {blas}), torch "
            f"{torch.__version__}; timed with 1 BLAS / intra-op thread each; glibc malloc "
            f"settings: {malloc or 'defaults'}")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, default=64)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--log-layers", default="16,64,256")
    p.add_argument("--log-rounds", type=int, default=3)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--grads", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    print(machine())
    n, d, b = args.layers, args.width, args.batch
    act = b * d * 4
    print(f"model: {n} × (Linear({d}, {d}) + ReLU), batch {b}, float32; one activation "
          f"{act / MIB:.2f} MiB, {2 * n} of them = {2 * n * act / MIB:.0f} MiB; parameters "
          f"{n * (d * d + d) * 4 / MIB:.0f} MiB; √n = {round(math.sqrt(n))} segments")  # fmt: skip
    names = ["chainrule", "chainrule-sqrt", "torch", "torch-sqrt"]
    with tempfile.TemporaryDirectory() as tmp:
        mem = {name: measure(name, args, n, Path(tmp)) for name in names}
        times = timings(names, args, n, args.rounds)
        plain = mem["chainrule"]
        print(
            "\n| candidate | traced peak MiB | activation MiB (traced) | peak RSS MiB "
            "| activation MiB (RSS) | act. / plain | step s | time / plain | gradients |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for name in names:
            m = mem[name]
            ref = mem["torch" if name.startswith("torch") else "chainrule"]
            key = "rss" if name.startswith("torch") else "traced"
            act_m = m[key] - m["grad_bytes"]
            act_ref = ref[key] - ref["grad_bytes"]
            traced = "n/a" if m["traced"] is None else f"{m['traced'] / MIB:.0f}"
            act_t = "n/a" if m["traced"] is None else f"{(m['traced'] - m['grad_bytes']) / MIB:.0f}"
            base_t = times["torch" if name.startswith("torch") else "chainrule"]
            print(f"| {name} | {traced} | {act_t} | {m['rss'] / MIB:.0f} | "
                  f"{(m['rss'] - m['grad_bytes']) / MIB:.0f} | {act_m / act_ref:.3f} | "
                  f"{times[name]:.3f} | {times[name] / base_t:.3f} | "
                  f"{_compare(m['grads'], plain['grads'])} |")  # fmt: skip
        ratio = mem["chainrule"]["rss"] / mem["torch"]["rss"]
        print(
            f"\nwithout checkpointing, peak RSS above the start: chainrule / PyTorch = {ratio:.3f}"
        )
        print("\nrecursive (log-n) mode: chainrule-log against chainrule, same width and batch")
        print(
            "| n | plain activation MiB | log activation MiB | log / plain | plain s | log s | "
            "time log / plain | gradients |"
        )
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for k in (int(s) for s in args.log_layers.split(",") if s):
            pm = measure("chainrule", args, k, Path(tmp))
            lm = measure("chainrule-log", args, k, Path(tmp))
            tt = timings(["chainrule", "chainrule-log"], args, k, args.log_rounds)
            pa, la = pm["traced"] - pm["grad_bytes"], lm["traced"] - lm["grad_bytes"]
            print(f"| {k} | {pa / MIB:.0f} | {la / MIB:.0f} | {la / pa:.3f} | "
                  f"{tt['chainrule']:.3f} | {tt['chainrule-log']:.3f} | "
                  f"{tt['chainrule-log'] / tt['chainrule']:.2f} | "
                  f"{_compare(lm['grads'], pm['grads'])} |")  # fmt: skip


if __name__ == "__main__":
    main()
