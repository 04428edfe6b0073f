"""``chainrule evaluate``: a trained model's accuracy and confusion matrix on a data set.

The model file (``model.safetensors`` of a run folder) records the architecture, the data set,
the seed and the training part's mean and std; the data are standardised with those, so
the test split is the one the model was measured on while training. Reads only, writes
nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chainrule.training import TrainedModel


def register(sub: Any) -> None:
    from chainrule.cli import plain
    from chainrule.data import list_datasets

    p = sub.add_parser(
        "evaluate",
        help="accuracy and confusion matrix of a trained model (a run folder's model.safetensors)",
        description=plain(__doc__.split("\n\n")[1]),
    )
    p.add_argument(
        "--model", type=Path, required=True, help="model.safetensors from chainrule train"
    )
    p.add_argument(
        "--dataset", choices=list_datasets(), help="default: the one the model was trained on"
    )
    p.add_argument("--split", choices=("test", "train"), default="test", help="default test")
    p.add_argument(
        "--seed", type=_seed, help="data seed in [0, 2**32) (default: the training run's split)"
    )
    p.set_defaults(func=run)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32), got {text!r}")
    return value


def load_model(path: Path) -> TrainedModel:
    """The trained model, or ``UsageError`` saying why the file cannot be used."""
    from chainrule.cli import UsageError
    from chainrule.training import load_trained

    try:
        return load_trained(path)
    except FileNotFoundError:
        raise UsageError(f"--model: no such file '{path}'") from None
    except IsADirectoryError:
        raise UsageError(
            f"--model: '{path}' is a folder; pass the model file, e.g. {path / 'model.safetensors'}"
        ) from None
    except ValueError as exc:  # ModelFileError is a ValueError
        raise UsageError(f"--model: {exc}") from None


def run(args: argparse.Namespace) -> int:
    import math
    import sys

    import numpy as np

    from chainrule.cli import EXIT_FAILED, UsageError
    from chainrule.data import dataset_info, load_dataset
    from chainrule.training import confusion_matrix, evaluate

    trained = load_model(args.model)
    meta = trained.metadata
    name = args.dataset or str(meta["dataset"])
    info = dataset_info(name)
    if (info.n_features, info.n_classes) != (trained.n_features, trained.n_classes):
        raise UsageError(
            f"the model takes {trained.n_features} features and predicts {trained.n_classes} "
            f"classes (trained on {meta['dataset']}), but {info.name} has {info.n_features} "
            f"features and {info.n_classes} classes; evaluate it on {meta['dataset']}"
        )
    seed = args.seed if args.seed is not None else int(meta["config"]["seed"])
    try:
        raw = load_dataset(info.name, seed=seed, standardize=False, dtype="float64")
    except (ImportError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    x_raw, y = (raw.x_test, raw.y_test) if args.split == "test" else (raw.x_train, raw.y_train)
    with np.errstate(all="ignore"):  # non-finite weights are reported below, once
        result = evaluate(trained.model, trained.transform(x_raw), y)
    matrix = confusion_matrix(y, result.predictions, info.n_classes)
    _print(args, trained, info.name, seed, result, matrix)
    bad = sum(int(np.count_nonzero(~np.isfinite(p.numpy()))) for p in trained.model.parameters())
    if bad or not math.isfinite(result.loss):
        print(
            f"chainrule evaluate: warning: {args.model} holds {bad:,} non-finite weights and "
            f"the loss is {result.loss}; the numbers above are meaningless (retrain the "
            "model, e.g. with a lower --lr)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


def _print(
    args: argparse.Namespace,
    trained: TrainedModel,
    dataset: str,
    seed: int,
    result: Any,
    matrix: Any,
) -> None:
    from rich.table import Table

    from chainrule.cli.progress import make_console
    from chainrule.training.plots import describe_model

    console = make_console()
    meta, arch = trained.metadata, trained.metadata["architecture"]
    sizes = [arch["in_features"], *arch["hidden"], arch["out_features"]]
    console.print(
        f"{args.model}: {describe_model(sizes, arch['activation'])}, trained on "
        f"{meta['dataset']} for {meta['epochs_completed']} epochs",
        soft_wrap=True,
    )
    n = int(matrix.sum())
    names = [str(c) for c in meta["class_names"]]
    console.print(
        f"confusion matrix on {dataset}, {args.split} split (seed {seed}), {n:,} samples: "
        "rows are the true class, columns the predicted one",
        soft_wrap=True,
    )
    table = Table()
    table.add_column("true \\ predicted", no_wrap=True)
    for c in names:
        table.add_column(c, justify="right", no_wrap=True)
    table.add_column("recall", justify="right", no_wrap=True)
    for i, c in enumerate(names):
        row = matrix[i]
        cells = [f"[bold]{v}[/bold]" if j == i else ("·" if v == 0 else str(v))
                 for j, v in enumerate(row)]  # fmt: skip
        recall = f"{100 * row[i] / row.sum():.1f}%" if row.sum() else "-"
        table.add_row(c, *cells, recall)
    console.print(table)
    correct = int(matrix.trace())
    console.print(
        f"accuracy {100 * result.accuracy:.2f}% ({correct:,}/{n:,}), mean cross-entropy "
        f"{result.loss:.4f}",
        soft_wrap=True,
    )
