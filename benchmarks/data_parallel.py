"""Data-parallel training speed: 2 ranks vs 1, bucket overlap, and an α–β model of all-reduce.

    python benchmarks/data_parallel.py            # about 5 minutes on 2 cores
    python benchmarks/data_parallel.py --rounds 1 # quicker, noisier
    python benchmarks/data_parallel.py --skip-fit --json ratios.json  # tables 1-2 only

Measures, on the MLP 784-1024-1024-10 (float32, batch 256 per rank, SGD with momentum):

1. throughput (samples/s) of 2 ranks × 1 BLAS thread vs 1 rank × 1 thread (target ≥ 1.8×),
   and vs 1 rank × 2 threads on the same global batch of 512;
2. inside the 2-rank job: DDP's default (``.grad`` as bucket views, one blocking all-reduce
   after backward), the same without views (``gradient_as_bucket_view=False``), buckets
   all-reduced during backward (``overlap=True``, 25 MB and 1 MB), and each rank training
   alone without any all-reduce: the compute of one rank while both cores are busy, the
   ceiling for 2 ranks on 2 cores; and the time DDP's default spends after backward;
3. the time of loopback all-reduces of several sizes on 2, 3 and 4 ranks, fitted by the
   ring all-reduce model T(n, M) = 2(n-1)·α + 2(n-1)/n · M·β, and the scaling efficiency
   that model predicts for this network at 8, 64 and 512 ranks on 10 and 100 Gbit/s.

Candidates are interleaved: each round starts every configuration once (1 rank × 1
thread, 2 ranks, 1 rank × 2 threads: each job started with its BLAS thread count, as
OpenBLAS's idle threads would otherwise take CPU; inside the 2-rank job the variants
alternate block by block), after a warm-up; the table shows medians over all blocks and
rounds. The driver starts the jobs itself with the ``mpiexec`` beside this Python
(loopback and shared memory only).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SIZES = [784, 1024, 1024, 10]
BATCH = 256
HERE = Path(__file__).resolve()


# -- workers (run under mpiexec) -------------------------------------------------------------


def _model_and_data(batch: int, seed: int) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    from chainrule import nn, optim

    net = nn.MLP(SIZES[0], SIZES[1:-1], SIZES[-1], dtype=np.float32, rng=seed)
    opt = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], size=batch)
    return net, opt, x, y


def _step(model: Any, opt: Any, x: np.ndarray, y: np.ndarray, after: Any = None) -> None:
    from chainrule import Tensor
    from chainrule.tensor.ops.loss import cross_entropy

    opt.zero_grad()
    cross_entropy(model(Tensor.from_numpy(x)), y).backward()
    if after is not None:
        after()
    opt.step()


def worker_train(args: argparse.Namespace) -> dict[str, list[float]]:
    """Seconds per step of each variant, one entry per block; variants alternate."""
    from threadpoolctl import threadpool_limits

    from chainrule import distributed as dist
    from chainrule.nn.parallel import DistributedDataParallel

    group = dist.init_process_group("mpi")
    world = group.size
    variants: dict[str, Any] = {}
    if world == 1:  # one variant per job: the BLAS thread count is fixed at start-up
        threads = int(os.environ["OPENBLAS_NUM_THREADS"])
        batch = BATCH * threads
        net, opt, x, y = _model_and_data(batch, 0)
        variants[f"1x{threads}_b{batch}"] = (threads, net, opt, x, y, None)
    else:
        configs = {  # name: DDP keyword arguments (None: no DDP, no communication)
            "ddp": {},  # the default: .grad as bucket views, one all-reduce after backward
            "ddp_noview": {"gradient_as_bucket_view": False},
            "ddp_overlap25": {"overlap": True},
            "ddp_overlap1": {"overlap": True, "bucket_cap_mb": 1.0},
            "alone": None,  # each rank trains on its own: the compute at two busy cores
        }
        for name, kwargs in configs.items():
            net, opt, x, y = _model_and_data(BATCH, group.rank)
            model = net if kwargs is None else DistributedDataParallel(net, **kwargs)
            variants[name] = (1, model, opt, x, y, None)
        _time_finish(variants["ddp"][1])
    times: dict[str, list[float]] = {k: [] for k in variants}  # (and cpu_<k>: CPU shares)
    for block in range(args.blocks + 1):  # block 0: warm-up
        for name, (threads, model, opt, x, y, after) in variants.items():
            with threadpool_limits(limits=threads, user_api="blas"):
                dist.barrier()
                start, cpu = time.perf_counter(), time.process_time()
                for _ in range(args.steps):
                    _step(model, opt, x, y, after)
                dist.barrier()
                per_step = (time.perf_counter() - start) / args.steps
                # CPU seconds this rank got per wall second: below 1 (one thread) means
                # other processes on the machine took the core part of the time.
                share = (time.process_time() - cpu) / (per_step * args.steps)
            if block:
                times[name].append(per_step)
                times.setdefault("cpu_" + name, []).append(min(dist.all_gather_object(share)))
                # CPU seconds per step of the rank that used least (the other may have spun
                # in MPI waiting for it): robust to other load, unlike the wall time.
                used = (time.process_time() - cpu) / args.steps
                times.setdefault("cpus_" + name, []).append(min(dist.all_gather_object(used)))
                if hasattr(model, "finish_seconds"):  # the default DDP's all-reduce
                    times.setdefault("sync_" + name, []).append(model.finish_seconds / args.steps)
                    cpu_sync = min(dist.all_gather_object(model.finish_cpu / args.steps))
                    times.setdefault("synccpu_" + name, []).append(cpu_sync)
            if hasattr(model, "finish_seconds"):
                model.finish_seconds = model.finish_cpu = 0.0
    dist.destroy_process_group()
    return times


def _time_finish(ddp: Any) -> None:
    """Count the seconds DDP spends after backward (barrier, all-reduce, binding .grad)."""
    finish = ddp._finish
    ddp.finish_seconds = ddp.finish_cpu = 0.0

    def timed() -> None:
        start, cpu = time.perf_counter(), time.process_time()
        finish()
        ddp.finish_seconds += time.perf_counter() - start
        ddp.finish_cpu += time.process_time() - cpu

    ddp._finish = timed  # looked up on the instance when the hook queues it


def worker_allreduce(args: argparse.Namespace) -> dict[str, list[float]]:
    """Median seconds of a blocking in-place float32 Allreduce per message size (bytes)."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    out: dict[str, list[float]] = {}
    for nbytes in (2**12, 2**16, 2**20, 2**22, 2**24):
        buf = np.ones(nbytes // 4, dtype=np.float32)
        reps = max(5, min(200, 2**26 // nbytes))
        samples = []
        for _ in range(args.blocks + 1):
            comm.Barrier()
            start = time.perf_counter()
            for _ in range(reps):
                comm.Allreduce(MPI.IN_PLACE, buf)
            samples.append((time.perf_counter() - start) / reps)
        # The slowest rank's time is the collective's time.
        out[str(nbytes)] = [max(comm.allgather(s)) for s in samples[1:]]
    return out


# -- driver --------------------------------------------------------------------------------


def run_job(n: int, worker: str, threads: int, blocks: int, steps: int) -> dict[str, list[float]]:
    mpiexec = [str(Path(sys.executable).parent / "mpiexec"), "-n", str(n), "--oversubscribe"]
    if os.geteuid() == 0:
        mpiexec.append("--allow-run-as-root")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    env["OMPI_MCA_btl_tcp_if_include"] = env["OMPI_MCA_oob_tcp_if_include"] = "lo"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [*mpiexec, sys.executable, str(HERE), "--worker", worker, "--out", str(out)]
        cmd += ["--blocks", str(blocks), "--steps", str(steps)]
        subprocess.run(cmd, check=True, timeout=600, env=env)
        result: dict[str, list[float]] = json.loads(out.read_text())
    return result


def fit_alpha_beta(points: list[tuple[int, int, float]]) -> tuple[float, float]:
    """Least squares of T = 2(n-1)·α + 2(n-1)/n·M·β over (n, M bytes, T seconds)."""
    a = np.array([[2 * (n - 1), 2 * (n - 1) / n * m] for n, m, _ in points])
    t = np.array([t for _, _, t in points])
    # Weight by 1/T so that small messages (latency) count as much as large ones.
    w = 1 / t
    (alpha, beta), *_ = np.linalg.lstsq(a * w[:, None], t * w, rcond=None)
    return float(alpha), float(beta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks per variant per job")
    parser.add_argument("--steps", type=int, default=5, help="steps per block")
    parser.add_argument("--json", type=Path, help="also write the ratios to this file")
    parser.add_argument("--skip-fit", action="store_true", help="only the throughput tables")
    parser.add_argument("--worker", choices=["train", "allreduce"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = worker_train(args) if args.worker == "train" else worker_allreduce(args)
        from mpi4py import MPI

        if MPI.COMM_WORLD.Get_rank() == 0:
            args.out.write_text(json.dumps(result))
        return

    from threadpoolctl import threadpool_info

    import chainrule

    blas = ", ".join(
        f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)"
        for i in threadpool_info()
        if i["user_api"] == "blas"
    )
    print(f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print(f"python {platform.python_version()}, numpy {np.__version__} ({blas}), chainrule "
          f"{chainrule.__version__}")  # fmt: skip
    import mpi4py

    model = "-".join(map(str, SIZES))
    print(f"mpi4py {mpi4py.__version__}; model {model} float32, batch {BATCH}/rank, "
          f"{args.rounds} rounds × {args.blocks} blocks × {args.steps} steps")  # fmt: skip

    times: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for n, threads in ((1, 1), (2, 1), (1, 2)):
            for k, v in run_job(n, "train", threads, args.blocks, args.steps).items():
                times.setdefault(k, []).extend(v)
    med = {k: statistics.median(v) for k, v in times.items()}
    cpu = {k[4:]: v for k, v in med.items() if k.startswith("cpu_")}
    cpus = {k[5:]: v for k, v in med.items() if k.startswith("cpus_")}
    sync = {k[5:]: v for k, v in med.items() if k.startswith("sync_")}
    sync_cpu = {k[8:]: v for k, v in med.items() if k.startswith("synccpu_")}
    med = {k: v for k, v in med.items() if not k.startswith(("cpu", "sync"))}
    samples = {k: (2 * BATCH if k.startswith(("ddp", "alone", "1x2")) else BATCH) / t
               for k, t in med.items()}  # fmt: skip
    print("\n| configuration | step (ms) | samples/s | vs 1 rank × 1 thread | CPU s per s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    base = samples["1x1_b256"]
    labels = {
        "1x1_b256": "1 rank × 1 thread, batch 256",
        "1x2_b512": "1 rank × 2 threads, batch 512",
        "ddp": "2 ranks × 1 thread, DDP (default: bucket views, all-reduce after backward)",
        "ddp_noview": "2 ranks × 1 thread, DDP, gradient_as_bucket_view=False",
        "ddp_overlap25": "2 ranks × 1 thread, DDP overlap=True, one 25 MB bucket",
        "ddp_overlap1": "2 ranks × 1 thread, DDP overlap=True, 1 MB buckets",
        "alone": "2 ranks × 1 thread, no all-reduce (each rank alone)",
    }
    for k, label in labels.items():
        print(f"| {label} | {1e3 * med[k]:.1f} | {samples[k]:,.0f} | {samples[k] / base:.2f}× "
              f"| {cpu[k]:.2f} |")  # fmt: skip
    print("(CPU s per s: CPU time per wall second of the least served rank; 1 thread can use 1)")
    print("\nCPU time per step (the rank that used least), and the ratio it implies when each")
    print("rank has a core of its own: 2 · CPU(1 rank × 1 thread) / CPU(2-rank configuration)")
    print("| configuration | CPU ms per step | implied vs 1 rank × 1 thread |")
    print("| --- | ---: | ---: |")
    for k, label in labels.items():
        if k != "1x2_b512":
            implied = (2 if k != "1x1_b256" else 1) * cpus["1x1_b256"] / cpus[k]
            print(f"| {label} | {1e3 * cpus[k]:.1f} | {implied:.2f}× |")
    ratios = {k: samples[k] / base for k in labels}
    ratios |= {"cpu_implied_" + k: 2 * cpus["1x1_b256"] / cpus[k] for k in labels if "x" not in k}
    ratios["ddp_vs_1x2"] = samples["ddp"] / samples["1x2_b512"]
    ratios["overlap1_vs_blocking"] = samples["ddp_overlap1"] / samples["ddp"]
    ratios["overlap25_vs_blocking"] = samples["ddp_overlap25"] / samples["ddp"]
    ratios["sync_ms"] = 1e3 * sync["ddp"]
    ratios["sync_cpu_ms"] = 1e3 * sync_cpu["ddp"]
    ratios["cpu_ms_1x1"] = 1e3 * cpus["1x1_b256"]
    ratios["cpu_ms_alone"] = 1e3 * cpus["alone"]
    ratios["cpu_ms_ddp"] = 1e3 * cpus["ddp"]
    ratios["alone_step_vs_1x1"] = med["alone"] / med["1x1_b256"]
    print(f"\n2 ranks (DDP) vs 1 rank × 2 threads: {ratios['ddp_vs_1x2']:.2f}×")
    print(f"overlap vs all-reduce after backward: {ratios['overlap1_vs_blocking']:.2f}× (1 MB "
          f"buckets), {ratios['overlap25_vs_blocking']:.2f}× (25 MB)")  # fmt: skip
    print(f"DDP after backward (barrier, all-reduce, .grad): {ratios['sync_ms']:.2f} ms per "
          f"step of {1e3 * med['ddp']:.1f} ({ratios['sync_cpu_ms']:.2f} ms of CPU)")  # fmt: skip
    print(f"compute with both cores busy: a rank alone takes {ratios['alone_step_vs_1x1']:.2f}× "
          f"the step of 1 rank × 1 thread on an idle core: the ceiling for 2 ranks is "
          f"{ratios['alone']:.2f}×")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(ratios))

    if args.skip_fit:
        return
    points: list[tuple[int, int, float]] = []
    for n in (2, 3, 4):
        for m, v in run_job(n, "allreduce", 1, args.blocks, 1).items():
            points.append((n, int(m), statistics.median(v)))
    alpha, beta = fit_alpha_beta(points)
    print("\nloopback all-reduce (median of the slowest rank), fit T = 2(n-1)α + 2(n-1)/n·Mβ:")
    print("| ranks | bytes | measured (µs) | model (µs) |")
    print("| ---: | ---: | ---: | ---: |")
    for n, m, t in points:
        model = 2 * (n - 1) * alpha + 2 * (n - 1) / n * m * beta
        print(f"| {n} | {m:,} | {1e6 * t:,.1f} | {1e6 * model:,.1f} |")
    print(f"α = {1e6 * alpha:.2f} µs, β = {1e9 * beta:.3f} ns/byte "
          f"({8 / beta / 1e9:.1f} Gbit/s effective loopback)")  # fmt: skip

    nbytes = 4 * sum(a * b + b for a, b in itertools.pairwise(SIZES))
    compute = med["1x1_b256"]
    net_alpha = max(alpha, 25e-6)  # a network hop costs at least ~25 µs (TCP/Ethernet)
    print(f"\npredicted scaling efficiency, {nbytes / 1e6:.1f} MB of gradients per step, "
          f"compute {1e3 * compute:.1f} ms/step/rank, α = {1e6 * net_alpha:.0f} µs:")  # fmt: skip
    print("| ranks | 10 Gbit/s, no overlap | 10 Gbit/s, overlap | 100 Gbit/s, no overlap "
          "| 100 Gbit/s, overlap |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: |")
    for p in (8, 64, 512):
        row = []
        for gbit in (10, 100):
            b = 8 / (gbit * 1e9)
            t = 2 * (p - 1) * net_alpha + 2 * (p - 1) / p * nbytes * b
            backward = compute * 2 / 3  # backward is about 2/3 of a step: what buckets hide
            row += [compute / (compute + t), compute / (compute + max(0.0, t - backward))]
        print(f"| {p} | " + " | ".join(f"{100 * e:.0f}%" for e in row) + " |")


if __name__ == "__main__":
    main()
