"""The cost of backprop, measured: FLOPs of the forward and backward pass, and memory.

**FLOPs.** The lecture's formulas (``chainrule.lecture.matrix``) are run on arrays of a
NumPy subclass that records every ufunc call it takes part in, with its operand shapes.
So the count is of the operations actually executed, not of a formula for them:

- a matrix product (m × n)(n × p) is m·n·p multiply-adds = 2·m·n·p FLOPs;
- any other elementwise operation (bias add, ReLU's max, the comparison f > 0, the
  multiplication by 𝕀[f > 0], exp, log, ...) is 1 FLOP per output element;
- a reduction (the batch sum of ∂ℓ/∂β_k, the loss's sum) is n − 1 adds per output.

Three phases: *forward* (all f_k and h_k), *loss* (ℓ and ∂ℓ/∂f_K, which the lecture's
loss functions compute together), *backward* (every ∂ℓ/∂f_k, ∂ℓ/∂Ω_k, ∂ℓ/∂β_k). The
lecture's point shows in the matrix products: each forward product Ω_k h_k is matched by
two in the backward pass, ∂ℓ/∂f_k h_kᵀ and Ω_kᵀ ∂ℓ/∂f_k, except the first layer's
Ω_0ᵀ ∂ℓ/∂f_0 = ∂ℓ/∂x, which nobody needs and which is skipped.

**Memory.** The lecture predicts that backprop must store every f_k and h_k of the batch
(``predicted_bytes``: f_0..f_K and h_1..h_K; h_0 = x is the caller's data). The tensor
engine's graph is asked what it really keeps (``chainrule.tensor.inspect.saved_tensors``,
before ``backward`` frees it). It keeps only what its rules read: every h_k (ReLU's rule
reads its mask 𝕀[f_k > 0] = 𝕀[h_k > 0] from its output, and the next layer's ∂ℓ/∂Ω rule
reads h_k), but of the f_k only those another rule reads (the logits, for a
cross-entropy), so about half the prediction, plus what the loss's own operations keep.
Leaves (x, y and the parameters) are held by the caller anyway and are listed apart.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.lecture import matrix
from chainrule.lecture.backprop import Problem, engine_graph, loss_and_gradient
from chainrule.tensor.inspect import SavedTensor, saved_by_id

Array = np.ndarray


@dataclass(frozen=True)
class OpRecord:
    """One executed operation: the ufunc (and method, for reductions), shapes, FLOPs."""

    op: str
    kind: str  # "matmul", "elementwise" or "reduction"
    shapes: tuple[tuple[int, ...], ...]  # operand shapes, then the result's
    flops: int


_LEDGER: contextvars.ContextVar[list[OpRecord] | None] = contextvars.ContextVar(
    "chainrule_flop_ledger", default=None
)


class _Counted(np.ndarray):
    """An ndarray whose ufunc calls (``@``, ``+``, ``np.maximum``, ``.sum()``, ...) are
    written to the active ledger. Only used to count; results are those of NumPy."""

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        plain = [a.view(np.ndarray) if isinstance(a, _Counted) else a for a in inputs]
        outs = kwargs.get("out")
        if outs is not None:
            kwargs["out"] = tuple(
                o.view(np.ndarray) if isinstance(o, _Counted) else o for o in outs
            )
        result = getattr(ufunc, method)(*plain, **kwargs)
        ledger = _LEDGER.get()
        if ledger is not None:
            ledger.append(_record(ufunc, method, plain, np.asarray(result)))
        if outs is not None:
            return outs[0] if len(outs) == 1 else outs
        return result.view(_Counted) if isinstance(result, np.ndarray) else result


def _record(ufunc: np.ufunc, method: str, inputs: list[Any], result: Array) -> OpRecord:
    shapes = (*(np.shape(a) for a in inputs), result.shape)
    if ufunc is np.matmul:
        # (m × n)(n × p): m·p outputs, each n multiply-adds.
        return OpRecord("matmul", "matmul", shapes, 2 * result.size * int(np.shape(inputs[0])[-1]))
    if method == "reduce":
        return OpRecord(
            f"{ufunc.__name__}.reduce", "reduction", shapes, int(np.size(inputs[0])) - result.size
        )
    if method != "__call__":
        raise ValueError(f"FLOP count: ufunc method {ufunc.__name__}.{method} is not counted")
    return OpRecord(ufunc.__name__, "elementwise", shapes, result.size)


@contextmanager
def _counting() -> Iterator[list[OpRecord]]:
    ledger: list[OpRecord] = []
    token = _LEDGER.set(ledger)
    try:
        yield ledger
    finally:
        _LEDGER.reset(token)


@dataclass(frozen=True)
class PhaseFlops:
    """The operations of one phase and their FLOPs, matrix products apart."""

    ops: list[OpRecord]

    @property
    def matmul(self) -> int:
        """FLOPs in matrix products (2 per multiply-add)."""
        return sum(r.flops for r in self.ops if r.kind == "matmul")

    @property
    def matmul_count(self) -> int:
        """How many matrix products were executed."""
        return sum(1 for r in self.ops if r.kind == "matmul")

    @property
    def other(self) -> int:
        """FLOPs of elementwise operations and reductions."""
        return sum(r.flops for r in self.ops if r.kind != "matmul")

    @property
    def total(self) -> int:
        """All FLOPs of the phase."""
        return self.matmul + self.other


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of the forward pass, the loss (ℓ and ∂ℓ/∂f_K) and the backward pass.

    ``skipped_dl_dx`` is what the first layer's ∂ℓ/∂x = Ω_0ᵀ ∂ℓ/∂f_0 would have cost:
    2·D_in·D_1·I FLOPs, never executed.
    """

    forward: PhaseFlops
    loss: PhaseFlops
    backward: PhaseFlops
    skipped_dl_dx: int

    @property
    def matmul_ratio(self) -> float:
        """Backward over forward FLOPs in matrix products: 2 less the skipped ∂ℓ/∂x."""
        return self.backward.matmul / self.forward.matmul


