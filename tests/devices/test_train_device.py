"""``chainrule train --device`` and the training loop on a device.

Without CuPy (or a GPU) ``--device cuda`` is one line naming the extra, status 2, nothing
written. On the stand-in GPU the loop moves every batch to the model's device; training
there computes on array-api-strict arrays, so those tests wait for the engine's backend.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main
from chainrule.data import load_dataset
from chainrule.tensor import device as devices
from chainrule.training import build_model, default_config, evaluate, fit
from tests.devices.stand_in import ENGINE_ON_ARRAY_API, NEEDS_BACKEND

needs_backend = pytest.mark.skipif(not ENGINE_ON_ARRAY_API, reason=NEEDS_BACKEND)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's errors exit from inside parse_args
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_cupy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "_cupy", lambda: None)


def test_device_cuda_without_cupy_is_one_line_naming_the_extra(
    no_cupy: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "train", "--dataset", "moons", "--device", "cuda",
                                "--out", str(out))  # fmt: skip
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and "pip install 'chainrule[cuda]'" in err
    assert "--device cpu" in err and "'cuda' is not available" in err
    assert not out.exists()


@pytest.mark.parametrize("text", ["gpu", "cuda:", "cuda:x", "cpu:0", "CUDA"])
def test_a_malformed_device_is_refused_by_the_parser(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "train", "--dataset", "moons", "--device", text)
    assert code == 2 and "expected cpu, cuda or cuda:N" in err


@pytest.mark.parametrize("extra", [["--nproc", "2"], ["--compile"]])
def test_a_gpu_run_refuses_options_that_run_numpy_programs(
    gpu: Any, extra: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "train", "--dataset", "moons", "--device", "cuda",
                           "--out", str(tmp_path / "r"), *extra)  # fmt: skip
    assert code == 2 and "--device cuda trains in one process" in err
    assert not (tmp_path / "r").exists()


def test_the_run_records_its_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--dataset", "moons", "--epochs", "1", "--hidden",
                           "8", "--no-plots", "--out", str(out))  # fmt: skip
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["device"] == "cpu"


def test_fit_refuses_compile_and_process_groups_on_a_device(gpu: Any) -> None:
    splits = load_dataset("moons")
    config = default_config("moons", epochs=1, hidden=(8,))
    model = build_model(config, splits.info).to("cuda")
    with pytest.raises(ValueError, match=r"the model is on cuda:0; compile=True"):
        fit(model, splits, config, compile=True)


@needs_backend
def test_training_on_the_stand_in_gpu_gives_the_cpus_numbers(two_gpus: Any) -> None:
    # array-api-strict computes with NumPy underneath: the same operations, the same numbers.
    splits = load_dataset("moons")
    config = default_config("moons", epochs=2, hidden=(16, 16))
    host = fit(build_model(config, splits.info), splits, config)
    model = build_model(config, splits.info).to("cuda:1")
    seen: list[Any] = []
    original = model.forward

    def forward(x: Any) -> Any:
        seen.append(x.device)
        return original(x)

    model.forward = forward  # type: ignore[method-assign]
    on_gpu = fit(model, splits, config)
    assert set(seen) == {cr.device("cuda", 1)}  # every batch reached the model's device
    assert model.layers[0].weight.device == "cuda:1"
    for a, b in zip(host, on_gpu, strict=True):
        assert np.isclose(a.train_loss, b.train_loss, rtol=1e-5)
        assert a.test_acc == b.test_acc
    assert evaluate(model, splits.x_test, splits.y_test).accuracy == on_gpu[-1].test_acc


@needs_backend
def test_chainrule_train_device_cuda_writes_a_host_model_file(
    two_gpus: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--dataset", "moons", "--epochs", "2", "--hidden",
                           "8", "--device", "cuda:1", "--out", str(out))  # fmt: skip
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["device"] == "cuda:1"
    ckpt = cr.load(out / "model.safetensors")
    assert all(type(v) is np.ndarray for v in ckpt.values())
    assert (out / "decision_boundary.png").exists()  # drawn from the GPU model
