"""PyTorch-tutorial-style programs, run with the real torch and with chainrule as torch.

Each program in ``programs/`` is written for ``import torch``. It runs twice in a
subprocess: once as it is (the oracle, PyTorch 2.13 CPU), once with ``chainrule`` bound to
the name ``torch`` (``sys.modules["torch"] = chainrule`` and its submodules) before it
starts. Starting values come from NumPy seeds, so both runs begin from the same numbers;
every number the two print must agree to float32 rounding (accumulated over the loop).
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAMS = sorted((Path(__file__).parent / "programs").glob("*.py"))

AS_CHAINRULE = """
import runpy, sys
import chainrule, chainrule.nn.functional, chainrule.utils.data, chainrule.autograd
sys.modules["torch"] = chainrule
for name, module in list(sys.modules.items()):
    if name.startswith("chainrule."):
        sys.modules["torch." + name[len("chainrule."):]] = module
runpy.run_path(sys.argv[1], run_name="__main__")
"""
AS_TORCH = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"

NUMBER = re.compile(r"-?\d+\.?\d*(?:[eE][-+]?\d+)?")


def _run(code: str, program: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, str(program)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", **_env()},
    )
    assert done.returncode == 0, f"{program.name} failed:\n{done.stderr}"
    return done.stdout


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def _words(text: str) -> list[str]:
    return NUMBER.sub("#", text).split()


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_program_prints_pytorchs_numbers(program: Path) -> None:
    theirs = _run(AS_TORCH, program)
    ours = _run(AS_CHAINRULE, program)
    # The same text around the numbers; a dtype prints as float32 here, torch.float32 there.
    assert _words(ours) == _words(theirs.replace("torch.", "")), (ours, theirs)
    a = [float(v) for v in NUMBER.findall(theirs)]
    b = [float(v) for v in NUMBER.findall(ours)]
    assert len(a) == len(b) and a, (theirs, ours)
    for x, y in zip(a, b, strict=True):
        assert math.isclose(x, y, rel_tol=2e-4, abs_tol=2e-5), (x, y, theirs, ours)
