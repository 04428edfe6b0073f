"""A pipeline stage (the layers one rank holds) and splitting a Sequential into stages.

Stage s runs its layers on the micro-batches it receives from stage s - 1 and sends the
results to stage s + 1; in the backward pass it receives d(loss)/d(output) from s + 1 and
sends d(loss)/d(input) to s - 1. Arrays move with mpi4py's buffer methods (``Isend``,
``Recv``: no pickling). Shapes and dtypes are agreed once, at the first send: the sender
sends a small header, and the receiver checks it against what its first layer expects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from chainrule.distributed.group import ProcessGroup
from chainrule.distributed.pipelining import _comm
from chainrule.nn import Linear, Module, Sequential
from chainrule.tensor import Tensor
from chainrule.tensor.inspect import saved_by_id
from chainrule.utils.checkpoint import checkpoint

_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_HEADER = 10  # int64s: ndim, up to 8 dims, dtype code
# Tags: 2 mb for micro-batch mb's activation, 2 mb + 1 for its gradient, the header above
# them all; MPI guarantees tags up to 32767 only, hence at most MAX_MICROBATCHES.
_TAG_HEADER = 32767
MAX_MICROBATCHES = _TAG_HEADER // 2


class PipelineShapeError(ValueError):
    """Neighbouring stages disagree on the shape or dtype of what passes between them."""


def _expects(module: Module) -> tuple[int, np.dtype] | None:
    """(in_features, dtype) of the first Linear in ``module``, or None when there is none."""
    for m in module.modules():
        if isinstance(m, Linear):
            return m.in_features, m.weight.dtype
    return None


class PipelineStage:
    """The part of the model this rank holds: ``submodule`` is stage ``stage_index`` of K.

    Args:
        submodule: the layers of this stage (a Module taking and returning one Tensor).
        stage_index: s in 0..K-1; stage s runs on rank s of the communicator.
        num_stages: K, which must equal the number of ranks.
        recompute: run the stage's inside under ``chainrule.utils.checkpoint.checkpoint``
            (GPipe's recomputation): the stage keeps only each micro-batch's input and
            output, and recomputes the rest in backward (one more forward per micro-batch).
        group: the ``chainrule.distributed.ProcessGroup`` of the stages (default: the
            default group when ``init_process_group`` was called, else MPI's world).
        comm: an mpi4py communicator to use instead of a group's.

    Example (on two ranks, ``mpiexec -n 2 python script.py``)::

        stage = PipelineStage(split_sequential(model, 2)[rank], rank, 2)
    """

    def __init__(
        self,
        submodule: Module,
        stage_index: int,
        num_stages: int,
        recompute: bool = False,
        group: ProcessGroup | None = None,
        comm: Any = None,
    ) -> None:
        if not isinstance(submodule, Module):
            raise TypeError(
                f"PipelineStage: submodule must be a chainrule.nn.Module, got "
                f"{type(submodule).__name__}."
            )
        if not 0 <= stage_index < num_stages:
            raise ValueError(
                f"PipelineStage: stage_index must be in 0..{num_stages - 1}, got {stage_index}."
            )
        self.comm = _comm.communicator(group) if comm is None else comm
        size, rank = self.comm.Get_size(), self.comm.Get_rank()
        if size != num_stages or rank != stage_index:
            raise ValueError(
                f"PipelineStage: stage {stage_index} of {num_stages} must run on rank "
                f"{stage_index} of {num_stages} ranks, but this is rank {rank} of {size}; start "
                f"the script with mpiexec -n {num_stages} and pass stage_index=rank."
            )
        self.submodule = submodule
        self.stage_index, self.num_stages = stage_index, num_stages
        self.is_first, self.is_last = stage_index == 0, stage_index == num_stages - 1
        self.recompute = recompute
        self._in_meta: tuple[tuple[int, ...], np.dtype] | None = None  # agreed at first recv
        self._out_meta: tuple[tuple[int, ...], np.dtype] | None = None  # agreed at first send
        self._pending: list[tuple[Any, np.ndarray]] = []  # Isend requests and their buffers
        self._held: dict[int, tuple[Tensor, Tensor, int]] = {}  # mb -> (input, output, bytes)
        self.activation_bytes = 0
        self.peak_activation_bytes = 0
        #: (kind, micro-batch, start, end) of each forward/backward, perf_counter seconds.
        self.events: list[tuple[str, int, float, float]] = []

    def __repr__(self) -> str:
        return f"PipelineStage({self.stage_index} of {self.num_stages})"

    # -- communication ----------------------------------------------------------------------

    def _send(self, array: np.ndarray, dest: int, tag: int) -> None:
        buf = np.ascontiguousarray(array)
        # Isend: a stage never blocks on a send, so no order of sends and receives deadlocks.
        self._pending.append((self.comm.Isend(buf, dest=dest, tag=tag), buf))

    def _send_activation(self, out: np.ndarray, mb: int) -> None:
        meta = (tuple(out.shape), out.dtype)
        if self._out_meta is None:
            if out.dtype not in _DTYPES or out.ndim > _HEADER - 2:
                raise PipelineShapeError(
                    f"stage {self.stage_index} sends a {out.dtype} array of shape {out.shape}; "
                    f"stages pass float arrays of at most {_HEADER - 2} dimensions."
                )
            header = np.zeros(_HEADER, dtype=np.int64)
            header[0], header[1 : 1 + out.ndim] = out.ndim, out.shape
            header[-1] = _DTYPES.index(out.dtype)
            self.comm.Send(header, dest=self.stage_index + 1, tag=_TAG_HEADER)
            self._out_meta = meta
        elif meta != self._out_meta:
            raise PipelineShapeError(
                f"stage {self.stage_index}: micro-batch {mb}'s output is {out.dtype} of shape "
                f"{out.shape}, but the stages agreed on {self._out_meta[1]} of shape "
                f"{self._out_meta[0]} at the first send; keep every batch the same size "
                "(e.g. DataLoader(..., drop_last=True))."
            )
        self._send(out, self.stage_index + 1, 2 * mb)

    def _recv_activation(self, mb: int) -> np.ndarray:
        src = self.stage_index - 1
        if self._in_meta is None:
            header = np.empty(_HEADER, dtype=np.int64)
            self.comm.Recv(header, source=src, tag=_TAG_HEADER)
            shape, dtype = tuple(int(d) for d in header[1 : 1 + header[0]]), _DTYPES[header[-1]]
            want = _expects(self.submodule)
            if want is not None and (shape[-1:] != (want[0],) or dtype != want[1]):
                raise PipelineShapeError(
                    f"stage {self.stage_index}'s first Linear takes {want[1]} inputs of shape "
                    f"(*, {want[0]}), but stage {src} sends {dtype} of shape {shape}; split the "
                    "model so that each stage's input is its predecessor's output."
                )
            self._in_meta = shape, dtype
        buf = np.empty(*self._in_meta)
        self.comm.Recv(buf, source=src, tag=2 * mb)
        return buf

    def wait_sends(self) -> None:
        """Wait until every array this stage sent has been received (end of a step)."""
        for req, _ in self._pending:
            req.Wait()
        self._pending.clear()

    # -- compute ----------------------------------------------------------------------------

    def forward_one(
        self, mb: int, x: np.ndarray | None, loss: Callable[[Tensor], Tensor] | None = None
    ) -> Tensor:
        """Forward of micro-batch ``mb`` (``x`` on the first stage, else received).

        On the last stage ``loss(output)`` runs inside the forward's time block (as in
        PyTorch, the loss belongs to the last stage's forward); its result is returned and
        is what ``backward_one`` starts from. Elsewhere the stage's output is returned.
        """
        data = self._recv_activation(mb) if x is None else x
        inp = Tensor.from_numpy(data, requires_grad=not self.is_first)
        t0 = time.perf_counter()
        out = checkpoint(self.submodule, inp) if self.recompute else self.submodule(inp)
        if not isinstance(out, Tensor):
            raise TypeError(
                f"stage {self.stage_index}: the submodule must return one Tensor, got "
                f"{type(out).__name__}."
            )
        root = loss(out) if loss is not None else out
        self.events.append(("F", mb, t0, time.perf_counter()))
        # What its graph keeps (leaves aside), the input, and the root held here until its
        # backward (no rule of the graph may keep that one).
        kept = saved_by_id(root) if root.requires_grad else {}
        nbytes = sum(s.nbytes for s in kept.values() if not s.is_leaf) + data.nbytes
        if id(root._data) not in kept:
            nbytes += root._data.nbytes
        self._held[mb] = inp, root, nbytes
        self.activation_bytes += nbytes
        self.peak_activation_bytes = max(self.peak_activation_bytes, self.activation_bytes)
        if not self.is_last:
            self._send_activation(out.numpy(), mb)
        return root

    def backward_one(self, mb: int) -> None:
        """Backward of micro-batch ``mb``: from its loss on the last stage, else received."""
        inp, root, nbytes = self._held.pop(mb)
        if not self.is_last:
            # C order, as the sender's buffer: empty_like would copy a Fortran layout.
            grad = np.empty(root.shape, dtype=root.dtype)
            self.comm.Recv(grad, source=self.stage_index + 1, tag=2 * mb + 1)
        t0 = time.perf_counter()
        if root.requires_grad:
            root.backward(None if self.is_last else Tensor.from_numpy(grad))
        self.events.append(("B", mb, t0, time.perf_counter()))
        self.activation_bytes -= nbytes
        if not self.is_first:
            g = inp.grad.numpy() if inp.grad is not None else np.zeros_like(inp.numpy())
            self._send(g, self.stage_index - 1, 2 * mb + 1)


def _layer_times(layers: list[Module], example: Any, repeats: int = 3) -> list[float]:
    """Median seconds of forward + backward of each layer on ``example`` (run in order)."""
    times = []
    x = Tensor(example)
    for layer in layers:
        runs = []
        for _ in range(repeats):
            inp = Tensor(x.numpy(), requires_grad=True)
            t0 = time.perf_counter()
            out = layer(inp)
            out.sum().backward()
            runs.append(time.perf_counter() - t0)
        layer.zero_grad()
        times.append(float(np.median(runs)))
        x = out.detach()
    return times


def split_sequential(
    model: Sequential,
    num_stages: int,
    by: Literal["parameters", "time"] = "parameters",
    example_input: Any = None,
) -> list[Sequential]:
    """Cut ``model`` into ``num_stages`` consecutive Sequentials of balanced cost.

    The cost of a layer is its number of parameters (``by="parameters"``) or its measured
    forward + backward time on ``example_input`` (``by="time"``). The cut minimises the
    largest stage's cost (the pipeline runs at the pace of its slowest stage); every stage
    gets at least one layer. The layers are shared with ``model``, not copied.
    """
    layers = list(model)
    if not isinstance(model, Sequential) or not 1 <= num_stages <= len(layers):
        raise ValueError(
            f"split_sequential: need a Sequential with at least num_stages={num_stages} "
            f"layers, got {type(model).__name__} with {len(layers)}."
        )
    if by == "parameters":
        cost = [float(sum(p.numel() for p in layer.parameters())) for layer in layers]
    elif by == "time":
        if example_input is None:
            raise ValueError("split_sequential(by='time') needs example_input (one batch).")
        cost = _layer_times(layers, example_input)
    else:
        raise ValueError(f"split_sequential: by must be 'parameters' or 'time', got {by!r}.")
    cuts = balanced_cuts(cost, num_stages)
    return [Sequential(*layers[a:b]) for a, b in zip([0, *cuts], [*cuts, len(layers)], strict=True)]


def balanced_cuts(cost: list[float], k: int) -> list[int]:
    """Cut positions splitting ``cost`` into k non-empty runs minimising the largest sum.

    Dynamic programming over (layers used, stages used); ties go to the latest cut.
    """
    n = len(cost)
    prefix = np.concatenate([[0.0], np.cumsum(cost)])
    inf = float("inf")
    best = [[inf] * (n + 1) for _ in range(k + 1)]  # best[j][i]: first i layers in j stages
    arg = [[0] * (n + 1) for _ in range(k + 1)]
    best[0][0] = 0.0
    for j in range(1, k + 1):
        for i in range(j, n - (k - j) + 1):
            for c in range(j - 1, i):
                v = max(best[j - 1][c], float(prefix[i] - prefix[c]))
                if v <= best[j][i]:  # ties: the latest cut, so a ReLU stays with its Linear
                    best[j][i], arg[j][i] = v, c
    cuts, i = [], n
    for j in range(k, 0, -1):
        i = arg[j][i]
        cuts.append(i)
    return sorted(cuts)[1:]  # drop the leading 0
