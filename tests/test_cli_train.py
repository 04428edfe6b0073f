"""``chainrule train``: the run folder, one-line errors that write nothing, Ctrl-C, display."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import chainrule
from chainrule.cli import main
from chainrule.cli.progress import TrainingDisplay
from chainrule.data.cache import CACHE_ENV
from chainrule.training import EpochMetrics, load_trained
from chainrule.training import loop as loop_module
from chainrule.training import runs as runs_module
from tests.training_oracle import metrics_rows, numpy_accuracy, read_model_file

COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "steps"]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's errors exit from inside parse_args
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_run_folder_holds_config_metrics_model_and_pictures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs" / "moons3"  # parents are created
    argv = ["train", "--dataset", "moons", "--hidden", "16,8", "--epochs", "3",
            "--batch-size", "25", "--optimizer", "sgd", "--lr", "0.2", "--weight-decay",
            "0.001", "--seed", "7", "--out", str(out)]  # fmt: skip
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert err == ""
    assert sorted(os.listdir(out)) == [
        "config.json", "curves.png", "decision_boundary.png", "metrics.csv", "model.safetensors",
    ]  # fmt: skip
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["hidden"] == [16, 8] and config["lr"] == 0.2 and config["seed"] == 7
    assert config["optimizer"] == "sgd" and config["batch_size"] == 25
    rows = metrics_rows(out)
    assert list(rows[0]) == COLUMNS
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [int(r["steps"]) for r in rows] == [15] * 3  # 375 training points / 25
    # The file's accuracy is what a plain NumPy forward pass of the saved weights gives.
    assert float(rows[-1]["test_acc"]) == numpy_accuracy(out / "model.safetensors")
    assert float(rows[-1]["train_acc"]) == numpy_accuracy(out / "model.safetensors", "train")
    _, meta = read_model_file(out / "model.safetensors")
    assert meta["architecture"] == {
        "in_features": 2, "hidden": [16, 8], "out_features": 2, "activation": "relu",
        "dropout": 0.0, "dtype": "float32",
    }  # fmt: skip
    assert meta["class_names"] == ["upper", "lower"] and len(meta["standardize"]["mean"]) == 2
    for png in ("curves.png", "decision_boundary.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
        assert f"picture: {out / png}" in stdout
    assert "train loss" in stdout and "steps/s" in stdout and "3/3" in stdout
    assert f"test accuracy {100 * float(rows[-1]['test_acc']):.2f}%" in stdout


def test_data_with_more_than_two_features_gets_no_decision_boundary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d"
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--epochs", "1",
                           "--hidden", "32", "--out", str(out))  # fmt: skip
    assert code == 0, err
    assert not (out / "decision_boundary.png").exists() and (out / "curves.png").exists()


def test_the_default_folder_is_new_on_every_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--dataset", "circles", "--epochs", "1", "--no-plots"]
    assert run_cli(capsys, *argv)[0] == 0
    assert run_cli(capsys, *argv)[0] == 0
    folders = sorted(os.listdir(tmp_path / "runs"))
    assert len(folders) == 2 and all(f.startswith("circles-") for f in folders)


BAD_ARGS = [
    (["--dataset", "mnist"], "invalid choice: 'mnist'"),
    (
        ["--dataset", "moons", "--lr", "-0.1"],
        "--lr: expected a positive number below 1e+300, got '-0.1'",
    ),
    (["--dataset", "moons", "--lr", "0"], "--lr: expected a positive number"),
    (["--dataset", "moons", "--lr", "inf"], "--lr: expected a positive number"),
    (["--dataset", "moons", "--lr", "1e308"], "--lr: expected a positive number below 1e+300"),
    (["--dataset", "moons", "--batch-size", "0"], "--batch-size: expected a positive integer"),
    (["--dataset", "moons", "--epochs", "-3"], "--epochs: expected a positive integer"),
    (["--dataset", "moons", "--epochs", "2.5"], "--epochs: expected a positive integer"),
    (["--dataset", "moons", "--hidden", "128,,128"], "--hidden: expected comma-separated"),
    (["--dataset", "moons", "--hidden", "64,-1"], "--hidden: expected comma-separated"),
    (["--dataset", "moons", "--hidden", "wide"], "--hidden: expected comma-separated"),
    (["--dataset", "moons", "--weight-decay", "-1"], "--weight-decay: expected a number >= 0"),
    (["--dataset", "moons", "--dropout", "1"], "--dropout: expected a probability in [0, 1)"),
    (["--dataset", "moons", "--optimizer", "rmsprop"], "--optimizer: invalid choice"),
    (["--dataset", "moons", "--hidden", "100000,100000"], "10,000,600,002 parameters"),
]


@pytest.mark.parametrize("args,message", BAD_ARGS)
def test_bad_input_gets_one_line_and_status_2_and_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "train", *args, "--out", str(tmp_path / "run"))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("chainrule train: error: ")
    assert message in err
    assert out == "" and files_under(tmp_path) == []


def test_an_existing_or_unwritable_output_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "keep.txt").write_text("mine")
    (tmp_path / "a-file").write_text("not a folder")
    before = files_under(tmp_path)
    base = ["train", "--dataset", "moons", "--epochs", "1", "--out"]
    code, _, err = run_cli(capsys, *base, str(tmp_path / "old"))
    assert code == 2 and "already exists" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, *base, str(tmp_path / "a-file" / "run"))
    assert code == 2 and "is a file, not a folder" in err
    # A folder the OS refuses to create (permissions, a full disk): nothing is left behind,
    # not even the parents created on the way.
    real_mkdir = Path.mkdir

    def refuse(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.name == "run":
            raise PermissionError(13, "Permission denied", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    code, _, err = run_cli(capsys, *base, str(tmp_path / "new" / "deeper" / "run"))
    assert code == 2 and "cannot create the run folder" in err and "Permission denied" in err
    assert err.count("\n") == 1
    assert files_under(tmp_path) == before


def _interrupt_in_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    real = loop_module._train_epoch

    def train_epoch(model: Any, loader: Any, optimizer: Any, e: int, reporter: Any) -> int:
        if e == epoch:
            raise KeyboardInterrupt
        return real(model, loader, optimizer, e, reporter)

    monkeypatch.setattr(loop_module, "_train_epoch", train_epoch)


def test_ctrl_c_keeps_the_last_finished_epoch_and_exits_130(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _interrupt_in_epoch(monkeypatch, 3)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--epochs", "5",
                           "--hidden", "32", "--out", str(out))  # fmt: skip
    assert code == 130
    assert err.count("\n") == 1
    assert "interrupted during epoch 3" in err and "of epoch 2/5" in err
    assert sorted(os.listdir(out)) == ["config.json", "metrics.csv", "model.safetensors"]
    rows = metrics_rows(out)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert load_trained(out / "model.safetensors").metadata["epochs_completed"] == 2
    # The model file holds the weights of epoch 2: its accuracy is the one recorded then.
    assert numpy_accuracy(out / "model.safetensors") == float(rows[1]["test_acc"])
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


def test_ctrl_c_in_the_first_epoch_removes_the_new_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _interrupt_in_epoch(monkeypatch, 1)
    code, _, err = run_cli(capsys, "train", "--dataset", "moons", "--out", str(tmp_path / "r"))
    assert code == 130 and "no epoch finished" in err and err.count("\n") == 1
    assert files_under(tmp_path) == []


def test_ctrl_c_while_an_epoch_is_being_saved_still_leaves_that_epoch_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save, calls = runs_module.save, []

    def save(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2:  # epoch 2: metrics.csv written, model.safetensors not yet
            raise KeyboardInterrupt
        real_save(*args, **kwargs)

    monkeypatch.setattr(runs_module, "save", save)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--dataset", "moons", "--epochs", "4",
                           "--out", str(out))  # fmt: skip
    assert code == 130 and "of epoch 2/4" in err
    assert len(metrics_rows(out)) == 2
    assert load_trained(out / "model.safetensors").metadata["epochs_completed"] == 2


def test_a_diverging_run_stops_with_status_1_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "train", "--dataset", "moons", "--optimizer", "sgd",
                           "--lr", "1e9", "--out", str(tmp_path / "r"))  # fmt: skip
    assert code == 1 and err.count("\n") == 1
    assert "too high" in err and "RuntimeWarning" not in err


def test_the_live_display_shows_loss_accuracy_and_steps_per_second() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    written: list[int] = []
    with TrainingDisplay(console, 2, lambda m: written.append(m.epoch)) as display:
        for epoch in (1, 2):
            display.on_epoch_start(epoch, 4, 0.1)
            for step in range(1, 5):
                display.on_batch(epoch, step, 0.5 / step, 3 * step, 4 * step)
            display.on_epoch_end(EpochMetrics(epoch, 0.25, 0.9, 0.3, 0.875, 0.1, 0.002, 4))
    text = buffer.getvalue()
    assert "epoch 2/2" in text and "loss 0.1250" in text and "acc 75.0%" in text
    assert "steps/s" in text and "87.50%" in text and "2,000" in text  # 4 steps in 2 ms
    assert written == [1, 2]


def test_the_model_file_is_a_chainrule_model_file(tmp_path: Path) -> None:
    code = main(["train", "--dataset", "circles", "--epochs", "1", "--no-plots", "--out",
                 str(tmp_path / "c")])  # fmt: skip
    assert code == 0
    ckpt = chainrule.load(tmp_path / "c" / "model.safetensors")
    assert ckpt.metadata["dataset"] == "circles" and "layers.0.weight" in ckpt


def test_a_write_failure_mid_training_is_one_line_with_status_1_and_what_was_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save, calls = runs_module.save, []

    def save(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 3:  # the run folder became unwritable during epoch 3
            raise PermissionError(errno.EACCES, "Permission denied", str(args[1]))
        real_save(*args, **kwargs)

    monkeypatch.setattr(runs_module, "save", save)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--dataset", "moons", "--epochs", "5",
                           "--out", str(out))  # fmt: skip
    assert code == 1 and err.count("\n") == 1, err
    assert "cannot write the run folder: Permission denied" in err
    assert "model.safetensors of epoch 2/5" in err and "Traceback" not in err
    assert load_trained(out / "model.safetensors").metadata["epochs_completed"] == 2


def test_a_rejected_run_writes_no_data_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    code, _, err = run_cli(capsys, "train", "--dataset", "mnist1d", "--hidden", "9000,9000",
                           "--out", str(tmp_path / "run"))  # fmt: skip
    assert code == 2 and "parameters" in err
    assert files_under(tmp_path) == []


def test_ctrl_c_while_loading_data_is_one_line_with_status_130(tmp_path: Path) -> None:
    # A fresh cache: generating MNIST-1D takes seconds, so the signal lands while the
    # command is importing and loading (or, on a fast machine, early in training).
    env = {**os.environ, CACHE_ENV: str(tmp_path / "cache")}
    # "ready" once `import chainrule` is done: from there on, main() handles Ctrl-C.
    script = ("import sys, chainrule.cli; print('ready', flush=True); "
              "sys.exit(chainrule.cli.main(sys.argv[1:]))")  # fmt: skip
    run = subprocess.Popen(
        [sys.executable, "-c", script, "train", "--dataset", "mnist1d", "--no-plots",
         "--out", str(tmp_path / "run")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert run.stdout is not None and run.stdout.readline().strip() == "ready"
    time.sleep(0.5)  # importing scikit-learn and mnist1d, generating the data
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert err.count("\n") == 1 and "interrupted" in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists() or "kept" in err
    cache = tmp_path / "cache"
    left = [p.name for p in cache.iterdir()] if cache.exists() else []
    assert not [name for name in left if name.endswith(".tmp")]  # no half-written cache
