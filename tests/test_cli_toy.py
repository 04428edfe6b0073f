"""``chainrule toy``: tables, JSON, graph pictures and one-line usage errors."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chainrule.cli import main
from chainrule.lecture import toy_network
from chainrule.lecture.toy import PARAMETERS

# The console script of the environment running the tests (a venv's bin/ or Scripts/).
CONSOLE_SCRIPT = Path(sys.executable).parent / "chainrule"
FORWARD_KEYS = ["f0", "h1", "f1", "h2", "f2", "h3", "f3", "loss"]
BACKWARD_KEYS = ["dl_df3", "dl_dh3", "dl_df2", "dl_dh2", "dl_df1", "dl_dh1", "dl_df0"]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["toy", *argv])
    except SystemExit as exc:  # argparse's errors exit from inside parse_args
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_tables_show_the_lectures_symbols_and_hand_worked_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys)
    assert code == 0 and err == ""
    for title in ("Forward pass", "Backward pass", "Parameter gradients three ways"):
        assert title in out
    symbols = ["f₀", "h₁", "f₃", "ℓ", "∂ℓ/∂f₃", "∂ℓ/∂h₃", "∂ℓ/∂f₀", "β₀", "β₃", "ω₀", "ω₃"]
    symbols += ["relu[f₀]", "𝕀[f₂ > 0]·∂ℓ/∂h₃", "h₁·∂ℓ/∂f₁"]  # brackets survive rich markup
    for symbol in symbols:
        assert symbol in out, symbol
    # By hand: ℓ = (0.4 + 3·0.016 − 2)² = 2.408704, ∂ℓ/∂ω₁ = 1.23·(−18.624) = −22.90752.
    assert "2.4087040000" in out and "-22.9075200000" in out
    assert "largest disagreement" in out


def test_table_rows_are_aligned_and_never_truncated(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--activation", "sin,exp,cos")
    assert code == 0
    assert "…" not in out  # rich's ellipsis would mean a cut number
    rows = [line for line in out.splitlines() if line.startswith("│ ω")]
    assert len(rows) == 4
    assert len({len(r) for r in rows}) == 1
    assert len({tuple(i for i, c in enumerate(r) if c == "│") for r in rows}) == 1
    assert "a₁ = sin, a₂ = exp, a₃ = cos" in out and "(−sin(f₂))·∂ℓ/∂h₃" in out


def test_json_has_the_documented_keys_and_full_precision(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--json", "--activation", "sin,exp,cos", "--x", "0.7", "--beta", "0.3,-1,2,0.1"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0 and err == ""
    data = json.loads(out)
    assert list(data["forward"]) == FORWARD_KEYS
    assert list(data["backward"]) == BACKWARD_KEYS
    assert list(data["grads"]) == list(PARAMETERS)
    assert data["inputs"]["activations"] == ["sin", "exp", "cos"]
    r = toy_network(0.7, 2.0, [0.3, -1, 2, 0.1], [0.1, -0.4, 2, 3], "sin,exp,cos")
    # repr floats round-trip exactly: equality, not closeness.
    assert [data["forward"][k] for k in FORWARD_KEYS] == [
        getattr(r.forward, k) for k in FORWARD_KEYS
    ]
    assert [data["backward"][k] for k in BACKWARD_KEYS] == [
        getattr(r.backward, k) for k in BACKWARD_KEYS
    ]
    for p in PARAMETERS:
        g = data["grads"][p]
        assert set(g) == {"formula", "autograd", "finite_difference"}
        assert (g["formula"], g["autograd"], g["finite_difference"]) == (
            r.grads[p].formula, r.grads[p].autograd, r.grads[p].finite_difference,
        )  # fmt: skip
    assert data["max_disagreement"] == r.max_disagreement < 1e-6


def test_json_writes_null_for_values_that_overflowed(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--json", "--x", "0", "--y", "0", "--beta", "2,5,0,0", "--omega", "0,1,1,1"]
    code, out, err = run_cli(capsys, *argv, "--activation", "exp")
    assert code == 1 and "overflowed" in err and err.count("\n") == 1  # said, on stderr
    data = json.loads(out)  # strict JSON: no Infinity or NaN tokens
    assert "Infinity" not in out and "NaN" not in out
    assert data["forward"]["loss"] is None and data["max_disagreement"] is None
    assert math.isfinite(data["forward"]["h2"])


def test_lists_may_start_with_a_minus_sign(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--json", "--beta", "-1,2,-3,4", "--x", "-1e-1")
    assert code == 0, err
    data = json.loads(out)
    assert data["inputs"]["beta"] == [-1.0, 2.0, -3.0, 4.0] and data["inputs"]["x"] == -0.1


@pytest.mark.parametrize(
    ("argv", "flag", "why"),
    [
        (["--beta", "1,2,3"], "--beta", "4 comma-separated numbers"),
        (["--omega", "1,2,3,4,5"], "--omega", "4 comma-separated numbers"),
        (["--omega", "1,2,x,4"], "--omega", "expected a number, got 'x'"),
        (["--x", "abc"], "--x", "expected a number"),
        (["--y", "nan"], "--y", "finite"),
        (["--activation", "softplus"], "--activation", "unknown activation 'softplus'"),
        (["--activation", "sin,cos"], "--activation", "give 1 activation"),
        (["--activation", "sin,exp,cos,tanh"], "--activation", "got 4"),
        (["--graph", "{tmp}/sub/toy.svg"], "--graph", "does not exist"),
        (["--graph", "{tmp}/toy.jpg"], "--graph", ".svg, .png, .pdf"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_naming_the_flag_and_write_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], flag: str, why: str
) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--graph" not in argv:
        argv += ["--graph", str(tmp_path / "toy.svg")]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("chainrule toy: error: ")
    assert flag in err and why in err, err
    assert list(tmp_path.iterdir()) == []


def test_missing_graphviz_is_a_one_line_error_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, out, err = run_cli(capsys, "--graph", str(tmp_path / "toy.svg"))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--graph" in err and "apt-get install graphviz" in err
    assert list(tmp_path.iterdir()) == []


def test_graph_svg_shows_every_node_with_the_lectures_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert shutil.which("dot"), "Graphviz's dot is missing: run scripts/ensure-graphviz"
    path = tmp_path / "toy.svg"
    code, out, _ = run_cli(capsys, "--activation", "sin,exp,cos", "--graph", str(path))
    assert code == 0 and f"written to {path}" in out
    svg = path.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    names = ["x", "y", "f0", "h1", "f1", "h2", "f2", "h3", "f3", "ℓ", "sin", "exp", "cos"]
    names += [f"{s}{k}" for s in "βω" for k in range(4)]
    for name in names:
        assert f">{name}</text>" in svg, name
    # The data and grad of ω0 by hand: ∂ℓ/∂ω0 = x·∂ℓ/∂f0, shown to 4 decimals.
    r = toy_network(activation="sin,exp,cos")
    assert f">grad {r.grads['omega0'].formula:.4f}</text>" in svg


@pytest.mark.parametrize(("suffix", "magic"), [("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_graph_format_follows_the_file_suffix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, suffix: str, magic: bytes
) -> None:
    path = tmp_path / f"toy.{suffix.upper()}"
    code, out, _ = run_cli(capsys, "--json", "--graph", str(path))
    assert code == 0
    json.loads(out)  # --json keeps stdout pure JSON even with --graph
    assert path.read_bytes().startswith(magic)


def test_installed_console_script_prints_json() -> None:
    proc = subprocess.run(
        [str(CONSOLE_SCRIPT), "toy", "--json"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["forward"]["loss"] == pytest.approx(2.408704, rel=1e-12)  # by hand
    assert set(data) >= {"forward", "backward", "grads", "max_disagreement"}


def test_toy_command_does_not_import_rich_until_it_prints_tables() -> None:
    code = "import sys, chainrule.cli.toy, chainrule.lecture; print('rich' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr


def test_graph_replaces_a_symlink_and_never_writes_through_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    link = tmp_path / "toy.svg"
    link.symlink_to(precious)
    code, _, err = run_cli(capsys, "--graph", str(link))
    assert code == 0, err
    assert precious.read_text() == "keep me"
    assert not link.is_symlink() and link.read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt", "toy.svg"]


def test_graph_onto_a_folder_or_an_unwritable_place_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "pictures.svg"
    folder.mkdir()
    code, out, err = run_cli(capsys, "--graph", str(folder))
    assert code == 2 and out == "" and err.count("\n") == 1 and "it is a folder" in err, err

    def refuse(*args: Any, **kwargs: Any) -> int:
        raise PermissionError(13, "Permission denied")

    import chainrule.io.atomic as atomic

    monkeypatch.setattr(atomic.os, "open", refuse)  # a read-only folder (root ignores chmod)
    code, out, err = run_cli(capsys, "--graph", str(tmp_path / "toy.svg"))
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "--graph: cannot write" in err and "Permission denied" in err


def test_values_that_overflow_are_reported_with_status_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(capsys, "--x", "1e308", "--activation", "exp")
    assert code == 1 and err.count("\n") == 1 and "overflowed" in err, err
    code, _, err = run_cli(capsys)  # the control: the default input is fine
    assert code == 0 and err == ""
