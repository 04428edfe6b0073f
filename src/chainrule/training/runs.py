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
import itertools
import json
import math
import os
import time
from collections.abc import Mapping
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
        extra: more keys for ``config.json`` (``world_size`` of a multi-rank run).

    Raises:
        ValueError: the folder exists or cannot be created (then nothing is left behind).
    """

    def __init__(
        self, path: PathLike, config: TrainConfig, extra: dict[str, Any] | None = None
    ) -> None:
        self.path = check_new_run_dir(path)
        self.config = config
        self.epochs_written = 0  # epochs whose metrics and model are both on disk
        from chainrule import __version__

        header = {
            "config": config.to_dict(),
            "chainrule_version": __version__,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **(extra or {}),  # e.g. the world size of a data-parallel run
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


def _is_int(v: Any, low: int = 0, high: float = math.inf) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v < high


def _numbers(v: Any, n: int, positive: bool) -> bool:
    return (
        isinstance(v, list)
        and len(v) == n
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
        and all(math.isfinite(x) and (x > 0 or not positive) for x in v)
    )


def check_trained_metadata(meta: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Check a model file's metadata as a whole, and against the tensors it holds, before
    anything it describes is built; raise ``ValueError`` with the first problem."""
    from chainrule.data import dataset_info
    from chainrule.training.config import ACTIVATIONS, MAX_PARAMETERS

    arch = meta.get("architecture")
    if meta.get("kind") != MODEL_KIND or not isinstance(arch, dict):
        raise ValueError(
            "it is a chainrule model file but not one written by 'chainrule train' (its "
            "metadata has no architecture); evaluate models from a run folder"
        )
    n_in, hidden, n_out = arch.get("in_features"), arch.get("hidden"), arch.get("out_features")
    if not (_is_int(n_in, 1) and _is_int(n_out, 1) and isinstance(hidden, list) and hidden
            and all(_is_int(h, 1) for h in hidden)):  # fmt: skip
        raise ValueError(
            f"architecture in_features {n_in!r}, hidden {hidden!r}, out_features {n_out!r} "
            "are not positive integer layer sizes"
        )
    if arch.get("activation") not in ACTIVATIONS:
        raise ValueError(f"architecture.activation {arch.get('activation')!r} is not one of "
                         f"{', '.join(ACTIVATIONS)}")  # fmt: skip
    dropout = arch.get("dropout")
    if not (isinstance(dropout, int | float) and not isinstance(dropout, bool)
            and 0 <= dropout < 1):  # fmt: skip
        raise ValueError(f"architecture.dropout {dropout!r} is not a probability in [0, 1)")
    if arch.get("dtype") not in ("float32", "float64"):
        raise ValueError(f"architecture.dtype {arch.get('dtype')!r} is not float32 or float64")
    sizes: list[int] = [int(n_in), *hidden, int(n_out)]  # type: ignore[arg-type]
    # The tensors actually present must be the layers the metadata describes, shape by
    # shape: a few bytes of metadata must not make us build a network of gigabytes.
    weights = sorted(
        (int(k.split(".")[1]), v.shape) for k, v in arrays.items()
        if k.startswith("layers.") and k.endswith(".weight") and k.split(".")[1].isdigit()
    )  # fmt: skip
    expected = [(b, a) for a, b in itertools.pairwise(sizes)]
    found = [tuple(shape) for _, shape in weights]
    if found != expected or len(arrays) != 2 * len(expected):
        raise ValueError(
            f"its metadata describes layers {'-'.join(map(str, sizes))} (weights "
            f"{expected}), but the file holds {len(arrays)} tensors with weights {found}"
        )
    if sum((a + 1) * b for a, b in itertools.pairwise(sizes)) > MAX_PARAMETERS:
        raise ValueError(f"its layers {sizes} exceed {MAX_PARAMETERS:,} parameters")
    name = meta.get("dataset")
    try:
        info = dataset_info(name) if isinstance(name, str) else None
    except ValueError:
        info = None
    if info is None:
        raise ValueError(f"dataset {name!r} is not a built-in data set")
    names = meta.get("class_names")
    if not (isinstance(names, list) and len(names) == n_out):
        raise ValueError(f"class_names {names!r} is not a list of {n_out} names")
    std = meta.get("standardize")
    if not (isinstance(std, dict) and (
        (std.get("mean") is None and std.get("std") is None)
        or (_numbers(std.get("mean"), sizes[0], False) and _numbers(std.get("std"), sizes[0], True))
    )):  # fmt: skip
        raise ValueError(
            f"standardize must hold a mean and a positive std of {n_in} finite numbers each "
            "(or both null)"
        )
    config = meta.get("config")
    if not isinstance(config, dict) or not _is_int(config.get("seed"), 0, 2**32):
        seed = config.get("seed") if isinstance(config, dict) else None
        raise ValueError(f"config.seed {seed!r} is not an integer in [0, 2**32)")
    if not _is_int(meta.get("epochs_completed"), 0):
        raise ValueError(
            f"epochs_completed {meta.get('epochs_completed')!r} is not a non-negative integer"
        )


def load_trained(path: PathLike) -> TrainedModel:
    """Rebuild the model that ``chainrule train`` saved to ``path``.

    The metadata is checked as a whole, and against the tensors in the file, before the
    model is built (``check_trained_metadata``).

    Raises:
        FileNotFoundError, chainrule.io.ModelFileError: from ``chainrule.load``.
        ValueError: the file is a chainrule model file but not one written by training, or
            its metadata is incomplete, inconsistent or does not fit its weights.
    """
    ckpt = load(path)
    meta = ckpt.metadata
    try:
        check_trained_metadata(meta, ckpt)
    except ValueError as exc:
        raise ValueError(f"'{path}': {exc}") from None
    arch = meta["architecture"]
    try:
        model = nn.MLP(
            arch["in_features"],
            arch["hidden"],
            arch["out_features"],
            activation=arch["activation"],
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
