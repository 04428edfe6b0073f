"""DDP's gradient memory: one flat buffer per dtype, cut into buckets, each ``.grad`` a view.

As PyTorch's ``gradient_as_bucket_view=True``: the gradient of every parameter lives at its
own offset of a flat contiguous array, so all-reducing the buffer averages the ``.grad`` of
every parameter in place: nothing is copied into a bucket before the all-reduce nor out of
it after. Parameters go in reverse order (the order backward produces their gradients),
and a bucket is a run of them of at most ``bucket_cap_mb`` (a new one when the dtype
changes): the unit that the overlapped mode all-reduces as soon as it is complete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from chainrule.tensor.primitive import mark_modified
from chainrule.tensor.tensor import Tensor

if TYPE_CHECKING:
    from chainrule.nn.module import Parameter


class Slot:
    """One parameter's place in its flat buffer: the view and the ``.grad`` Tensor on it."""

    __slots__ = ("bucket", "done", "grad", "param", "view")

    def __init__(self, param: Parameter, view: np.ndarray, bucket: Bucket) -> None:
        self.param = param
        self.view = view
        self.bucket = bucket
        self.grad = Tensor._wrap(view)  # bound to param.grad after the first backward
        self.done = -1  # the last synced pass whose gradient is in the view

    def holds_grad(self) -> bool:
        """Whether ``param.grad`` is this slot's view (not None, not a Tensor set elsewhere)."""
        old = self.param.grad
        return old is self.grad and old._data is self.view

    def write(self, g: np.ndarray, scale: float | None, bind: bool = True) -> None:
        """view ← (.grad + g)·scale, where .grad counts as 0 when it is None.

        With ``bind``, ``param.grad`` becomes the view (a Tensor bound elsewhere, by the
        user or by a recorded pass, is added first); without, ``.grad`` is left alone.
        """
        view, old = self.view, self.param.grad
        if old is None:
            if scale is None:
                np.copyto(view, g)
            else:  # the scaled copy: the 1/world_size costs no pass of its own
                np.multiply(g, scale, out=view)
        else:
            np.add(view if self.holds_grad() else old._data, g, out=view)
            if scale is not None:
                view *= scale
        if bind:
            self.bind()

    def absorb(self, scale: float | None) -> None:
        """Bring a ``.grad`` that this pass did not write (an unused parameter, a recorded
        pass) into the view, scaled; None counts as zeros."""
        old = self.param.grad
        if old is None:
            self.view.fill(0)
        elif self.holds_grad():
            if scale is not None:
                self.view *= scale
        elif scale is None:
            np.copyto(self.view, old._data)
        else:
            np.multiply(old._data, scale, out=self.view)

    def bind(self) -> None:
        self.grad._data = self.view  # (in case a user rebound .data: the view is the grad)
        self.param.grad = self.grad
        mark_modified(self.grad)  # a graph that saved this .grad must not read the new value


class Bucket:
    """A contiguous run of slots in one flat buffer, all-reduced as one message."""

    __slots__ = ("buffer", "index", "ready", "slots")

    def __init__(self, index: int, buffer: np.ndarray) -> None:
        self.index = index
        self.buffer = buffer  # a contiguous 1-D view of the flat buffer
        self.slots: list[Slot] = []
        self.ready = 0  # slots written in the current pass


def layout(
    params: list[tuple[str, Parameter]], cap_bytes: int
) -> tuple[list[np.ndarray], list[Bucket], list[Slot]]:
    """The flat buffers (one per dtype), the buckets in the order backward fills them, and
    the slots in parameter order."""
    runs: list[list[Parameter]] = []
    size = 0
    for _, p in reversed(params):
        nbytes = p._data.nbytes
        if not runs or size + nbytes > cap_bytes or runs[-1][0]._data.dtype != p._data.dtype:
            runs.append([])
            size = 0
        runs[-1].append(p)
        size += nbytes
    totals: dict[np.dtype, int] = {}
    for _, p in params:
        totals[p._data.dtype] = totals.get(p._data.dtype, 0) + p._data.size
    flats = {dt: np.zeros(n, dtype=dt) for dt, n in totals.items()}
    filled = dict.fromkeys(flats, 0)
    buckets: list[Bucket] = []
    slot_of: dict[int, Slot] = {}
    for run in runs:  # runs of one dtype are consecutive in that dtype's buffer
        dt = run[0]._data.dtype
        start = filled[dt]
        stop = start + sum(p._data.size for p in run)
        bucket = Bucket(len(buckets), flats[dt][start:stop])
        offset = 0
        for p in run:
            n = p._data.size
            view = bucket.buffer[offset : offset + n].reshape(p._data.shape)
            slot = Slot(p, view, bucket)
            bucket.slots.append(slot)
            slot_of[id(p)] = slot
            offset += n
        filled[dt] = stop
        buckets.append(bucket)
    slots = [slot_of[id(p)] for _, p in params]
    return list(flats.values()), buckets, slots
