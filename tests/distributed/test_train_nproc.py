"""``chainrule train --nproc N``: the model of one process, one progress display, one folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from chainrule.training import load_trained, read_metrics

from .mpi_helpers import env

CHAINRULE = [sys.executable, "-m", "chainrule.cli"]


def train(out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    cmd = [*CHAINRULE, "train", "--dataset", "moons", "--no-plots", "--out", str(out), *options]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env())


def test_two_ranks_with_half_the_batch_train_the_model_of_one_process(tmp_path: Path) -> None:
    # moons: 750 training samples, so the last batch of each epoch (750 % 32 = 14 samples)
    # is split unevenly; SGD with momentum and weight decay.
    common = ["--epochs", "3", "--optimizer", "sgd", "--lr", "0.05", "--weight-decay", "0.01"]
    one = train(tmp_path / "one", *common, "--batch-size", "32")
    two = train(tmp_path / "two", *common, "--batch-size", "16", "--nproc", "2")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("run folder:") == 1  # rank 0 alone prints
    a = load_trained(tmp_path / "one" / "model.safetensors").model.state_dict()
    b = load_trained(tmp_path / "two" / "model.safetensors").model.state_dict()
    for name in a:
        assert a[name].dtype == np.float32
        assert np.abs(a[name]).max() > 0.01
        np.testing.assert_allclose(b[name], a[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert json.loads((tmp_path / "two" / "config.json").read_text())["world_size"] == 2
    assert json.loads((tmp_path / "one" / "config.json").read_text())["world_size"] == 1
    m1, m2 = (
        read_metrics(tmp_path / "one" / "metrics.csv"),
        read_metrics(tmp_path / "two" / "metrics.csv"),
    )
    for r1, r2 in zip(m1, m2, strict=True):
        assert abs(r1["test_loss"] - r2["test_loss"]) < 1e-4
        assert r1["steps"] == r2["steps"]


def test_ctrl_c_keeps_the_last_finished_epoch_of_a_multi_rank_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [*CHAINRULE, "train", "--dataset", "moons", "--no-plots", "--out", str(out)]
    cmd += ["--epochs", "100000", "--nproc", "2"]
    p = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(),
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out / "model.safetensors").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (out / "model.safetensors").exists(), "no epoch finished in time"
        time.sleep(0.5)
        os.killpg(p.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
    assert p.returncode == 130
    assert "interrupted: stopped 2 ranks; kept" in err, err
    assert {f.name for f in out.iterdir()} == {"config.json", "metrics.csv", "model.safetensors"}
    rows = read_metrics(out / "metrics.csv")
    assert len(rows) >= 1
    # The model file is the one of the last epoch in metrics.csv, as after a 1-rank Ctrl-C.
    assert load_trained(out / "model.safetensors").metadata["epochs_completed"] == len(rows)


def test_bad_options_are_reported_once_before_any_rank_starts(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    r = train(tmp_path / "taken", "--nproc", "2")
    assert r.returncode == 2
    assert r.stderr.count("chainrule train: error:") == 1
    assert "prterun" not in r.stderr and "mpiexec" not in r.stderr  # no job was started
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
