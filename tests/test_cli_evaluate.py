"""``chainrule evaluate``: accuracy and confusion matrix of a run's model; refusals."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule
from chainrule.cli import main
from chainrule.data import load_dataset
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


def _edited(digits_run: Path, tmp_path: Path, edit: Any, name: str = "edited") -> str:
    """The run's model file with its metadata changed by ``edit(meta)`` (weights as saved)."""
    ckpt = chainrule.load(digits_run / "model.safetensors")
    meta = copy.deepcopy(ckpt.metadata)
    arrays = dict(ckpt)
    edit(meta, arrays)
    path = tmp_path / f"{name}.safetensors"
    chainrule.save(arrays, path, meta)
    return str(path)


EDITS: dict[str, tuple[Any, str]] = {
    "no dataset": (lambda m, a: m.pop("dataset"), "dataset None is not a built-in data set"),
    "cifar": (lambda m, a: m.update(dataset="cifar"), "dataset 'cifar' is not a built-in"),
    "no config": (lambda m, a: m.pop("config"), "config.seed None is not an integer"),
    "float seed": (lambda m, a: m["config"].update(seed=1.5), "config.seed 1.5 is not an"),
    "no class names": (lambda m, a: m.pop("class_names"), "class_names None is not a list"),
    "no standardize": (lambda m, a: m.pop("standardize"), "standardize must hold a mean"),
    "short std": (lambda m, a: m["standardize"].update(std=[1.0]), "positive std of 64"),
    "no epochs": (lambda m, a: m.pop("epochs_completed"), "epochs_completed None is not"),
    "huge net": (
        lambda m, a: m["architecture"].update(hidden=[20_000, 20_000]),
        "describes layers 64-20000-20000-10",
    ),
    "bool size": (lambda m, a: m["architecture"].update(in_features=True), "not positive"),
    "a tensor more": (lambda m, a: a.update(extra=np.zeros(1)), "the file holds 5 tensors"),
}


@pytest.mark.parametrize("case", sorted(EDITS))
def test_an_edited_or_foreign_model_file_is_refused_in_one_line_before_building(
    digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    edit, message = EDITS[case]
    path = _edited(digits_run, tmp_path, edit)
    code, out, err = run_cli(capsys, "evaluate", "--model", path)
    assert code == 2 and out == "", err
    assert err.startswith("chainrule evaluate: error: --model: ") and err.count("\n") == 1, err
    assert message in err, err


def test_seeds_out_of_range_are_refused_in_one_line(
    digits_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(digits_run / "model.safetensors")
    for seed in (str(2**70), "-1", "x"):
        code, out, err = run_cli(capsys, "evaluate", "--model", model, "--seed", seed)
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert "expected an integer in [0, 2**32)" in err, err
    for seed in (-1, 2**70, True):
        with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\)"):
            load_dataset("moons", seed=seed)


def test_nan_weights_are_reported_with_a_non_zero_status(
    digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def poison(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        arrays["layers.0.weight"] = arrays["layers.0.weight"].copy()
        arrays["layers.0.weight"][0, 0] = np.nan

    path = _edited(digits_run, tmp_path, poison)
    code, out, err = run_cli(capsys, "evaluate", "--model", path)
    assert code == 1 and "accuracy" in out, err
    assert "warning" in err and "holds 1 non-finite weights" in err and err.count("\n") == 1
