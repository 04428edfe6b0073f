"""``chainrule demo``: the README's main job, run as a user runs it (twice in a row)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli_train import run_cli

# The console script of the environment running the tests (a venv's bin/ or Scripts/).
CONSOLE_SCRIPT = Path(sys.executable).parent / "chainrule"


def test_demo_prints_metrics_and_pictures_and_runs_twice(tmp_path: Path) -> None:
    folders = []
    for _ in range(2):
        done = subprocess.run(
            [str(CONSOLE_SCRIPT), "demo"], cwd=tmp_path, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        out = done.stdout
        for name in ("moons", "digits"):
            row = re.search(rf"│ {name} .*│\s+([\d.]+)%\s+│\s+([\d.]+)%\s+│", out)
            assert row is not None, out
            assert float(row.group(2)) >= (100.0 if name == "moons" else 97.0)
        pictures = [Path(line.strip()) for line in out.splitlines() if line.endswith(".png")]
        names = sorted(f"{p.parent.name}/{p.name}" for p in pictures)
        assert names == ["digits/curves.png", "moons/curves.png", "moons/decision_boundary.png"]
        for p in pictures:
            assert (tmp_path / p).read_bytes()[:4] == b"\x89PNG"
        folders.append(pictures[0].parent.parent)
    assert folders[0] != folders[1]
    assert all(str(f).startswith("runs/demo-") for f in folders)


def test_the_scalar_engine_demo_is_still_there(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "demo", "--engine", "scalar", "--steps", "2")
    assert code == 0
    assert "MLP of [Layer of [ReLUNeuron(2)" in out and "step   1" in out


def test_steps_belong_to_the_scalar_demo(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "demo", "--steps", "5")
    assert code == 2 and "--steps applies to --engine scalar only" in err
    code, _, err = run_cli(capsys, "demo", "--engine", "scalar", "--steps", "0")
    assert code == 2 and "--steps must be a positive integer" in err


def test_the_demo_refuses_an_existing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "demo", "--out", str(tmp_path))
    assert code == 2 and "already exists" in err
    assert list(tmp_path.iterdir()) == []
