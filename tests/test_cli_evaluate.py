"""``chainrule evaluate``: accuracy and confusion matrix of a run's model; refusals."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import chainrule
from chainrule.cli import main
from tests.test_cli_train import run_cli
from tests.training_oracle import metrics_rows, numpy_accuracy


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "digits"
    code = main(["train", "--dataset", "digits", "--epochs", "2", "--hidden", "32",
                 "--seed", "3", "--no-plots", "--out", str(out)])  # fmt: skip
    assert code == 0
    return out


def _matrix(stdout: str, n: int) -> np.ndarray:
    """The counts of the confusion-matrix table ('·' is 0)."""
    rows = []
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == n + 2 and cells[0].isdigit():
            rows.append([0 if c == "·" else int(c) for c in cells[1 : n + 1]])
    return np.array(rows)


def test_evaluate_reports_the_accuracy_the_run_recorded(
    digits_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "evaluate", "--model", str(digits_run / "model.safetensors"))
    assert code == 0 and err == ""
    recorded = float(metrics_rows(digits_run)[-1]["test_acc"])
    assert recorded == numpy_accuracy(digits_run / "model.safetensors")
    assert f"accuracy {100 * recorded:.2f}%" in out
    assert "digits, test split (seed 3), 449 samples" in out
    matrix = _matrix(out, 10)
    assert matrix.shape == (10, 10) and matrix.sum() == 449
    assert matrix.trace() == round(recorded * 449)
    correct, n = map(int, re.search(r"\((\d+)/(\d+)\)", out).groups())  # type: ignore[union-attr]
    assert (correct, n) == (matrix.trace(), 449)


def test_the_training_split_can_be_evaluated_too(
    digits_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "evaluate", "--model", str(digits_run / "model.safetensors"),
                           "--split", "train")  # fmt: skip
    assert code == 0
    train_acc = float(metrics_rows(digits_run)[-1]["train_acc"])
    assert f"accuracy {100 * train_acc:.2f}%" in out and "1,348 samples" in out


def test_a_model_that_does_not_fit_the_data_or_the_file_is_refused_in_one_line(
    digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(digits_run / "model.safetensors")
    plain = tmp_path / "plain.npz"
    chainrule.save({"w": np.ones(3)}, plain)
    (tmp_path / "notes.txt").write_text("hello")
    cases = [
        (["--model", model, "--dataset", "mnist1d"],
         "takes 64 features and predicts 10 classes (trained on digits), but mnist1d has 40"),
        (["--model", str(tmp_path / "missing.npz")], "no such file"),
        (["--model", str(tmp_path)], "is a folder"),
        (["--model", str(tmp_path / "notes.txt")], "cannot read"),
        (["--model", str(plain)], "not one written by 'chainrule train'"),
        (["--model", model, "--dataset", "imagenet"], "invalid choice: 'imagenet'"),
    ]  # fmt: skip
    for args, message in cases:
        code, out, err = run_cli(capsys, "evaluate", *args)
        assert code == 2, args
        assert err.startswith("chainrule evaluate: error: ") and err.count("\n") == 1, err
        assert message in err, err
        assert out == ""
