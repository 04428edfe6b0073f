"""In-place changes and the arrays handed out: what lets backward tell that a saved array
changed after the forward pass (PyTorch's version counters, plus samples of arrays that
left the engine)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from chainrule.tensor import backend

if TYPE_CHECKING:
    from chainrule.tensor.tensor import Tensor

_ndarray = np.ndarray


# How many in-place changes (and array hand-outs) there have been, in any tensor. A graph
# node (chainrule.tensor.node.Node) saved at clock value c needs no check of its inputs
# while the clock still reads c: the common case (forward, then backward) pays one
# comparison per node, not a loop.
#
# The clock is process-wide (a tensor can be shared by threads) and safe under concurrent
# use: writers take a lock, so no increment is lost, and publish the new value only after
# the tensors' versions carry it. A node recorded meanwhile stamps the old value and is
# checked; one recorded after stamps the new value, and the change it may have missed
# happened before (in the caller's array write, which precedes mark_modified). Readers (every
# recorded op, every backward node) take no lock: one list read.
_clock = [0]
_clock_lock = threading.Lock()


def mark_modified(*tensors: Tensor) -> None:
    """Record an in-place change of each tensor's array.

    ``t._version`` is ``[count, clock]``: how many changes (as PyTorch's version counter)
    and the clock value of the last one. A node saved at clock c is stale when one of its
    inputs has a last change later than c.
    """
    with _clock_lock:
        now = _clock[0] + 1
        for t in tensors:
            version = t._version
            version[0] += 1
            version[1] = now
        _clock[0] = now  # published last: see _clock


def mark_modified_source(names: list[str]) -> list[str]:
    """``mark_modified(*names)`` as straight-line Python, for chainrule.compile's programs:
    the same steps, without the call and the loop (a few µs of a small step). The lines
    read ``_clock`` and ``_clock_lock`` of this module. Keep the two alike."""
    lines = ["with _clock_lock:  # each changed tensor's version: mark_modified, inline"]
    lines.append("    _now = _clock[0] + 1")
    lines += [f"    _v = {n}._version; _v[0] += 1; _v[1] = _now" for n in names]
    lines.append("    _clock[0] = _now")
    return lines


def mark_handed_out(t: Tensor) -> None:
    """``t``'s array is now held outside the engine and may be written through it."""
    t._fp = fingerprint(t._data)
    node = t._node
    if node is not None and node.ans is t._data:  # its node keeps it: sample it there too
        node.out_fp = t._fp
    with _clock_lock:
        _clock[0] += 1


def fingerprint(a: Any) -> Any:
    """Up to 64 evenly spaced elements of ``a``: bytes for NumPy, a sample kept on the
    array's device for other libraries (``backend.fingerprint``; compare with
    ``backend.same_fingerprint``).

    In-place changes made through Tensor methods bump a version counter. Changes made
    through the NumPy array itself (``t.data[...] = ...``, a view from ``t.numpy()``, the
    array given to ``from_numpy``) cannot; so once a tensor has handed out its array, every
    operation that saves it takes this sample, and so does the next ``.data`` access; backward
    compares the sample with the array. Any change of the whole array (an optimiser step,
    ``x.data *= 2``) is caught; a change of a few elements between the samples is not.
    """
    if isinstance(a, _ndarray):  # (the common case, inline: saves a call per saved input)
        flat = a.reshape(-1)
        return flat[:: max(1, flat.size // 64)].tobytes()
    return backend.fingerprint(a)