def count_flops(problem: Problem) -> FlopCount:
    """Run the lecture's forward pass, loss and backward pass, counting what executes."""
    net = problem.net
    counted = matrix.Network(
        [w.view(_Counted) for w in net.weights], [b.view(_Counted) for b in net.biases]
    )
    with _counting() as forward_ops:
        fp = matrix.forward(counted, problem.x.view(_Counted))
    with _counting() as loss_ops:
        _, dl_df_out = loss_and_gradient(problem, fp.f[-1])
    with _counting() as backward_ops:
        matrix.backward(counted, fp, dl_df_out)
    d_in, d_1 = net.weights[0].shape[1], net.weights[0].shape[0]
    return FlopCount(
        PhaseFlops(forward_ops),
        PhaseFlops(loss_ops),
        PhaseFlops(backward_ops),
        2 * d_in * d_1 * problem.batch,
    )


@dataclass(frozen=True)
class MemoryCount:
    """What the engine keeps for the backward pass next to the lecture's prediction.

    ``saved`` lists every array the graph holds (leaves included); ``activations`` those
    that are the lecture's f_k or h_k (``is_activation``); ``extras`` the other non-leaf
    arrays (what the loss's operations keep); ``engine_bytes`` = ``saved_bytes(loss)``.
    """

    predicted_bytes: int  # Σ nbytes of f_0..f_K and h_1..h_K as the formulas store them
    predicted_arrays: int
    input_bytes: int  # h_0 = x
    saved: list[SavedTensor]
    is_activation: tuple[bool, ...]  # per entry of saved: an f_k or h_k

    @property
    def activations(self) -> list[SavedTensor]:
        """The f_k and h_k the engine keeps: every h_k, the f_k a rule reads."""
        return [s for s, a in zip(self.saved, self.is_activation, strict=True) if a]

    @property
    def kept_h(self) -> list[SavedTensor]:
        """The saved h_k (``relu`` outputs)."""
        return [s for s in self.activations if s.op == "relu" and s.role == "output"]

    @property
    def kept_f(self) -> list[SavedTensor]:
        """The saved f_k (``linear`` outputs that some rule reads)."""
        h = {id(s) for s in self.kept_h}
        return [s for s in self.activations if id(s) not in h]

    @property
    def extras(self) -> list[SavedTensor]:
        """Saved non-leaf arrays that are not activations: the loss's intermediates."""
        acts = {id(s) for s in self.activations}
        return [s for s in self.saved if not s.is_leaf and id(s) not in acts]

    @property
    def leaves(self) -> list[SavedTensor]:
        """x, y and the parameters: referenced by the graph, but owned by the caller."""
        return [s for s in self.saved if s.is_leaf]

    @property
    def engine_bytes(self) -> int:
        """Bytes the engine keeps for backward, leaves excluded (``saved_bytes``)."""
        return sum(s.nbytes for s in self.saved if not s.is_leaf)

    @property
    def activation_bytes(self) -> int:
        """The part of ``engine_bytes`` that is the f_k and h_k."""
        return sum(s.nbytes for s in self.activations)

    @property
    def extra_bytes(self) -> int:
        """The rest of ``engine_bytes``: the loss's intermediates, ℓ itself included."""
        return sum(s.nbytes for s in self.extras)


def measure_memory(problem: Problem) -> MemoryCount:
    """The lecture's predicted storage and the engine's graph's real one (float64)."""
    fp = matrix.forward(problem.net, problem.x)
    stored = [*fp.f, *fp.h[1:]]
    graph = engine_graph(problem)
    saved = saved_by_id(graph.loss)
    fs = {id(f._data) for f in graph.f}
    flags = tuple(
        not s.is_leaf and (key in fs or (s.op == "relu" and s.role == "output"))
        for key, s in saved.items()
    )
    return MemoryCount(
        sum(a.nbytes for a in stored),
        len(stored),
        int(problem.x.nbytes),
        list(saved.values()),
        flags,
    )
