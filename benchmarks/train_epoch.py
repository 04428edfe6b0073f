"""One training epoch: ``chainrule train``'s loop against the same loop in PyTorch (CPU).

For each data set, both libraries train the data set's default model (``chainrule train
--dataset X`` with no options: same layers, initial weights, dropout, optimiser, batch
size) on its training part, in float32. An epoch is what ``chainrule.training.fit``
times: shuffle, then for every batch zero_grad, forward, cross-entropy, backward, step;
the per-epoch measuring on both splits is left out of both.

PyTorch's loop is the fast idiomatic one: the data as tensors, one ``randperm`` per epoch
and a slice of it per batch (``torch.utils.data.DataLoader`` collates sample by sample and
would be several times slower). Epochs alternate after a warm-up (A B, then B A: which
one goes first rotates, so neither always runs right after the other), and the table
shows medians.

Threads: by default both run on ONE thread (chainrule limits NumPy's BLAS to one thread
for these small layers, as ``fit`` does; PyTorch gets ``torch.set_num_threads(1)``).
``--torch-threads N`` gives PyTorch N intra-op threads instead. ``OMP_WAIT_POLICY=PASSIVE``
is set before torch is imported (unless already set), so that PyTorch's idle OpenMP
threads sleep instead of spinning on the cores chainrule then needs.

Run:  .venv/bin/python benchmarks/train_epoch.py [--datasets digits,mnist1d] [--epochs N]
      [--torch-threads N] [--profile]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported, see above

import argparse
import cProfile
import platform
import pstats
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

import chainrule
from chainrule.data import DataLoader, load_dataset
from chainrule.training import build_model, build_optimizer, default_config
from chainrule.training.loop import _train_epoch


def chainrule_epoch(dataset: str) -> tuple[Callable[[], None], dict[str, np.ndarray], int]:
    """An epoch of ``fit``'s loop; also the initial weights and the steps per epoch."""
    config = default_config(dataset)
    splits = load_dataset(dataset, seed=config.seed)
    model = build_model(config, splits.info)
    start = model.state_dict()
    optimizer = build_optimizer(model, config)
    loader = DataLoader(splits.train, batch_size=config.batch_size, shuffle=True, seed=0)

    def epoch() -> None:
        _train_epoch(model, loader, optimizer, 1, None)

    return epoch, start, len(loader)


def torch_epoch(dataset: str, start: dict[str, np.ndarray]) -> Callable[[], None]:
    """The same epoch in PyTorch, from the same initial weights."""
    config = default_config(dataset)
    splits = load_dataset(dataset, seed=config.seed)
    sizes = [splits.info.n_features, *config.hidden, splits.info.n_classes]
    layers: list[torch.nn.Module] = []
    for k in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
            if config.dropout:
                layers.append(torch.nn.Dropout(config.dropout))
    net = torch.nn.Sequential(*layers)
    net.load_state_dict({k.removeprefix("layers."): torch.tensor(v) for k, v in start.items()})
    params = net.parameters()
    wd, lr = config.weight_decay, config.lr
    opt: torch.optim.Optimizer
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=wd)
    elif config.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=wd)
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    x, y = torch.from_numpy(splits.x_train), torch.from_numpy(splits.y_train)
    b = config.batch_size
    gen = torch.Generator().manual_seed(0)

    def epoch() -> None:
        net.train()
        order = torch.randperm(len(y), generator=gen)
        for s in range(0, len(y), b):
            idx = order[s : s + b]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            loss.item()  # chainrule's loop reads every loss (progress bar, divergence check)

    return epoch


def interleaved(
    candidates: dict[str, Callable[[], None]], rounds: int, warmup: int
) -> dict[str, list[float]]:
    """Seconds per epoch of each candidate; the first to run rotates every round."""
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            candidates[name]()
            times[name].append(time.perf_counter() - t0)
    return times


#: Where each profiled function belongs, by the path of its file (first match wins).
CATEGORIES = (
    ("engine core (Tensor, primitives, backward walk)",
     ("tensor/tensor.py", "tensor/methods.py", "tensor/primitive.py", "tensor/backward.py",
      "chainrule/graph.py", "tensor/grad_mode.py", "tensor/dtypes.py")),
    ("ops: forward functions and VJP rules", ("tensor/ops/", "nn/functional.py")),
    ("optimiser", ("optim/",)),
    ("data loading (DataLoader, batches)", ("data/",)),
    ("nn modules (Module calls, Sequential)", ("nn/",)),
    ("training loop", ("training/",)),
)  # fmt: skip


