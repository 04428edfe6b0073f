"""``chainrule memory`` and ``chainrule.lecture.memory``: the picture, the table, the errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.lecture.memory import STRATEGIES, memory_profile, predicted_bytes

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["memory", *argv])
    except SystemExit as exc:  # argparse's errors exit from inside parse_args
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_profile_shapes_of_the_curves() -> None:
    layers, width, batch = 6, 16, 256
    profile = memory_profile(layers, width, batch, repeats=1)
    assert [r.name for r in profile.runs] == list(STRATEGIES)
    act = batch * width * 8
    assert profile.predicted_bytes == 2 * layers * act + batch * 8
    runs = {r.name: r for r in profile.runs}
    plain = runs["none"]
    # Without checkpointing: 2K+1 forward ops, then each op's gradient, then the end.
    phases = [e.phase for e in plain.events]
    assert phases == ["forward"] * 13 + ["backward"] * 13 + ["end"]
    assert plain.extra_forward_flops == 0
    # The peak is at the loss: the h_k (no rule reads the f_k, ReLU's reads its mask from
    # h_k), about half the lecture's prediction, plus small temporaries.
    top = max(range(len(plain.events)), key=lambda i: plain.events[i].bytes)
    assert 12 <= top <= 15  # the last forward op or the first backward ones
    assert layers * act <= plain.peak_bytes <= layers * act + 4 * act < profile.predicted_bytes
    for name in ("sqrt", "every layer", "planner", "log"):
        r = runs[name]
        if name in ("sqrt", "planner"):
            assert r.peak_bytes < plain.peak_bytes, name
        else:
            # Every layer keeps each block's output h_k as a boundary: what the plain run
            # keeps already (no rule reads f_k), so it saves nothing, it only recomputes;
            # the log mode's O(log n) boundaries save nothing at 6 layers either.
            assert r.peak_bytes <= plain.peak_bytes + 4 * act, name
        assert "recompute" in {e.phase for e in r.events}
        assert r.extra_forward_flops > 0
    # Every layer: each Linear and ReLU but the last segment's (the final Linear) again.
    assert (
        runs["every layer"].extra_forward_flops == plain.forward_flops - 2 * batch * width - batch
    )


def test_predicted_bytes_is_the_sum_of_f_and_h() -> None:
    assert predicted_bytes(2, 3, 4) == 8 * 4 * (3 + 3 + 3 + 3 + 1)


def test_cli_writes_png_and_prints_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    png = tmp_path / "mem.png"
    code, out, err = run_cli(capsys, "--layers", "4", "--width", "8", "--batch", "64",
                             "--repeats", "1", "--png", str(png))  # fmt: skip
    assert code == 0 and err == ""
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert list(tmp_path.iterdir()) == [png]  # no temporary file left behind
    for name in STRATEGIES:
        assert f"│ {name}" in out
    assert "peak bytes" in out and "extra forward FLOPs" in out and "step time" in out
    assert "…" not in out


def test_cli_budget_too_small_is_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    png = tmp_path / "mem.png"
    code, out, err = run_cli(capsys, "--layers", "4", "--width", "8", "--batch", "64",
                             "--budget", "100", "--png", str(png))  # fmt: skip
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert "smallest feasible budget is" in err and "--budget 100" in err
    assert not png.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--png", "x.svg"], "does not end in .png"),
        (["--png", "missing-dir/x.png"], "does not exist"),
        (["--layers", "0"], "expected a positive integer"),
        (["--layers", "5000", "--batch", "5000"], "at most 20,000,000"),
    ],
)
def test_cli_bad_arguments(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1


def test_console_script_runs(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "chainrule"
    png = tmp_path / "m.png"
    done = subprocess.run(
        [str(script), "memory", "--layers", "2", "--width", "4", "--batch", "16",
         "--repeats", "1", "--png", str(png)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "memory"
        in subprocess.run(
            [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    )
    assert png.stat().st_size > 0
    np.testing.assert_equal(png.read_bytes()[:8], np.frombuffer(PNG_MAGIC, np.uint8).tobytes())
