"""``chainrule backprop``: tables, the documented JSON keys, and one-line usage errors."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.lecture import matrix

# The console script of the environment running the tests (a venv's bin/ or Scripts/).
CONSOLE_SCRIPT = Path(sys.executable).parent / "chainrule"
TOP_KEYS = {
    "config", "loss", "gradient_scale", "layers", "max_engine_rel", "max_fd_rel",
    "tolerance", "flops", "memory", "ok", "verdict",
}  # fmt: skip
LAYER_KEYS = {
    "k", "f_shape", "h_shape", "dl_df_shape", "dl_domega_shape", "dl_dbeta_shape",
    "engine_max_abs", "engine_rel", "fd_max_abs", "fd_rel", "fd_checked", "fd_total",
    "fd_kinks",
}  # fmt: skip
PHASE_KEYS = {"matmul", "matmul_count", "other", "total"}
MEMORY_KEYS = {
    "predicted_bytes", "predicted_arrays", "engine_saved_bytes", "activation_bytes",
    "extra_bytes", "extras", "leaf_bytes", "input_bytes",
}  # fmt: skip


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["backprop", *argv])
    except SystemExit as exc:  # argparse's errors exit from inside parse_args
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def matmul_flops(sizes: list[int], batch: int) -> tuple[int, int]:
    """Forward and backward matrix-product FLOPs, from the layer sizes alone."""
    pairs = list(itertools.pairwise(sizes))
    forward = sum(2 * a * b * batch for a, b in pairs)
    backward = 2 * forward - 2 * sizes[0] * sizes[1] * batch  # no ∂ℓ/∂x
    return forward, backward


def test_default_tables_show_every_layer_the_cost_and_the_verdict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys)
    assert code == 0 and err == ""
    assert "Per layer" in out and "FLOPs" in out and "Memory kept for the backward pass" in out
    assert "…" not in out  # rich's ellipsis would mean a cut cell
    rows = [line for line in out.splitlines() if line.startswith("│ ") and "×" in line]
    assert [r.split("│")[1].strip() for r in rows[:6]] == ["0", "1", "2", "3", "4", "5"]
    assert "x 1×1" in rows[0] and "6×6" in rows[1] and "1×6" in rows[5]  # h_0 = x, Ω_1, Ω_5
    forward, backward = matmul_flops([1, 6, 6, 6, 6, 6, 1], 1)
    assert (forward, backward) == (312, 612)
    assert f"{backward:,} / {forward:,} = {backward / forward:.3f}" in out
    # The lecture's 11 arrays f_0..f_5, h_1..h_5: 5·6 + 1 + 5·6 float64 = 488 bytes; the
    # engine keeps h_1..h_5 (240 bytes) and the loss's f_K − y (8): 248.
    assert "488" in out and "248" in out and "240" in out
    assert "f_K − y" in out
    assert out.rstrip().splitlines()[-1].startswith("backprop checks out")


def test_json_carries_the_documented_keys_and_independent_numbers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--json", "--layers", "3", "--width", "4", "--inputs", "2", "--outputs", "3"]
    code, out, err = run_cli(capsys, *argv, "--batch", "5", "--loss", "cross-entropy")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert set(data) == TOP_KEYS
    assert data["config"] == {
        "layers": 3, "width": 4, "inputs": 2, "outputs": 3, "batch": 5, "seed": 0,
        "loss": "cross-entropy",
    }  # fmt: skip
    assert [set(layer) for layer in data["layers"]] == [LAYER_KEYS] * 4
    assert [layer["f_shape"] for layer in data["layers"]] == [[4, 5]] * 3 + [[3, 5]]
    assert data["layers"][0]["h_shape"] == [2, 5] and data["layers"][3]["dl_domega_shape"] == [3, 4]
    assert data["ok"] is True and data["max_fd_rel"] <= data["tolerance"] == 1e-8
    assert data["max_engine_rel"] == max(layer["engine_rel"] for layer in data["layers"])
    flops = data["flops"]
    assert {"forward", "loss", "backward"} <= set(flops)
    assert all(set(flops[p]) == PHASE_KEYS for p in ("forward", "loss", "backward"))
    forward, backward = matmul_flops([2, 4, 4, 4, 3], 5)
    assert (flops["forward"]["matmul"], flops["backward"]["matmul"]) == (forward, backward)
    assert flops["backward_over_forward_matmul"] == backward / forward
    assert flops["skipped_dl_dx"] == 2 * 2 * 4 * 5
    mem = data["memory"]
    assert set(mem) == MEMORY_KEYS
    predicted = 8 * 5 * (3 * 4 + 3 + 3 * 4)
    assert mem["predicted_bytes"] == predicted
    assert mem["activation_bytes"] == 8 * 5 * (3 * 4 + 3)  # h_1..h_3 and the logits f_3
    assert mem["extras"] == [  # the softmax (classes × batch) and the target positions
        {"op": "cross_entropy", "role": "residual", "shape": [3, 5], "nbytes": 120},
        {"op": "cross_entropy", "role": "residual", "shape": [5], "nbytes": 40},
    ]
    assert (
        mem["engine_saved_bytes"]
        == mem["activation_bytes"] + 160
        == (mem["activation_bytes"] + mem["extra_bytes"])
    )
    assert mem["input_bytes"] == 2 * 5 * 8
    assert data["loss"]["formulas"] == pytest.approx(data["loss"]["engine"], rel=1e-12)
    assert data["verdict"].startswith("backprop checks out")


def test_a_wrong_formula_gives_a_mismatch_verdict_and_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    right = matrix.backward

    def doubled(net: matrix.Network, fp: matrix.ForwardPass, g: np.ndarray) -> matrix.Gradients:
        return right(net, fp, 2 * g)

    monkeypatch.setattr(matrix, "backward", doubled)
    code, out, _ = run_cli(capsys, "--json")
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False and data["verdict"].startswith("MISMATCH")


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--layers", "0"], "--layers"),
        (["--layers", "201"], "at most 200 layers"),  # the check grows as K², see MAX_LAYERS
        (["--layers", "100000"], "--layers 100000"),
        (["--width", "-3"], "--width"),
        (["--inputs", "1.5"], "--inputs"),
        (["--outputs", "0"], "--outputs"),
        (["--batch", "many"], "--batch"),
        (["--seed", "-1"], "--seed"),
        (["--seed", "x"], "--seed"),
        (["--loss", "hinge"], "--loss"),
        (["--loss", "cross-entropy"], "--outputs"),  # the default --outputs 1
        (["--loss", "cross-entropy", "--outputs", "1", "--json"], "--outputs"),
        (["--width", "100000"], "--width"),
        (["--batch", "10000000"], "--batch"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_naming_the_flag(
    capsys: pytest.CaptureFixture[str], argv: list[str], flag: str
) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("chainrule backprop: error: ")
    assert flag in err, err


def test_console_script_runs_backprop_as_a_subprocess() -> None:
    proc = subprocess.run(
        [str(CONSOLE_SCRIPT), "backprop", "--json", "--layers", "2", "--batch", "3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == TOP_KEYS and len(data["layers"]) == 3 and data["ok"] is True
