"""What ``chainrule train`` and ``chainrule demo`` show while training: a live progress bar
(loss, accuracy, steps per second) and one table row per epoch, printed above the bar.

``TrainingDisplay`` is a ``chainrule.training.Reporter``; it also calls ``after_epoch``
(the run folder's writer) once an epoch's row is printed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from chainrule.training import EpochMetrics

#: Columns of the per-epoch table: (header, width of the widest cell).
COLUMNS = (
    ("epoch", 7), ("lr", 7), ("train loss", 10), ("train acc", 9), ("test loss", 9),
    ("test acc", 8), ("time", 5), ("steps/s", 7),
)  # fmt: skip


class StepsPerSecond(ProgressColumn):
    """The optimiser steps per second over the last few seconds (rich's speed estimate)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} steps/s", style="progress.data.speed")


def epoch_row(m: EpochMetrics, epochs: int) -> list[str]:
    """The table cells of one epoch."""
    speed = m.steps / m.seconds if m.seconds > 0 else math.inf
    return [
        f"{m.epoch}/{epochs}",
        f"{m.lr:.1e}",
        f"{m.train_loss:.4f}",
        f"{100 * m.train_acc:.2f}%",
        f"{m.test_loss:.4f}",
        f"{100 * m.test_acc:.2f}%",
        f"{m.seconds:.2f}s" if m.seconds >= 0.1 else f"{1000 * m.seconds:.0f}ms",
        f"{speed:,.0f}",
    ]


def _table(show_header: bool) -> Table:
    # Every row is its own Table with the same fixed widths, so rows printed one at a time
    # line up as one table (rich cannot append a row to a table that is already printed).
    table = Table(
        box=box.SIMPLE_HEAD, show_header=show_header, show_edge=False, pad_edge=False,
        padding=(0, 0, 0, 1),
    )  # fmt: skip
    for header, width in COLUMNS:
        table.add_column(header, justify="right", min_width=width, no_wrap=True)
    return table


def rows_to_show(epochs: int, max_rows: int = 20) -> set[int]:
    """Which epochs get a row: all of them up to ``max_rows``, else every k-th and the last."""
    step = max(1, math.ceil(epochs / max_rows))
    return {e for e in range(1, epochs + 1) if e % step == 0 or e == 1 or e == epochs}


class TrainingDisplay:
    """A live progress bar and a row per (shown) epoch, on ``console``.

    Args:
        console: where to draw (a non-terminal console gets the rows but no live bar).
        epochs: the planned number of epochs.
        after_epoch: called with the epoch's metrics after its row is printed.
        max_rows: at most this many epoch rows (every k-th epoch beyond it; the last always).
    """

    def __init__(
        self,
        console: Console,
        epochs: int,
        after_epoch: Callable[[EpochMetrics], None] | None = None,
        max_rows: int = 20,
    ) -> None:
        self.console = console
        self.epochs = epochs
        self.after_epoch = after_epoch
        self.shown = rows_to_show(epochs, max_rows)
        # Rows are never cut: a console narrower than the table (a pipe is 80 wide) wraps.
        sample = _table(show_header=True)
        unlimited = console.options.update_width(10_000)
        console.width = max(console.width, console.measure(sample, options=unlimited).maximum)
        self._header_printed = False
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> TrainingDisplay:
        self._progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}"),
            StepsPerSecond(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,  # the bar disappears at the end; the epoch rows stay
            disable=not self.console.is_terminal,
        )
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)
            self._progress = None

    # -- Reporter ---------------------------------------------------------------------------

    def on_epoch_start(self, epoch: int, n_batches: int, lr: float) -> None:
        if self._progress is None:
            return
        text = f"{epoch}/{self.epochs}"
        if self._task is None:
            total = n_batches * self.epochs
            self._task = self._progress.add_task(
                "train", total=total, epoch=text, loss="-", acc="-"
            )
        else:
            self._progress.update(self._task, epoch=text, loss="-", acc="-")

    def on_batch(self, epoch: int, batch: int, loss: float, correct: int, seen: int) -> None:
        if self._progress is None:
            return
        self._progress.update(
            self._task, advance=1, loss=f"{loss:.4f}", acc=f"{100 * correct / seen:.1f}%"
        )

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        if metrics.epoch in self.shown:
            table = _table(show_header=not self._header_printed)
            table.add_row(*epoch_row(metrics, self.epochs))
            self.console.print(table)
            self._header_printed = True
        if self.after_epoch is not None:
            self.after_epoch(metrics)


def make_console() -> Console:
    """The console of the training commands: stdout, no markup or highlighting of numbers."""
    import sys

    return Console(file=sys.stdout, highlight=False)
