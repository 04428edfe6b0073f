"""Run folders: what ``chainrule train`` writes, and reading a trained model back.

A run folder holds

- ``config.json``: the ``TrainConfig`` (plus chainrule's version and the start time);
- ``metrics.csv``: one row per finished epoch (``METRIC_COLUMNS``);
- ``model.safetensors``: the weights (``chainrule.save``) with the metadata ``load_trained`` needs:
  architecture, activation, dtype, data set, class names, the training part's mean and
  std (to standardise new inputs the same way) and the last epoch's metrics;
- ``curves.png`` and, for 2-D data, ``decision_boundary.png`` (``chainrule.training.plots``).

``metrics.csv`` and ``model.safetensors`` are rewritten after every epoch, each atomically
(``chainrule.io.atomic_write``): an interrupted run keeps its last finished epoch.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import numpy as np

from chainrule import nn
from chainrule.data import DatasetSplits
from chainrule.io import PathLike, atomic_write, load, save
from chainrule.training.config import TrainConfig
from chainrule.training.loop import EpochMetrics

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
MODEL_FILE = "model.safetensors"
CURVES_FILE = "curves.png"
BOUNDARY_FILE = "decision_boundary.png"
METRIC_COLUMNS = (
    "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "steps",
)  # fmt: skip
MODEL_KIND = "chainrule.training.MLP"


def check_new_run_dir(path: PathLike) -> Path:
    """Check that ``path`` can become a new run folder, without creating anything.

    Raises ``ValueError`` (with the fix) when it exists, or when its nearest existing
    ancestor is not a writable directory.
    """
    target = Path(path)
    if target.exists() or target.is_symlink():
        raise ValueError(
            f"the output folder '{target}' already exists; choose a new --out (runs are never "
            "overwritten) or delete the old one"
        )
    parent = target.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"cannot create '{target}': '{parent}' is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(
            f"cannot create '{target}': the folder '{parent}' is not writable; choose an --out "
            "in a folder you can write to"
        )
    return target


def default_run_dir(dataset: str, root: PathLike = "runs", stamp: float | None = None) -> Path:
    """``runs/<dataset>-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3``... if that name is taken."""
    when = time.strftime("%Y%m%d-%H%M%S", time.localtime(stamp))
    base = Path(root) / f"{dataset}-{when}"
    candidate, k = base, 2
    while candidate.exists():
        candidate = base.with_name(f"{base.name}-{k}")
        k += 1
    return candidate


def _write_text(path: Path, text: str) -> None:
    def write(f: IO[bytes]) -> None:
        f.write(text.encode("utf-8"))

    atomic_write(path, write)


def model_metadata(
    config: TrainConfig, splits: DatasetSplits, model: nn.Module, history: list[EpochMetrics]
) -> dict[str, Any]:
    """What ``load_trained`` and ``chainrule evaluate`` need to rebuild and feed the model."""
    info = splits.info
    dtype = next(iter(model.parameters())).dtype
    return {
        "kind": MODEL_KIND,
        "architecture": {
            "in_features": info.n_features,
            "hidden": list(config.hidden),
            "out_features": info.n_classes,
            "activation": config.activation,
            "dropout": config.dropout,
            "dtype": str(dtype),
        },
        "dataset": info.name,
        "class_names": list(info.class_names),
        "standardize": {
            "mean": None if splits.mean is None else [float(v) for v in splits.mean],
            "std": None if splits.std is None else [float(v) for v in splits.std],
        },
        "config": config.to_dict(),
        "epochs_completed": len(history),
        "metrics": asdict(history[-1]) if history else None,
    }


class RunWriter:
    """Creates a run folder and keeps its files current, epoch by epoch.

    Args:
        path: the new folder (checked with ``check_new_run_dir``; parents are created).
        config: written to ``config.json`` at once.

    Raises:
        ValueError: the folder exists or cannot be created (then nothing is left behind).
    """

    def __init__(self, path: PathLike, config: TrainConfig) -> None:
        self.path = check_new_run_dir(path)
        self.config = config
        self.epochs_written = 0  # epochs whose metrics and model are both on disk
        from chainrule import __version__

        header = {
            "config": config.to_dict(),
            "chainrule_version": __version__,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        missing = [p for p in (self.path, *self.path.parents) if not p.exists()]
        try:
            self.path.mkdir(parents=True)
            _write_text(self.path / CONFIG_FILE, json.dumps(header, indent=2) + "\n")
        except OSError as exc:
            # Leave nothing behind: remove what was created, innermost first.
            (self.path / CONFIG_FILE).unlink(missing_ok=True)
            for folder in missing:
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise ValueError(
                f"cannot create the run folder '{self.path}': {exc.strerror or exc}; choose "
                "an --out in a folder you can write to"
            ) from exc

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    def write_epoch(
        self, model: nn.Module, splits: DatasetSplits, history: list[EpochMetrics]
    ) -> None:
        """Rewrite ``metrics.csv`` and ``model.safetensors`` for the epochs in ``history``."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(METRIC_COLUMNS)
        for m in history:
            row = asdict(m)
            writer.writerow([_csv_value(row[c]) for c in METRIC_COLUMNS])
        _write_text(self.metrics_path, buffer.getvalue())
        save(model, self.model_path, model_metadata(self.config, splits, model, history))
        self.epochs_written = len(history)

    def discard(self) -> None:
        """Remove the folder if it holds nothing but ``config.json`` (no epoch finished)."""
        files = {p.name for p in self.path.iterdir()}
        if files <= {CONFIG_FILE}:
            (self.path / CONFIG_FILE).unlink(missing_ok=True)
            self.path.rmdir()


