"""Pipeline parallelism: bubble (tick model and measured) and peak activations per stage.

    python benchmarks/pipeline.py [--rounds 3] [--steps 3] [--width 512] [--batch 256]

For K = 2 and 4 stages (one MPI rank each, one BLAS thread each) and M = 1, 2, 4, 8, 16
micro-batches, GPipe and 1F1B train the MLP of ``chainrule.lecture.pipeline`` (8 layers).
All (M, schedule) candidates run in one ``mpiexec`` per K, interleaved round by round
after a warm-up step each; the measured bubble is the median over rounds × steps of
1 - busy / (K × span) per step. The tick model gives the exact (K - 1)/(M + K - 1).
Peak activations are the bytes a stage's graphs hold for backward at once (the most over
the step), which depend on the schedule only: GPipe holds M micro-batches, 1F1B min(K - s, M).
On a 2-core machine, K = 4 oversubscribes the cores: its measured bubble counts time a
rank waits for a core as well as for its neighbours.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

MS = (1, 2, 4, 8, 16)
KS = (2, 4)
SCHEDULES = ("gpipe", "1f1b")


def worker(args: argparse.Namespace) -> None:
    from chainrule import nn, optim
    from chainrule.distributed.pipelining import Schedule1F1B, ScheduleGPipe
    from chainrule.distributed.pipelining._comm import communicator
    from chainrule.distributed.pipelining.stage import PipelineStage
    from chainrule.distributed.pipelining.timeline import measured_bubble
    from chainrule.lecture.pipeline import PipelineConfig, batch_of, build_stage

    comm = communicator()
    rank, k = comm.Get_rank(), comm.Get_size()
    classes = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}
    runs: dict[tuple[int, str], Any] = {}
    for m in MS:
        for name in SCHEDULES:
            config = PipelineConfig(stages=k, microbatches=m, schedule=name, batch=args.batch,
                                    width=args.width, layers=8)  # fmt: skip
            module = build_stage(config, rank)
            stage = PipelineStage(module, rank, k, comm=comm)
            schedule = classes[name](stage, m, nn.MSELoss())
            schedule.timed = True
            runs[m, name] = config, stage, schedule, optim.SGD(module.parameters(), lr=1e-3)

    def one_step(key: tuple[int, str], step: int) -> float | None:
        config, stage, schedule, opt = runs[key]
        x, y = batch_of(config, step)
        opt.zero_grad()
        if rank == 0:
            schedule.step(x)
        elif rank == k - 1:
            schedule.step(target=y)
        else:
            schedule.step()
        opt.step()
        events = [(kd, mb, a - schedule.step_start, b - schedule.step_start)
                  for kd, mb, a, b in stage.events]  # fmt: skip
        gathered = comm.gather(events, root=0)
        return measured_bubble(gathered) if rank == 0 else None

    bubbles: dict[tuple[int, str], list[float]] = {key: [] for key in runs}
    for key in runs:
        one_step(key, 0)  # warm-up
    for r in range(args.rounds):
        for key in runs:  # interleaved: every candidate once per round
            for s in range(args.steps):
                b = one_step(key, 1 + r * args.steps + s)
                if b is not None:
                    bubbles[key].append(b)
    peaks = comm.gather({f"{m},{n}": runs[m, n][1].peak_activation_bytes for m, n in runs})
    if rank == 0:
        out = {"bubbles": {f"{m},{n}": v for (m, n), v in bubbles.items()}, "peaks": peaks}
        Path(args.result).write_text(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=3, help="steps per candidate per round")
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    from threadpoolctl import threadpool_info

    import chainrule
    from chainrule.distributed.pipelining._comm import launch, mpi
    from chainrule.distributed.pipelining.ticks import max_in_flight, stage_order, tick_bubble

    blas = ", ".join(f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)"
                     for i in threadpool_info())  # fmt: skip
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; Python "
          f"{platform.python_version()}, NumPy {np.__version__}, chainrule "
          f"{chainrule.__version__}, {mpi().Get_library_version().splitlines()[0]}")  # fmt: skip
    print(f"thread pools here: {blas}; each rank: OPENBLAS_NUM_THREADS=1")
    print(f"MLP {args.width} × 8 layers, float32, batch {args.batch}; measured bubble: median "
          f"of {args.rounds} rounds × {args.steps} steps (interleaved)\n")  # fmt: skip
    print(f"{'K':>2} {'M':>3} {'schedule':>8} {'ticks':>7} {'measured':>9}  "
          f"{'peak activations (KiB/stage)':<28} {'in flight':<12} vs GPipe (stage 0)")  # fmt: skip
    for k in KS:
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "result.json"
            argv = [sys.executable, __file__, "--worker", "--result", str(result),
                    "--rounds", str(args.rounds), "--steps", str(args.steps),
                    "--width", str(args.width), "--batch", str(args.batch)]  # fmt: skip
            if launch(k, argv, timeout=1800) != 0:
                raise SystemExit(f"the K={k} run failed (see above)")
            data = json.loads(result.read_text())
        for m in MS:
            for name in SCHEDULES:
                key = f"{m},{name}"
                peaks = [d[key] for d in data["peaks"]]
                held = [max_in_flight(stage_order(name, s, k, m)) for s in range(k)]
                ratio = peaks[0] / data["peaks"][0][f"{m},gpipe"]
                kib = " ".join(f"{b / 1024:>6.0f}" for b in peaks)
                print(f"{k:>2} {m:>3} {name:>8} {float(tick_bubble(name, k, m)):>7.3f} "
                      f"{statistics.median(data['bubbles'][key]):>9.3f}  {kib:<28} "
                      f"{','.join(map(str, held)):<12} {ratio:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
