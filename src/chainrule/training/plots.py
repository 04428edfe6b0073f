"""Pictures of a training run: learning curves and, for 2-D data, the decision boundary.

matplotlib (chainrule's ``viz`` extra) is imported inside each function, with the
non-interactive Agg backend: the pictures are files, no window opens, and importing
``chainrule.training`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import nn
from chainrule.data import DatasetSplits
from chainrule.extras import import_module
from chainrule.io import atomic_savefig
from chainrule.tensor import no_grad
from chainrule.training.loop import EpochMetrics, host_logits

TRAIN_COLOR, TEST_COLOR = "#1f77b4", "#d62728"
CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def _pyplot() -> Any:
    try:
        matplotlib = import_module("matplotlib")
    except ImportError as exc:
        raise ImportError(
            f"drawing training pictures needs matplotlib ({exc}); install chainrule's viz "
            "extra: pip install 'chainrule[viz]'"
        ) from exc
    matplotlib.use("Agg")  # files only: works without a display, in CI and over ssh
    return import_module("matplotlib.pyplot")


def describe_model(sizes: Sequence[int], activation: str) -> str:
    """``MLP 64-128-128-10, relu``: the layer sizes as a title fragment."""
    return f"MLP {'-'.join(str(s) for s in sizes)}, {activation}"


def plot_curves(history: Sequence[EpochMetrics], path: Path, title: str) -> Path:
    """Train and test loss (left) and accuracy (right) per epoch, saved as a PNG at ``path``."""
    plt = _pyplot()
    epochs = [m.epoch for m in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    try:
        marker = "o" if len(epochs) <= 30 else None
        ax_loss.plot(epochs, [m.train_loss for m in history], color=TRAIN_COLOR, marker=marker,
                     markersize=3, label="train")  # fmt: skip
        ax_loss.plot(epochs, [m.test_loss for m in history], color=TEST_COLOR, marker=marker,
                     markersize=3, label="test")  # fmt: skip
        ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss (mean)", title="Loss")
        if min(min(m.train_loss, m.test_loss) for m in history) > 0:
            ax_loss.set_yscale("log")  # losses fall by orders of magnitude; a log axis shows it
        ax_acc.plot(epochs, [100 * m.train_acc for m in history], color=TRAIN_COLOR,
                    marker=marker, markersize=3, label="train")  # fmt: skip
        ax_acc.plot(epochs, [100 * m.test_acc for m in history], color=TEST_COLOR,
                    marker=marker, markersize=3, label="test")  # fmt: skip
        last = history[-1]
        ax_acc.set(
            xlabel="epoch",
            ylabel="accuracy (%)",
            title=f"Accuracy (final: train {100 * last.train_acc:.1f}%, "
            f"test {100 * last.test_acc:.1f}%)",
        )
        for ax in (ax_loss, ax_acc):
            ax.grid(True, alpha=0.3)
            ax.legend()
            if len(epochs) == 1:
                ax.set_xticks(epochs)
        fig.suptitle(title)
        atomic_savefig(fig, path)
    finally:
        plt.close(fig)
    return path


def _raw(splits: DatasetSplits, x: np.ndarray) -> np.ndarray:
    """Standardised features back in the data set's own units."""
    if splits.mean is None or splits.std is None:
        return np.asarray(x, dtype=np.float64)
    raw: np.ndarray = np.asarray(x, dtype=np.float64) * splits.std + splits.mean
    return raw


def plot_decision_boundary(
    model: nn.Module, splits: DatasetSplits, path: Path, title: str, resolution: int = 300
) -> Path:
    """The predicted class over the input plane, with the train and test points on top.

    Only for data with two features, drawn in the data's own units (the model sees them
    standardised). Misclassified test points are crossed out.
    """
    info = splits.info
    if not info.is_2d:
        raise ValueError(
            f"plot_decision_boundary: '{info.name}' has {info.n_features} features; a decision "
            "boundary can be drawn for 2-D data only (moons, circles)"
        )
    plt = _pyplot()
    from matplotlib.colors import ListedColormap

    train, test = _raw(splits, splits.x_train), _raw(splits, splits.x_test)
    both = np.concatenate([train, test])
    lo, hi = both.min(axis=0), both.max(axis=0)
    pad = 0.1 * (hi - lo)
    g0 = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    g1 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    xx, yy = np.meshgrid(g0, g1)
    grid = splits.transform(np.column_stack([xx.ravel(), yy.ravel()]))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            logits = host_logits(model, grid).astype(np.float64)
    finally:
        model.train(was_training)
    winner = logits.argmax(axis=1).reshape(xx.shape)
    k = info.n_classes
    if k == 2:  # the boundary is where the two logits are equal
        boundary, levels = (logits[:, 1] - logits[:, 0]).reshape(xx.shape), [0.0]
    else:  # where the winning class changes
        boundary, levels = winner.astype(np.float64), list(np.arange(k - 1) + 0.5)
    colors = [CLASS_COLORS[i % len(CLASS_COLORS)] for i in range(k)]
    # Equal units on both axes (circles look round): the figure takes the data's shape.
    aspect = (g1[-1] - g1[0]) / (g0[-1] - g0[0])
    fig, ax = plt.subplots(figsize=(7.5, 6.4 * aspect + 1.2), constrained_layout=True)
    try:
        ax.contourf(xx, yy, winner, levels=np.arange(k + 1) - 0.5, cmap=ListedColormap(colors),
                    alpha=0.18)  # fmt: skip
        ax.contour(xx, yy, boundary, levels=levels, colors="k", linewidths=1.2)
        for c in range(k):
            name = info.class_names[c]
            tr, te = train[splits.y_train == c], test[splits.y_test == c]
            ax.scatter(tr[:, 0], tr[:, 1], s=14, color=colors[c], alpha=0.7,
                       label=f"{name} (train)")  # fmt: skip
            ax.scatter(te[:, 0], te[:, 1], s=34, facecolors="none", edgecolors=colors[c],
                       linewidths=1.3, label=f"{name} (test)")  # fmt: skip
        pred = model_predictions(model, splits.x_test)
        wrong = test[pred != splits.y_test]
        if len(wrong):
            ax.scatter(wrong[:, 0], wrong[:, 1], s=90, marker="x", color="k",
                       label=f"misclassified test ({len(wrong)})")  # fmt: skip
        ax.plot([], [], color="k", linewidth=1.2, label="decision boundary")
        ax.set(xlabel="feature x₁", ylabel="feature x₂", title=title)
        ax.set_aspect("equal")
        ax.legend(loc="best", fontsize=8, framealpha=0.85)
        atomic_savefig(fig, path)
    finally:
        plt.close(fig)
    return path


def model_predictions(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The predicted class of each row of (standardised) ``x``, in evaluation mode."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            pred: np.ndarray = host_logits(model, x).argmax(axis=1)
            return pred
    finally:
        model.train(was_training)
