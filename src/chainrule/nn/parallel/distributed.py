"""``DistributedDataParallel``: one model trained on several ranks, each on part of a batch.

Each rank runs forward and backward on its own slice of the batch; the gradients are then
averaged over the ranks, so every rank's optimiser takes the step that one process would
take on the whole batch (the mean loss of N·b samples has the mean of the N per-rank
gradients as its gradient, when every rank's loss is a mean over b samples).

As PyTorch's DDP, the gradients travel in buckets of about ``bucket_cap_mb`` megabytes, in
reverse parameter order (the order backward produces them): a gradient hook copies each
finished gradient into its bucket, and a full bucket starts a non-blocking all-reduce
(``Iallreduce``) while backward goes on with the earlier layers. A callback queued on the
backward pass waits for the buckets and writes the averages into ``.grad`` before
``backward()`` returns, so ``optimizer.step()`` only ever reads averaged gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from chainrule import distributed as dist
from chainrule.distributed.collectives import ReduceOp, _group, start_all_reduce
from chainrule.distributed.group import ProcessGroup, mpi
from chainrule.nn.module import Module, Parameter
from chainrule.tensor import backward as engine
from chainrule.tensor.tensor import Tensor


class _Bucket:
    """A flat buffer holding the gradients of a run of parameters of one dtype."""

    def __init__(self, index: int, params: list[tuple[str, Parameter]]) -> None:
        self.index = index
        self.params = params
        self.offsets: list[int] = []
        total = 0
        for _, p in params:
            self.offsets.append(total)
            total += p._data.size
        self.buffer = np.zeros(total, dtype=params[0][1]._data.dtype)
        self.ready: set[int] = set()  # ids of the parameters whose gradient is in the buffer

    def slot(self, k: int) -> np.ndarray:
        p = self.params[k][1]
        start = self.offsets[k]
        return self.buffer[start : start + p._data.size].reshape(p._data.shape)


def _buckets(params: list[tuple[str, Parameter]], cap_bytes: int) -> list[_Bucket]:
    """Reverse parameter order, a new bucket when the cap is reached or the dtype changes."""
    runs: list[list[tuple[str, Parameter]]] = []
    size = 0
    for name, p in reversed(params):
        nbytes = p._data.nbytes
        if not runs or size + nbytes > cap_bytes or runs[-1][0][1].dtype != p.dtype:
            runs.append([])
            size = 0
        runs[-1].append((name, p))
        size += nbytes
    return [_Bucket(i, run) for i, run in enumerate(runs)]


def _check_same_structure(g: ProcessGroup, params: list[tuple[str, Parameter]]) -> None:
    """Every rank must hold the same parameters; raise on every rank, naming the first difference."""
    mine = [(name, tuple(p.shape), str(p.dtype)) for name, p in params]
    everyone = dist.all_gather_object(mine, group=g)
    reference = everyone[0]
    for r, theirs in enumerate(everyone[1:], start=1):
        if theirs == reference:
            continue
        for k in range(max(len(reference), len(theirs))):
            a = reference[k] if k < len(reference) else None
            b = theirs[k] if k < len(theirs) else None
            if a != b:
                break

        def show(d: tuple[str, tuple[int, ...], str] | None) -> str:
            return "no parameter" if d is None else f"'{d[0]}' of shape {d[1]} ({d[2]})"

        raise ValueError(
            f"DistributedDataParallel: the model differs across ranks: parameter {k} is "
            f"{show(a)} on rank 0 but {show(b)} on rank {r} ({len(reference)} vs "
            f"{len(theirs)} parameters). Build the same model on every rank."
        )


class DistributedDataParallel(Module):
    """Wrap a model so that backward averages its gradients over the ranks.

    At construction rank 0's parameters are broadcast to every rank (ranks may start from
    different weights), after checking that every rank has the same parameter names,
    shapes and dtypes.

    Args:
        module: the model (the same structure on every rank).
        bucket_cap_mb: size of one all-reduce bucket in megabytes (PyTorch's default 25).
        process_group: the group to average over (default: ``init_process_group``'s).

    Example (run with ``mpiexec -n 2 python train.py``)::

        dist.init_process_group("mpi")
        model = DistributedDataParallel(nn.MLP(784, [1024], 10))
        opt = optim.SGD(model.parameters(), lr=0.1)
        loss = loss_fn(model(x_of_this_rank), y_of_this_rank)
        loss.backward()      # gradients averaged over the ranks when this returns
        opt.step()
    """

    def __init__(
        self,
        module: Module,
        bucket_cap_mb: float = 25.0,
        process_group: ProcessGroup | None = None,
    ) -> None:
        if not bucket_cap_mb > 0:
            raise ValueError(
                f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}."
            )
        self.module = module
        self.process_group = _group(process_group, "DistributedDataParallel")
        g = self.process_group
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        _check_same_structure(g, named)
        for _, p in named:
            dist.broadcast(p, src=0, group=g)
        self._cap_bytes = int(bucket_cap_mb * 2**20)
        self._buckets = _buckets(named, self._cap_bytes)
        self.require_backward_grad_sync = True
        self._active = False  # a backward pass has started filling the buckets
        self._next = 0  # the next bucket to start: buckets start in order on every rank
        self._requests: list[Any] = []
        self._handles = []
        for bucket in self._buckets:
            for k, (_, p) in enumerate(bucket.params):
                self._handles.append(p.register_hook(self._make_hook(bucket, k)))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Accumulate gradients locally: backward passes inside do not communicate.

        The first backward after the block averages the accumulated ``.grad``.
        """
        before = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = before

    # -- during backward ----------------------------------------------------------------------

    def _make_hook(self, bucket: _Bucket, k: int) -> Any:
        p = bucket.params[k][1]

        def hook(grad: Tensor) -> None:
            if not self.require_backward_grad_sync:
                return None
            if not self._active:
                self._active = True
                engine.queue_callback(self._finish)
            # The value to average is the accumulated .grad (after no_sync steps): the old
            # .grad plus this pass's gradient. The engine still adds grad to .grad at the
            # end of the pass; _finish then replaces .grad by the average, so nothing is
            # counted twice.
            slot = bucket.slot(k)
            if p.grad is None:
                np.copyto(slot, grad._data)
            else:
                np.add(p.grad._data, grad._data, out=slot)
            bucket.ready.add(id(p))
            self._start_ready()
            if self._requests:  # let MPI progress the buckets already sent
                mpi().Request.Testall(self._requests)
            return None

        return hook

    def _start_ready(self) -> None:
        while self._next < len(self._buckets):
            bucket = self._buckets[self._next]
            if len(bucket.ready) < len(bucket.params):
                return
            self._start(bucket)

    def _start(self, bucket: _Bucket) -> None:
        g = self.process_group
        self._requests.append(start_all_reduce(g, bucket.buffer, ReduceOp.SUM))
        g.next_op()
        self._next += 1

    def _finish(self) -> None:
        """After the pass: send what no hook sent, wait, and store the averages in .grad."""
        g = self.process_group
        try:
            # A parameter the forward pass did not use got no gradient: send its .grad (or
            # zeros), so that every rank starts the same buckets.
            for bucket in self._buckets[self._next :]:
                for k, (_, p) in enumerate(bucket.params):
                    if id(p) not in bucket.ready:
                        slot = bucket.slot(k)
                        if p.grad is None:
                            slot.fill(0)
                        else:
                            np.copyto(slot, p.grad._data)
                self._start(bucket)
            g.wait_all(self._requests, "DistributedDataParallel gradient all_reduce", g._seq)
            for bucket in self._buckets:
                bucket.buffer /= g.size
                for k, (_, p) in enumerate(bucket.params):
                    p.grad = Tensor._wrap(bucket.slot(k).copy())
        finally:
            for bucket in self._buckets:
                bucket.ready.clear()
            self._requests = []
            self._next = 0
            self._active = False

    def extra_repr(self) -> str:
        sizes = [b.buffer.nbytes / 2**20 for b in self._buckets]
        return f"world_size={self.process_group.size}, buckets_mb={[round(s, 2) for s in sizes]}"
