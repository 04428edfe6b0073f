"""The order each stage works in, and a tick model of it: the exact bubble of a schedule.

A pipeline of K stages runs M micro-batches. Each stage does one forward ``F i`` and one
backward ``B i`` per micro-batch i; ``F i`` on stage s waits for ``F i`` on stage s - 1 and
``B i`` on stage s waits for ``B i`` on stage s + 1. A *schedule* is the order in which
each stage takes its 2M actions:

- GPipe (Huang et al. 2019): all forwards, then all backwards (in the same order). A stage
  keeps the activations of all M micro-batches until the backward phase begins.
- 1F1B (PipeDream-Flush, Narayanan et al. 2021): stage s starts with K - 1 - s forwards,
  then alternates one forward and one backward, then drains the backwards. At most
  min(K - s, M) micro-batches are in flight on stage s.

``simulate`` runs the orders on a clock where a forward takes ``forward_ticks`` and a
backward ``backward_ticks`` (communication free), as a discrete model of the real run.
Its bubble (the idle share of K stages × the makespan) is the exact figure that the
measured one is checked against: both schedules give (K - 1)/(M + K - 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Kind = Literal["F", "B"]
#: One action of a stage: ("F", i) is the forward of micro-batch i, ("B", i) its backward.
Action = tuple[Kind, int]
SCHEDULES = ("gpipe", "1f1b")


def _check(num_stages: int, n_microbatches: int, stage: int | None = None) -> None:
    if num_stages < 1 or n_microbatches < 1:
        raise ValueError(
            f"pipeline schedule: need num_stages >= 1 and n_microbatches >= 1, got "
            f"num_stages={num_stages}, n_microbatches={n_microbatches}."
        )
    if stage is not None and not 0 <= stage < num_stages:
        raise ValueError(
            f"pipeline schedule: stage_index must be in 0..{num_stages - 1}, got {stage}."
        )


def gpipe_order(stage: int, num_stages: int, n_microbatches: int) -> list[Action]:
    """GPipe's order for one stage: ``F 0 .. F M-1`` then ``B 0 .. B M-1``."""
    _check(num_stages, n_microbatches, stage)
    m = n_microbatches
    return [("F", i) for i in range(m)] + [("B", i) for i in range(m)]


def one_f_one_b_order(stage: int, num_stages: int, n_microbatches: int) -> list[Action]:
    """1F1B's order for one stage: K - 1 - s warm-up forwards, then F/B pairs, then Bs."""
    _check(num_stages, n_microbatches, stage)
    m = n_microbatches
    warmup = min(num_stages - 1 - stage, m)
    order: list[Action] = [("F", i) for i in range(warmup)]
    for i in range(warmup, m):
        order += [("F", i), ("B", i - warmup)]
    order += [("B", i) for i in range(m - warmup, m)]
    return order


def stage_order(schedule: str, stage: int, num_stages: int, n_microbatches: int) -> list[Action]:
    """The order of ``schedule`` ("gpipe" or "1f1b") for one stage."""
    if schedule == "gpipe":
        return gpipe_order(stage, num_stages, n_microbatches)
    if schedule == "1f1b":
        return one_f_one_b_order(stage, num_stages, n_microbatches)
    raise ValueError(f"pipeline schedule: unknown schedule {schedule!r}; use one of {SCHEDULES}.")


def max_in_flight(order: list[Action]) -> int:
    """The most micro-batches whose forward is done and backward not yet, along ``order``."""
    held = peak = 0
    for kind, _ in order:
        held += 1 if kind == "F" else -1
        peak = max(peak, held)
    return peak


@dataclass(frozen=True)
class TickRun:
    """The result of ``simulate``: when each action starts, the makespan and the bubble."""

    starts: list[dict[Action, int]]  # per stage: action -> start tick
    makespan: int
    busy: list[int]  # ticks each stage works
    bubble: Fraction  # 1 - sum(busy) / (K * makespan)
    in_flight: list[int]  # per stage, max_in_flight of its order


def simulate(
    orders: list[list[Action]], forward_ticks: int = 1, backward_ticks: int = 1
) -> TickRun:
    """Run the stages' orders on a discrete clock; see the module doc for the rules."""
    k = len(orders)
    cost = {"F": forward_ticks, "B": backward_ticks}
    done: list[dict[Action, int]] = [{} for _ in range(k)]  # action -> finish tick
    starts: list[dict[Action, int]] = [{} for _ in range(k)]
    free = [0] * k
    nxt = [0] * k
    remaining = sum(len(o) for o in orders)
    while remaining:
        progressed = False
        for s in range(k):
            while nxt[s] < len(orders[s]):
                kind, i = orders[s][nxt[s]]
                if kind == "F":
                    dep = done[s - 1].get(("F", i)) if s > 0 else 0
                else:
                    dep = done[s + 1].get(("B", i)) if s < k - 1 else done[s].get(("F", i))
                if dep is None:
                    break  # waits for a neighbour: try the other stages first
                start = max(free[s], dep)
                starts[s][(kind, i)] = start
                free[s] = done[s][(kind, i)] = start + cost[kind]
                nxt[s] += 1
                remaining -= 1
                progressed = True
        assert progressed, "pipeline orders deadlock: an action waits on one never done"
    makespan = max(free)
    busy = [sum(cost[kind] for kind, _ in o) for o in orders]
    bubble = 1 - Fraction(sum(busy), k * makespan)
    return TickRun(starts, makespan, busy, bubble, [max_in_flight(o) for o in orders])


def tick_bubble(
    schedule: str,
    num_stages: int,
    n_microbatches: int,
    forward_ticks: int = 1,
    backward_ticks: int = 1,
) -> Fraction:
    """The bubble of ``schedule`` on K stages and M micro-batches, by the tick model."""
    orders = [stage_order(schedule, s, num_stages, n_microbatches) for s in range(num_stages)]
    return simulate(orders, forward_ticks, backward_ticks).bubble


def gpipe_bubble_formula(num_stages: int, n_microbatches: int) -> Fraction:
    """GPipe's published bubble: (K - 1) / (M + K - 1)."""
    _check(num_stages, n_microbatches)
    return Fraction(num_stages - 1, n_microbatches + num_stages - 1)
