"""What a pipeline step looked like: the measured bubble and the Gantt chart of a step.

Each stage records ``(kind, micro-batch, start, end)`` for its forwards and backwards,
relative to the start of the step (ranks leave a barrier together, so the origins agree
on one machine to well under a millisecond). The measured bubble is the idle share of
K stages over the step's span: 1 - sum(busy) / (K * span), the tick model's definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from chainrule.extras import import_module

#: One stage's events of one step: (kind "F"/"B", micro-batch, start s, end s).
Events = Sequence[tuple[str, int, float, float]]

FORWARD_COLOR, BACKWARD_COLOR = "#4c8fd6", "#e8893a"


def measured_bubble(stages: Sequence[Events]) -> float:
    """1 - (time the stages computed) / (K × the span from first start to last end)."""
    events = [e for s in stages for e in s]
    if not events:
        raise ValueError("measured_bubble: no events recorded (was a step run?).")
    span = max(e[3] for e in events) - min(e[2] for e in events)
    busy = sum(e[3] - e[2] for e in events)
    return 1.0 - busy / (len(stages) * span) if span > 0 else 0.0


def draw_timeline(stages: Sequence[Events], path: Path, title: str) -> Path:
    """A Gantt chart (one row per stage, an F or B block per micro-batch) saved as a PNG.

    matplotlib (the ``viz`` extra) is imported here, with the Agg backend (files only).
    The picture is written atomically: ``path`` is complete or untouched.
    """
    try:
        matplotlib = import_module("matplotlib")
    except ImportError as exc:
        raise ImportError(
            f"drawing the timeline needs matplotlib ({exc}): pip install 'chainrule[viz]'"
        ) from exc
    matplotlib.use("Agg")
    plt = import_module("matplotlib.pyplot")
    from matplotlib.patches import Patch

    from chainrule.io import atomic_savefig

    t0 = min(e[2] for s in stages for e in s)
    k = len(stages)
    fig, ax = plt.subplots(figsize=(11, 0.7 * k + 1.6), constrained_layout=True)
    try:
        for row, events in enumerate(stages):
            for kind, mb, start, end in events:
                x, w = 1e3 * (start - t0), 1e3 * (end - start)
                color = FORWARD_COLOR if kind == "F" else BACKWARD_COLOR
                ax.broken_barh([(x, w)], (row - 0.4, 0.8), facecolors=color, edgecolor="white")
                ax.text(x + w / 2, row, f"{kind}{mb}", ha="center", va="center", fontsize=7,
                        color="white", clip_on=True)  # fmt: skip
        ax.set_yticks(range(k), [f"stage {s}" for s in range(k)])
        ax.invert_yaxis()  # stage 0 on top, as pipeline papers draw it
        ax.set(xlabel="time since the step began (ms)", title=title)
        ax.grid(True, axis="x", alpha=0.3)
        handles = [Patch(color=FORWARD_COLOR, label="forward"),
                   Patch(color=BACKWARD_COLOR, label="backward")]  # fmt: skip
        ax.legend(handles=handles, loc="upper right", fontsize=8)
        atomic_savefig(fig, path)
    finally:
        plt.close(fig)
    return path
