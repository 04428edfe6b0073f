"""``chainrule pipeline``: the picture, the report, the memory cap and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.cli import main

CHAINRULE = str(Path(sys.executable).parent / "chainrule")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: 8 Linear(1024, 1024) float32 layers with Adam: one process needs ~260 MiB, a stage of
#: two ~130 MiB (measured: parameters, gradients, Adam's state and scratch, activations).
BIG = ["--width", "1024", "--layers", "8", "--steps", "3", "--memory-cap", "192"]


def pipeline(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [CHAINRULE, "pipeline", *args, "--out", str(cwd)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)


def test_gpipe_run_draws_the_timeline_and_reports_bubble_and_memory(tmp_path: Path) -> None:
    proc = pipeline(["--stages", "2", "--microbatches", "4", "--schedule", "gpipe",
                     "--steps", "4", "--width", "32"], tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "timeline.png").read_bytes().startswith(PNG_SIGNATURE)
    assert [p.name for p in tmp_path.iterdir()] == ["timeline.png"]  # no temporary left
    out = proc.stdout
    assert "2 stages × 4 micro-batches, schedule gpipe" in out
    assert "tick model 0.200 = (K-1)/(M+K-1) = 1/5" in out
    assert "bubble: measured 0." in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1] in ("0", "1")]
    assert [r[:2] for r in rows] == [["0", "0-3"], ["1", "4-7"]]
    # GPipe holds all 4 micro-batches: stage 0 keeps, per micro-batch of 16 rows, the
    # input, each Tanh's output (3, after the first 3 of its 4 Linears: tanh's rule and the
    # next Linear's read it) and its output (held for backward). No rule reads a Linear's
    # output before a Tanh, so those are not kept.
    assert float(rows[0][3]) == 4 * (1 + 3 + 1) * 16 * 32 * 4 / 1024


def test_a_model_too_big_for_one_process_fails_cleanly_and_trains_on_two(tmp_path: Path) -> None:
    one = tmp_path / "one"
    one.mkdir()
    proc = pipeline(["--stages", "1", *BIG], one)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("chainrule pipeline: error: stage 0 of 1 is out of memory")
    assert "exceed the cap of 192 MiB per process" in lines[0]
    assert "use more stages (--stages 2)" in lines[0]
    assert list(one.iterdir()) == []  # nothing written
    two = tmp_path / "two"
    two.mkdir()
    proc = pipeline(["--stages", "2", *BIG], two)
    assert proc.returncode == 0, proc.stderr
    assert (two / "timeline.png").read_bytes().startswith(PNG_SIGNATURE)
    mib = [int(line.split()[-2]) for line in proc.stdout.splitlines() if line.endswith(" MiB")]
    assert len(mib) == 2 and all(m < 192 for m in mib)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "10", "--microbatches", "4"], "--batch 10 cannot be cut into"),
        (["--stages", "3", "--layers", "2"], "--stages 3 needs at least as many layers"),
        (["--stages", "0"], "argument --stages: expected a positive integer, got '0'"),
        (["--schedule", "zb"], "argument --schedule: invalid choice: 'zb'"),
        (["--memory-cap", "-5"], "argument --memory-cap: expected a positive number of MiB"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    try:
        code = main(["pipeline", *args, "--out", str(tmp_path)])
    except SystemExit as exc:  # argparse's own errors exit
        code = exc.code  # type: ignore[assignment]
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err
    assert err.startswith("chainrule pipeline: error: ")
    assert list(tmp_path.iterdir()) == []


def test_missing_out_folder_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["pipeline", "--out", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule pipeline: error: --out ") and "no such directory" in err


def test_started_under_mpiexec_it_runs_as_the_ranks_and_checks_the_world_size(
    tmp_path: Path,
) -> None:
    from chainrule.distributed.pipelining._comm import mpiexec_command

    args = ["pipeline", "--steps", "2", "--width", "16", "--out", str(tmp_path)]
    ok = subprocess.run(mpiexec_command(2, [CHAINRULE, *args, "--stages", "2"]),
                        capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "2 stages × 4 micro-batches" in ok.stdout
    assert (tmp_path / "timeline.png").read_bytes().startswith(PNG_SIGNATURE)
    (tmp_path / "timeline.png").unlink()
    bad = subprocess.run(mpiexec_command(2, [CHAINRULE, *args, "--stages", "3", "--layers", "3"]),
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode != 0
    assert "--stages 3 needs 3 ranks, but mpiexec started 2" in bad.stderr
    assert list(tmp_path.iterdir()) == []
