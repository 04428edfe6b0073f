"""Pipeline parallelism: a model too big for one process, split into stages over MPI ranks.

PyTorch's names (``torch.distributed.pipelining``):

- ``PipelineStage(submodule, stage_index, num_stages)``: the layers rank ``stage_index``
  holds; ``split_sequential(model, K)`` cuts a ``Sequential`` into K balanced stages.
- ``ScheduleGPipe(stage, n_microbatches, loss_fn)`` and ``Schedule1F1B(...)``: each rank
  calls ``step`` once per batch (``step(x)`` first, ``step(target=y, losses=...)`` last,
  ``step()`` in between); gradients equal the full batch's mean-loss gradients.
- ``ticks``: the schedules' orders and a tick model of them (the exact bubble).
- ``timeline``: the measured bubble and the Gantt chart of a step.

Run the script on K ranks: ``mpiexec -n K python script.py``.
"""

from chainrule.distributed.pipelining.schedule import Schedule1F1B, ScheduleGPipe
from chainrule.distributed.pipelining.stage import (
    PipelineShapeError,
    PipelineStage,
    split_sequential,
)
from chainrule.distributed.pipelining.ticks import gpipe_bubble_formula, tick_bubble

__all__ = [
    "PipelineShapeError",
    "PipelineStage",
    "Schedule1F1B",
    "ScheduleGPipe",
    "gpipe_bubble_formula",
    "split_sequential",
    "tick_bubble",
]
