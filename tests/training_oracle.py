"""An independent check of a saved model: its forward pass in plain NumPy from the file.

Reads ``model.safetensors`` with ``safetensors.numpy`` (not ``chainrule.load``), standardises
the raw data
with the recorded mean and std, and runs ``relu(x W₀ᵀ + b₀) ... W_Kᵀ + b_K`` by hand, so
the accuracy it gives does not go through chainrule's engine, ``evaluate`` or the metrics
file that it is compared with.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from chainrule.data import load_dataset


def read_model_file(path: Path) -> tuple[dict[str, np.ndarray], dict]:  # type: ignore[type-arg]
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
        header = json.loads(f.metadata()["chainrule"])
    return arrays, header["metadata"]


def numpy_accuracy(path: Path, split: str = "test") -> float:
    """Accuracy of the ReLU MLP in ``path`` on its data set's split, in float64 NumPy."""
    weights, meta = read_model_file(path)
    assert meta["architecture"]["activation"] == "relu"
    seed = meta["config"]["seed"]
    raw = load_dataset(meta["dataset"], seed=seed, standardize=False, dtype="float64")
    x, y = (raw.x_test, raw.y_test) if split == "test" else (raw.x_train, raw.y_train)
    std = meta["standardize"]
    h = (x - np.array(std["mean"])) / np.array(std["std"])
    n_layers = len(meta["architecture"]["hidden"]) + 1
    # Linear layers sit at even positions of the Sequential (odd ones are ReLU/Dropout).
    linear = sorted({int(k.split(".")[1]) for k in weights}, key=int)
    assert len(linear) == n_layers
    for i, k in enumerate(linear):
        h = h @ weights[f"layers.{k}.weight"].astype(np.float64).T
        h = h + weights[f"layers.{k}.bias"]
        if i < n_layers - 1:
            h = np.maximum(h, 0.0)
    return float(np.mean(h.argmax(axis=1) == y))


def metrics_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))
