"""The schedules' orders and their tick model (no MPI), and splitting a Sequential."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from chainrule import Tensor, nn
from chainrule.distributed.pipelining import (
    PipelineStage,
    Schedule1F1B,
    ScheduleGPipe,
    split_sequential,
)
from chainrule.distributed.pipelining.ticks import (
    gpipe_bubble_formula,
    gpipe_order,
    max_in_flight,
    one_f_one_b_order,
    simulate,
    stage_order,
    tick_bubble,
)
from chainrule.distributed.pipelining.timeline import measured_bubble


def test_gpipe_on_two_stages_two_microbatches_matches_the_hand_worked_clock() -> None:
    run = simulate([gpipe_order(s, 2, 2) for s in range(2)])
    # Stage 1 starts F0 when stage 0 finishes it (tick 1); stage 0's B0 waits for stage
    # 1's B0, which ends at tick 4; makespan 6, each stage busy 4 of 6 ticks.
    assert run.starts[0] == {("F", 0): 0, ("F", 1): 1, ("B", 0): 4, ("B", 1): 5}
    assert run.starts[1] == {("F", 0): 1, ("F", 1): 2, ("B", 0): 3, ("B", 1): 4}
    assert run.makespan == 6 and run.busy == [4, 4]
    assert run.bubble == Fraction(1, 3)


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
@pytest.mark.parametrize("ticks", [(1, 1), (1, 2), (2, 3)])
def test_bubble_of_both_schedules_is_k_minus_1_over_m_plus_k_minus_1(
    schedule: str, ticks: tuple[int, int]
) -> None:
    for k in range(1, 7):
        for m in range(1, 17):
            expected = Fraction(k - 1, m + k - 1)  # GPipe's paper
            assert tick_bubble(schedule, k, m, *ticks) == expected == gpipe_bubble_formula(k, m)


def test_every_order_does_each_forward_then_its_backward_once() -> None:
    for schedule in ("gpipe", "1f1b"):
        for k in (1, 2, 4, 5):
            for m in (1, 2, 3, 8):
                for s in range(k):
                    order = stage_order(schedule, s, k, m)
                    assert sorted(order) == sorted(
                        [("F", i) for i in range(m)] + [("B", i) for i in range(m)]
                    )
                    for i in range(m):
                        assert order.index(("F", i)) < order.index(("B", i))


def test_1f1b_holds_at_most_k_minus_s_microbatches_where_gpipe_holds_m() -> None:
    for k in (2, 4):
        for m in (1, 2, 4, 8, 16):
            for s in range(k):
                assert max_in_flight(gpipe_order(s, k, m)) == m
                assert max_in_flight(one_f_one_b_order(s, k, m)) == min(k - s, m)


def test_1f1b_order_on_the_first_of_four_stages() -> None:
    order = one_f_one_b_order(0, 4, 6)
    assert order[:4] == [("F", 0), ("F", 1), ("F", 2), ("F", 3)]  # K - 1 warm-up, then F/B
    assert order[4:8] == [("B", 0), ("F", 4), ("B", 1), ("F", 5)]
    assert order[8:] == [("B", 2), ("B", 3), ("B", 4), ("B", 5)]


def test_bad_schedule_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="unknown schedule 'zb'"):
        stage_order("zb", 0, 2, 2)
    with pytest.raises(ValueError, match=r"stage_index must be in 0\.\.1, got 2"):
        gpipe_order(2, 2, 4)
    with pytest.raises(ValueError, match="n_microbatches >= 1"):
        tick_bubble("1f1b", 2, 0)


def _model() -> nn.Sequential:
    f64 = np.float64
    return nn.Sequential(
        nn.Linear(10, 10, dtype=f64, rng=0), nn.ReLU(),  # 110 parameters
        nn.Linear(10, 10, dtype=f64, rng=1), nn.ReLU(),  # 110
        nn.Linear(10, 100, dtype=f64, rng=2),  # 1100
        nn.Linear(100, 1, dtype=f64, rng=3),  # 101
    )  # fmt: skip


def test_split_by_parameters_minimises_the_largest_stage() -> None:
    model = _model()
    layers = list(model)
    two = split_sequential(model, 2)
    # {220 | 1201} beats {1320 | 101}: the largest stage is as small as it can be.
    assert [list(s) for s in two] == [layers[:4], layers[4:]]
    three = split_sequential(model, 3)
    assert [list(s) for s in three] == [layers[:4], layers[4:5], layers[5:]]
    six = split_sequential(model, 6)
    assert [list(s) for s in six] == [[layer] for layer in layers]


def test_split_by_time_gives_k_nonempty_consecutive_stages() -> None:
    model = _model()
    x = np.random.default_rng(0).normal(size=(32, 10))
    parts = split_sequential(model, 3, by="time", example_input=x)
    assert [layer for p in parts for layer in p] == list(model)
    assert all(len(p) >= 1 for p in parts)
    assert all(p.grad is None for p in model.parameters())  # timing leaves no gradients


def test_split_errors_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="at least num_stages=7 layers, got Sequential with 6"):
        split_sequential(_model(), 7)
    with pytest.raises(ValueError, match="needs example_input"):
        split_sequential(_model(), 2, by="time")
    with pytest.raises(ValueError, match="by must be 'parameters' or 'time'"):
        split_sequential(_model(), 2, by="flops")  # type: ignore[arg-type]


def test_measured_bubble_is_the_idle_share_of_k_stages_over_the_span() -> None:
    stage0 = [("F", 0, 0.0, 1.0), ("B", 0, 3.0, 4.0)]
    stage1 = [("F", 0, 1.0, 2.0), ("B", 0, 2.0, 3.0)]
    # span 4 s on 2 stages = 8 stage-seconds, 4 of them busy
    assert measured_bubble([stage0, stage1]) == 0.5
    with pytest.raises(ValueError, match="no events recorded"):
        measured_bubble([[], []])


class _OneRank:
    """A communicator of one rank: a single stage needs no messages."""

    def Get_size(self) -> int:
        return 1

    def Get_rank(self) -> int:
        return 0


def test_one_stage_schedule_equals_plain_training_and_checks_its_arguments() -> None:
    model = _model()
    stage = PipelineStage(model, 0, 1, comm=_OneRank())
    schedule = Schedule1F1B(stage, 4, nn.MSELoss())
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 10)), rng.normal(size=(8, 1))
    losses: list[Tensor] = []
    loss = schedule.step(x, target=y, losses=losses)
    grads = [p.grad.data.copy() for p in model.parameters()]  # type: ignore[union-attr]
    model.zero_grad()
    ref = nn.MSELoss()(model(Tensor(x)), y)
    ref.backward()
    assert loss is not None and len(losses) == 4
    assert abs(loss.item() - ref.item()) < 1e-12
    for g, p in zip(grads, model.parameters(), strict=True):
        np.testing.assert_allclose(g, p.grad.data, rtol=0, atol=1e-12)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match=r"x of shape \(6, 10\) cannot be cut into 4 equal"):
        schedule.step(x[:6], target=y[:6])
    with pytest.raises(TypeError, match="the last stage needs target=y"):
        schedule.step(x)
    with pytest.raises(ValueError, match="the last stage needs loss_fn"):
        ScheduleGPipe(stage, 2, None)
    with pytest.raises(ValueError, match=r"n_microbatches must be in 1\.\.16383 .*got 0"):
        ScheduleGPipe(stage, 0, nn.MSELoss())
    with pytest.raises(ValueError, match="got 16384"):
        Schedule1F1B(stage, 16384, nn.MSELoss())
    with pytest.raises(ValueError, match="must run on rank 1 of 2 ranks, but this is rank 0 of 1"):
        PipelineStage(model, 1, 2, comm=_OneRank())
