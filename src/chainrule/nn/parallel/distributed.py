"""``DistributedDataParallel``: one model trained on several ranks, each on part of a batch.

Each rank runs forward and backward on its own slice of the batch; the gradients are then
averaged over the ranks, so every rank's optimiser takes the step that one process would
take on the whole batch (the mean loss of N·b samples has the mean of the N per-rank
gradients as its gradient, when every rank's loss is a mean over b samples).

The gradients live in flat buffers (``buckets.py``), each ``.grad`` a view into one; the
engine writes each gradient into its view (``backward.register_grad_store``), and a
callback queued on the backward pass all-reduces the buffers before ``backward()``
returns, so ``optimizer.step()`` only ever reads averaged gradients.
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
from chainrule.nn.parallel.buckets import Bucket, Slot, layout
from chainrule.tensor import backward as engine
from chainrule.tensor.tensor import Tensor


def _check_same_structure(g: ProcessGroup, params: list[tuple[str, Parameter]]) -> None:
    """Every rank must hold the same parameters: else raise on every rank, naming the first
    difference."""
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

    The gradients live in one flat buffer per dtype and each ``.grad`` is a view into it
    (PyTorch's ``gradient_as_bucket_view=True``, here the default): backward writes each
    gradient, already multiplied by 1/world_size, into its place, and one in-place
    all-reduce (a sum) of the buffer leaves the average in every ``.grad``. ``zero_grad()``
    (``set_to_none=True``) drops the views as PyTorch's does; the next backward writes into
    the same memory and binds ``.grad`` to its view again. ``zero_grad(set_to_none=False)``
    zeros the views in place.

    By default the all-reduce runs once, after backward (a callback queued on the pass):
    a barrier polled with the group's deadline, so that a rank that never arrives is
    reported instead of hanging the others, then one blocking ``Allreduce`` per dtype.
    ``overlap=True`` all-reduces bucket by bucket from the gradient hooks during backward
    (non-blocking ``Iallreduce``, as PyTorch's reducer): on a machine with a core free for
    MPI it hides communication behind backward; where the ranks already use every core,
    polling the requests costs more than it hides (see the README's measurements).

    Args:
        module: the model (the same structure on every rank).
        bucket_cap_mb: size of one bucket in megabytes (PyTorch's default 25): the unit
            ``overlap=True`` starts as soon as backward has filled it.
        process_group: the group to average over (default: ``init_process_group``'s).
        gradient_as_bucket_view: ``.grad`` as views into the buffer (default); False keeps
            the engine's own ``.grad`` arrays, copied into the buffer and out again.
        overlap: all-reduce the buckets during backward instead of after it.

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
        *,
        gradient_as_bucket_view: bool = True,
        overlap: bool = False,
    ) -> None:
        if not bucket_cap_mb > 0:
            raise ValueError(
                f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}."
            )
        self.module = module
        self.process_group = _group(process_group, "DistributedDataParallel")
        g = self.process_group
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if gradient_as_bucket_view:
            for n, p in named:
                if id(p) in engine._grad_stores:
                    raise ValueError(
                        f"DistributedDataParallel: parameter '{n}' already has its .grad in "
                        "the buckets of another DistributedDataParallel; wrap each model "
                        "once (or build a new model to wrap)."
                    )
        _check_same_structure(g, named)
        for _, p in named:
            dist.broadcast(p, src=0, group=g)
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.overlap = overlap
        self._flats, self._buckets, self._slots = layout(named, int(bucket_cap_mb * 2**20))
        # Every rank's gradient enters the sum already divided by the world size.
        self._scale: float | None = 1.0 / g.size if g.size > 1 else None
        self.require_backward_grad_sync = True
        self._active = False  # a synced backward pass is running (its callback is queued)
        self._pass = 0  # synced passes so far: Slot.done says which one wrote a view
        self._next = 0  # the next bucket to start: buckets start in order on every rank
        self._requests: list[Any] = []
        self.buckets_started_in_pass = 0
        self._handles = []
        for slot in self._slots:
            self._handles.append(slot.param.register_hook(self._make_hook(slot)))
            if gradient_as_bucket_view:
                store = self._make_store(slot)
                self._handles.append(engine.register_grad_store(slot.param, store))

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

    def _make_hook(self, slot: Slot) -> Any:
        def hook(grad: Tensor) -> None:
            if not self.require_backward_grad_sync:
                return None
            if not self._active:
                self._active = True
                self._pass += 1
                engine.queue_callback(self._finish)
            if self.overlap:
                # The value to average is the accumulated .grad (after no_sync passes) plus
                # this pass's gradient; the engine's store then finds it in the view.
                slot.write(grad._data, self._scale, bind=False)
                slot.done = self._pass
                slot.bucket.ready += 1
                self._start_ready()
                if self._requests:  # let MPI progress the buckets already sent
                    mpi().Request.Testall(self._requests)
            return None

        return hook

    def _make_store(self, slot: Slot) -> Any:
        """What the engine calls instead of ``.grad += g`` (gradient_as_bucket_view)."""

        def store(t: Tensor, g: np.ndarray) -> None:
            if not self._active:  # no_sync, or a world of one: accumulate in the view
                slot.write(g, None)
            elif slot.done == self._pass:  # overlap: the hook wrote it (it may be in flight)
                slot.bind()
            else:
                slot.write(g, self._scale)
                slot.done = self._pass

        return store

    def _start_ready(self) -> None:
        while self._next < len(self._buckets):
            bucket = self._buckets[self._next]
            if bucket.ready < len(bucket.slots):
                return
            self._start(bucket)

    def _start(self, bucket: Bucket) -> None:
        g = self.process_group
        self._requests.append(start_all_reduce(g, bucket.buffer, ReduceOp.SUM))
        g.next_op()
        self._next += 1

    def _finish(self) -> None:
        """After the pass: bring in what no hook or store wrote, all-reduce, bind .grad."""
        g = self.process_group
        op = "DistributedDataParallel gradient all_reduce"
        self.buckets_started_in_pass = self._next
        try:
            if self.overlap:
                for bucket in self._buckets[self._next :]:  # not complete during the pass
                    for slot in bucket.slots:
                        if slot.done != self._pass:
                            slot.absorb(self._scale)
                    self._start(bucket)
                g.wait_all(self._requests, op, g._seq)
            else:
                for slot in self._slots:
                    if slot.done != self._pass:  # unused, non-view mode or a recorded pass
                        slot.absorb(self._scale)
                if g.size > 1:
                    # Arrive together first, with the group's deadline: a rank missing from
                    # the barrier is named; a blocking Allreduce is then the fastest sum
                    # (polling a non-blocking one steals the core the other rank computes
                    # on).
                    seq = g.next_op()
                    g.wait(g.comm.Ibarrier(), op, seq)
                    MPI = mpi()
                    for flat in self._flats:
                        g.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
            for slot in self._slots:
                if self.gradient_as_bucket_view:
                    slot.bind()
                else:
                    slot.param.grad = Tensor._wrap(slot.view.copy())
        finally:
            for bucket in self._buckets:
                bucket.ready = 0
            self._requests = []
            self._next = 0
            self._active = False

    def extra_repr(self) -> str:
        sizes = [b.buffer.nbytes / 2**20 for b in self._buckets]
        return (
            f"world_size={self.process_group.size}, buckets_mb={[round(s, 2) for s in sizes]}, "
            f"overlap={self.overlap}"
        )