def _category(file: str) -> str:
    path = file.replace("\\", "/")
    for name, parts in CATEGORIES:
        if any(p in path for p in parts):
            return name
    return "NumPy and Python built-ins called directly" if path == "~" else "other"


def profile(dataset: str, epochs: int) -> None:
    """Where chainrule's epoch time goes: cProfile own time (tottime), by category and
    by function. A function's own time includes the NumPy operators it runs (``x @ w``
    is not a call the profiler sees); NumPy functions called by name are listed apart."""
    epoch, _, steps = chainrule_epoch(dataset)
    epoch()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(epochs):
        epoch()
    prof.disable()
    stats = pstats.Stats(prof)
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    n = epochs * steps
    print(f"\ncProfile of {epochs} chainrule epochs on {dataset} ({n} steps): "
          f"{1e6 * total / n:.0f} µs per step under the profiler")  # fmt: skip
    by_category: dict[str, float] = {}
    for (file, _, _), (_, _, tottime, _, _) in raw.items():
        key = _category(file)
        by_category[key] = by_category.get(key, 0.0) + tottime
    for key, t in sorted(by_category.items(), key=lambda kv: -kv[1]):
        print(f"  {1e6 * t / n:>6.0f} µs/step {100 * t / total:>5.1f}%  {key}")
    print(f"  {'own time':>12} {'share':>6} {'calls/step':>10}  function")
    rows = sorted(raw.items(), key=lambda kv: -kv[1][2])
    for (file, line, func), (_, ncalls, tottime, _, _) in rows[:14]:
        where = f"{_short(file)}:{line} {func}" if line else func
        print(f"  {1e6 * tottime / n:>6.0f} µs/step {100 * tottime / total:>5.1f}% "
              f"{ncalls / n:>10.1f}  {where}")  # fmt: skip


def _short(file: str) -> str:
    return "/".join(file.replace("\\", "/").split("/")[-2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="digits,mnist1d")
    parser.add_argument("--epochs", type=int, default=15, help="timed epochs per library")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="also cProfile chainrule")
    args = parser.parse_args()

    torch.set_num_threads(args.torch_threads)
    blas = ", ".join(
        f"{i['internal_api']} {i.get('version')} from {Path(i['filepath']).parent.name} "
        f"({i['num_threads']} threads)"
        for i in threadpool_info()
    )
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs; "
          f"Python {platform.python_version()}")  # fmt: skip
    print(f"chainrule {chainrule.__version__}, NumPy {np.__version__}, PyTorch {torch.__version__}")
    print(f"thread pools found: {blas}")
    print(f"chainrule: 1 BLAS thread; PyTorch: {torch.get_num_threads()} intra-op thread(s), "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")  # fmt: skip
    print(f"\nms per training epoch (median of {args.epochs}, interleaved), float32; "
          "ratio = chainrule / PyTorch")  # fmt: skip
    print(f"{'data set':<9}{'model':<24}{'batch, optimiser':<18}{'steps':>6}"
          f"{'chainrule':>11}{'PyTorch':>10}{'ratio':>8}")  # fmt: skip
    for dataset in args.datasets.split(","):
        config = default_config(dataset)
        with threadpool_limits(limits=1, user_api="blas"):
            ours, start, steps = chainrule_epoch(dataset)
            theirs = torch_epoch(dataset, start)
            times = interleaved({"chainrule": ours, "pytorch": theirs}, args.epochs, warmup=2)
        cr, pt = (1e3 * statistics.median(times[k]) for k in ("chainrule", "pytorch"))
        info = load_dataset(dataset).info
        sizes = [info.n_features, *config.hidden, info.n_classes]
        model = "-".join(map(str, sizes)) + (f" drop {config.dropout:g}" if config.dropout else "")
        opt = f"{config.batch_size}, {config.optimizer}"
        print(f"{dataset:<9}{model:<24}{opt:<18}{steps:>6}{cr:>11.1f}{pt:>10.1f}{cr / pt:>8.2f}")
    if args.profile:
        with threadpool_limits(limits=1, user_api="blas"):
            for dataset in args.datasets.split(","):
                profile(dataset, 5)


if __name__ == "__main__":
    main()
