"""One training step, compiled: chainrule.compile vs eager chainrule vs NumPy vs JAX jit vs PyTorch.

A step is forward, softmax cross-entropy (mean over the batch), backward and an SGD update
of a ReLU MLP, float32, at three sizes (as ``mlp_step.py``):

    small   2-16-16-2         batch 100
    medium  784-256-256-10    batch 128
    large   1024-4096-4096-10 batch 512

and in two styles: ``fused`` (``ops.linear``, the fused ``cross_entropy``) and ``plain``
(``h @ W + b``, ``relu``, ``exp``/``sum``/``log``). Candidates:

- ``compiled``: ``chainrule.compile`` of the eager step (traced on its first calls);
- ``eager``: the same step without compile;
- ``numpy``: ``chainrule.lecture.matrix``, the lecture's equations written by hand;
- ``jax``: ``jax.jit`` of value_and_grad plus the SGD update, as JAX users write it;
- ``pytorch``: the same step in PyTorch (CPU).

All start from the same weights and see the same batch; they run in interleaved blocks
after a warm-up (``mlp_step.interleaved``), and ratios are medians of per-round ratios.
Tracing time is the one-off cost of compile's first two calls (eager step + trace).

Run:  .venv/bin/python benchmarks/compile.py [--sizes small,medium,large] [--styles fused,plain]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

import chainrule
from chainrule import Tensor
from chainrule.lecture import matrix
from chainrule.optim import SGD
from chainrule.tensor import ops
from chainrule.tensor.ops.loss import cross_entropy
from mlp_step import LR, SIZES, interleaved, paired

jax: Any = None  # imported in main(), after --threads has set XLA's thread flags
jnp: Any = None


def import_jax(threads: int) -> None:
    global jax, jnp
    if threads:  # XLA's CPU client: one intra-op thread, like the others' BLAS
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    try:
        import jax as jax_module
        import jax.numpy as jnp_module
    except ImportError:  # JAX is a benchmark-only peer (the dev extra)
        return
    jax, jnp = jax_module, jnp_module


def problem(sizes: list[int], batch: int) -> tuple[matrix.Network, np.ndarray, np.ndarray]:
    """The seeded network (the lecture's layout), batch and class labels every candidate
    starts from."""
    rng = np.random.default_rng(0)
    net = matrix.init_network(sizes, rng, dtype=np.float32)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    return net, x, rng.integers(0, sizes[-1], batch)


def make_steps(sizes: list[int], batch: int, style: str) -> tuple[dict[str, Any], float]:
    net, x, y = problem(sizes, batch)
    onehot = np.eye(sizes[-1], dtype=np.float32)[y]
    x_cols = np.ascontiguousarray(x.T)

    def numpy_step() -> float:
        fp = matrix.forward(net, x_cols)
        loss, dl_df = matrix.cross_entropy(fp.f[-1], y, mean=True)
        matrix.sgd_step(net, matrix.backward(net, fp, dl_df), LR)
        return loss

    fused = style == "fused"
    # Linear's layout (out × in) for the fused op; (in × out) for h @ W + b.
    weights = [Tensor(w.copy() if fused else w.T.copy(), requires_grad=True) for w in net.weights]
    biases = [Tensor(b.ravel().copy(), requires_grad=True) for b in net.biases]
    xt, yt = Tensor(x), Tensor(onehot)
    opt = SGD([*weights, *biases], lr=LR)
    last = len(weights) - 1

    def eager_step(xt: Tensor, target: Any) -> Tensor:
        h = xt
        for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
            h = ops.linear(h, w, b) if fused else h @ w + b
            if k < last:
                h = h.relu()
        if fused:
            loss = cross_entropy(h, target)
        else:
            z = h - h.max(axis=1, keepdims=True)
            logp = z - z.exp().sum(axis=1, keepdims=True).log()
            loss = -(logp * target).sum() / batch
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    target = y if fused else yt
    compiled = chainrule.compile(eager_step)
    t0 = time.perf_counter()
    compiled(xt, target)
    compiled(xt, target)  # the first call creates the .grad and SGD's buffers; this one sticks
    trace_seconds = time.perf_counter() - t0

    steps: dict[str, Callable[[], Any]] = {
        "compiled": lambda: compiled(xt, target),
        "eager": lambda: eager_step(xt, target),
        "numpy": numpy_step,
    }

    if jax is not None:
        jparams = [
            (jnp.asarray(w), jnp.asarray(b.ravel()))
            for w, b in zip(net.weights, net.biases, strict=True)
        ]
        jx, jy = jnp.asarray(x), jnp.asarray(y)

        def jloss(params: Any, x: Any, y: Any) -> Any:
            h = x
            for k, (w, b) in enumerate(params):
                h = h @ w.T + b
                if k < last:
                    h = jax.nn.relu(h)
            logp = jax.nn.log_softmax(h, axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

        @jax.jit
        def jstep(params: Any, x: Any, y: Any) -> Any:
            loss, grads = jax.value_and_grad(jloss)(params, x, y)
            return jax.tree_util.tree_map(lambda p, g: p - LR * g, params, grads), loss

        state = [jparams]

        def jax_step() -> float:
            state[0], loss = jstep(state[0], jx, jy)
            return float(loss.block_until_ready())

        steps["jax"] = jax_step

    tw = [torch.tensor(w, requires_grad=True) for w in net.weights]
    tb = [torch.tensor(b.ravel(), requires_grad=True) for b in net.biases]
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    topt = torch.optim.SGD([*tw, *tb], lr=LR)

    def torch_step() -> float:
        h = tx
        for k, (w, b) in enumerate(zip(tw, tb, strict=True)):
            h = torch.nn.functional.linear(h, w, b)
            if k < last:
                h = h.relu()
        loss = torch.nn.functional.cross_entropy(h, ty)
        topt.zero_grad()
        loss.backward()
        topt.step()
        return float(loss.item())

    steps["pytorch"] = torch_step
    return steps, trace_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--styles", default="fused,plain")
    parser.add_argument("--rounds", type=int, default=0, help="blocks per candidate (0: auto)")
    parser.add_argument(
        "--threads", type=int, default=0, help="BLAS and torch threads (0: leave as they are)"
    )
    args = parser.parse_args()
    import_jax(args.threads)
    limits = threadpool_limits(args.threads) if args.threads else None
    if args.threads:
        torch.set_num_threads(args.threads)

    blas = ", ".join(
        f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)"
        for i in threadpool_info()
    )
    jv = jax.__version__ if jax is not None else "not installed"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; Python {platform.python_version()}"
    )
    print(f"chainrule {chainrule.__version__}, NumPy {np.__version__}, PyTorch {torch.__version__}")
    print(f"JAX {jv}; BLAS: {blas}; torch threads: {torch.get_num_threads()}")
    print("\nms per training step (median), float32; ratios: median of per-round ratios")
    head = ["compiled", "eager", "numpy", "jax", "pytorch"]
    print(
        f"{'style':<6} {'size':<7}"
        + "".join(f"{c:>10}" for c in head)
        + f"{'c/numpy':>9}{'c/jax':>7}{'c/eager':>8}{'e/numpy':>8}{'trace ms':>9}"
    )
    for style in args.styles.split(","):
        for size in args.sizes.split(","):
            sizes, batch, rounds = SIZES[size]
            steps, trace_s = make_steps(sizes, batch, style)
            med = interleaved(steps, args.rounds or rounds, warmup=2)
            cells = "".join(
                f"{statistics.median(med[c]) * 1e3:>10.3f}" if c in med else f"{'-':>10}"
                for c in head
            )
            c_jax = f"{paired(med['compiled'], med['jax']):>7.2f}" if "jax" in med else f"{'-':>7}"
            print(
                f"{style:<6} {size:<7}{cells}"
                f"{paired(med['compiled'], med['numpy']):>9.2f}{c_jax}"
                f"{paired(med['compiled'], med['eager']):>8.2f}"
                f"{paired(med['eager'], med['numpy']):>8.2f}{trace_s * 1e3:>9.1f}"
            )
    del limits


if __name__ == "__main__":
    main()