def _csv_value(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def read_metrics(path: PathLike) -> list[dict[str, float]]:
    """The rows of a ``metrics.csv`` as dicts of numbers."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


class TrainedModel:
    """A model read back by ``load_trained``, with what it was trained on.

    Attributes:
        model: the MLP in evaluation mode.
        metadata: the model file's metadata (see ``model_metadata``).
    """

    def __init__(self, model: nn.MLP, metadata: dict[str, Any]) -> None:
        self.model = model
        self.metadata = metadata

    @property
    def n_features(self) -> int:
        return int(self.metadata["architecture"]["in_features"])

    @property
    def n_classes(self) -> int:
        return int(self.metadata["architecture"]["out_features"])

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(str(self.metadata["architecture"]["dtype"]))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Raw inputs standardised with the training part's statistics, in the model's dtype."""
        arr = np.asarray(x, dtype=np.float64)
        std = self.metadata["standardize"]
        if std["mean"] is not None and std["std"] is not None:
            arr = (arr - np.asarray(std["mean"])) / np.asarray(std["std"])
        return arr.astype(self.dtype)


def load_trained(path: PathLike) -> TrainedModel:
    """Rebuild the model that ``chainrule train`` saved to ``path``.

    Raises:
        FileNotFoundError, chainrule.io.ModelFileError: from ``chainrule.load``.
        ValueError: the file is a chainrule model file but not one written by training
            (its metadata lacks the architecture), or its weights do not fit it.
    """
    ckpt = load(path)
    meta = ckpt.metadata
    arch = meta.get("architecture") if meta.get("kind") == MODEL_KIND else None
    if not isinstance(arch, dict):
        raise ValueError(
            f"'{path}' is a chainrule model file but not one written by 'chainrule train' "
            "(its metadata has no architecture); evaluate models from a run folder"
        )
    try:
        model = nn.MLP(
            int(arch["in_features"]),
            [int(h) for h in arch["hidden"]],
            int(arch["out_features"]),
            activation=str(arch["activation"]),
            dropout=float(arch["dropout"]),
            dtype=np.dtype(arch["dtype"]),
            rng=0,
        )
        model.load_state_dict(ckpt)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0]
        raise ValueError(
            f"'{path}': its weights do not fit its recorded architecture: {first}"
        ) from None
    return TrainedModel(model.eval(), meta)
