"""Pipeline schedules: ``ScheduleGPipe`` and ``Schedule1F1B`` (``torch.distributed.pipelining``).

Every rank calls ``step`` once per batch: ``schedule.step(x)`` on the first stage,
``schedule.step(target=y, losses=losses)`` on the last, ``schedule.step()`` in between.
The batch is cut into M equal micro-batches; each stage runs its forwards and backwards
in the order of ``ticks.stage_order``. The last stage scales each micro-batch's mean loss
by 1/M, so the gradients accumulated in ``.grad`` equal those of the full batch's mean
loss; then ``optimizer.step()`` on each rank updates that stage's parameters. As in
PyTorch, ``.grad`` accumulates: call ``optimizer.zero_grad()`` before each ``step``.

A stage that raises stops the whole pipeline: it prints its error, naming the stage, and
aborts every rank (its neighbours would otherwise wait for it forever).
"""

from __future__ import annotations

import functools
import operator
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.distributed.pipelining import _comm
from chainrule.distributed.pipelining.stage import MAX_MICROBATCHES, PipelineStage
from chainrule.distributed.pipelining.ticks import stage_order
from chainrule.tensor import Tensor

LossFn = Callable[[Tensor, Any], Tensor]


def _as_array(x: Any) -> np.ndarray:
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)


class _PipelineSchedule:
    _name = ""

    def __init__(
        self, stage: PipelineStage, n_microbatches: int, loss_fn: LossFn | None = None
    ) -> None:
        cls = type(self).__name__
        if not isinstance(stage, PipelineStage):
            raise TypeError(f"{cls}: stage must be a PipelineStage, got {type(stage).__name__}.")
        if isinstance(n_microbatches, bool) or not isinstance(n_microbatches, int):
            raise TypeError(f"{cls}: n_microbatches must be an int, got {n_microbatches!r}.")
        if not 1 <= n_microbatches <= MAX_MICROBATCHES:
            raise ValueError(
                f"{cls}: n_microbatches must be in 1..{MAX_MICROBATCHES} (MPI's message tags), "
                f"got {n_microbatches}."
            )
        if stage.is_last and loss_fn is None:
            raise ValueError(f"{cls}: the last stage needs loss_fn(output, target).")
        self.stage, self.n_microbatches, self.loss_fn = stage, n_microbatches, loss_fn
        self.order = stage_order(self._name, stage.stage_index, stage.num_stages, n_microbatches)
        #: perf_counter() when the latest step began (after a barrier when ``timed``).
        self.step_start = 0.0
        self.timed = False  # barrier at each step start, so ranks' timelines share an origin
        self.steps = 0

    def _chunks(self, a: Any, what: str) -> list[np.ndarray]:
        arr = _as_array(a)
        m = self.n_microbatches
        if arr.ndim == 0 or arr.shape[0] % m:
            raise ValueError(
                f"{type(self).__name__}.step: {what} of shape {arr.shape} cannot be cut into "
                f"{m} equal micro-batches; use a batch size divisible by n_microbatches={m}."
            )
        return list(np.split(arr, m))

    def step(
        self, *args: Any, target: Any = None, losses: list[Tensor] | None = None
    ) -> Tensor | None:
        """Run one batch through the pipeline: forwards, backwards, gradients accumulated.

        Args:
            *args: the batch ``x``, on the first stage only.
            target: the batch's targets, on the last stage only.
            losses: a list to which the last stage appends each micro-batch's loss.

        Returns:
            On the last stage, the batch's mean loss (the mean of the micro-batch losses);
            elsewhere None.
        """
        if self.stage.num_stages == 1:
            return self._step(args, target, losses)  # nobody to stop: errors propagate
        try:
            return self._step(args, target, losses)
        except BaseException as exc:  # a bad call on one rank too: its neighbours would hang
            stage = self.stage
            _comm.abort(
                stage.comm,
                f"pipeline stopped: stage {stage.stage_index} of {stage.num_stages} (rank "
                f"{stage.stage_index}) failed in step {self.steps}: {type(exc).__name__}: {exc}",
            )

    def _step(
        self, args: tuple[Any, ...], target: Any, losses: list[Tensor] | None
    ) -> Tensor | None:
        stage = self.stage
        cls = type(self).__name__
        if stage.is_first != (len(args) == 1) or len(args) > 1:
            raise TypeError(
                f"{cls}.step: stage {stage.stage_index} takes "
                + ("the batch x: step(x)" if stage.is_first else "no inputs")
                + f", got {len(args)} positional arguments."
            )
        if stage.is_last != (target is not None):
            raise TypeError(
                f"{cls}.step: "
                + ("the last stage needs target=y" if stage.is_last else "target= is only for the")
                + ("" if stage.is_last else f" last stage (this is stage {stage.stage_index})")
                + "."
            )
        xs = self._chunks(args[0], "x") if stage.is_first else None
        ys = self._chunks(target, "target") if stage.is_last else None
        return self._run(xs, ys, losses)

    def _run(
        self,
        xs: list[np.ndarray] | None,
        ys: list[np.ndarray] | None,
        losses: list[Tensor] | None,
    ) -> Tensor | None:
        stage = self.stage
        if self.timed:
            stage.comm.Barrier()
        self.step_start = time.perf_counter()
        stage.events.clear()
        means: list[Tensor] = []  # the last stage's micro-batch losses, each times 1/M
        for kind, mb in self.order:
            if kind == "B":
                stage.backward_one(mb)
            elif ys is None:
                stage.forward_one(mb, None if xs is None else xs[mb])
            else:
                loss = functools.partial(self._scaled_loss, y=ys[mb], losses=losses, means=means)
                stage.forward_one(mb, None if xs is None else xs[mb], loss=loss)
        stage.wait_sends()
        self.steps += 1
        return functools.reduce(operator.add, means) if means else None

    def _scaled_loss(
        self, out: Tensor, y: np.ndarray, losses: list[Tensor] | None, means: list[Tensor]
    ) -> Tensor:
        assert self.loss_fn is not None
        loss = self.loss_fn(out, y)
        if losses is not None:
            losses.append(loss.detach())
        scaled = loss * (1.0 / self.n_microbatches)  # 1/M: summed grads = the batch mean's
        means.append(scaled.detach())
        return scaled


class ScheduleGPipe(_PipelineSchedule):
    """GPipe: all M forwards, then all M backwards; a stage holds M micro-batches at once.

    Bubble (idle share): (K - 1)/(M + K - 1) for K stages (Huang et al. 2019).

    Example (on rank r of K)::

        schedule = ScheduleGPipe(stage, n_microbatches=8, loss_fn=nn.MSELoss())
        optimizer.zero_grad()
        schedule.step(x) if r == 0 else schedule.step(target=y) if r == K - 1 else schedule.step()
        optimizer.step()
    """

    _name = "gpipe"


class Schedule1F1B(_PipelineSchedule):
    """1F1B: warm-up forwards, then one forward / one backward, then the last backwards.

    Same bubble as GPipe, (K - 1)/(M + K - 1), but stage s holds at most min(K - s, M)
    micro-batches' activations instead of M (PipeDream-Flush, Narayanan et al. 2021).
    """

    _name = "1f1b"
