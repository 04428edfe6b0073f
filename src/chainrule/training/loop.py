"""The training loop: ``fit`` a model to a data set's splits, ``evaluate`` it.

One epoch is the textbook loop, with chainrule's engine doing the backward pass::

    for x, y in DataLoader(train, batch_size, shuffle=True):
        optimizer.zero_grad()
        loss = cross_entropy(model(x), y)     # forward: the graph is recorded
        loss.backward()                       # backward: ∂loss/∂θ lands in θ.grad
        optimizer.step()                      # θ ← θ - lr · (update from θ.grad)

then the learning-rate schedule steps, and the model is measured on both splits in
evaluation mode (no dropout, no graph recorded). The batches go to the model's device
(``x.to(device)``, as in a PyTorch loop): a model moved to a GPU (``model.to("cuda")``)
trains there; the metrics come back to the host once per step (the loss, to check it).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from chainrule import nn, optim
from chainrule.data import DataLoader, DatasetInfo, DatasetSplits
from chainrule.optim.lr_scheduler import CosineAnnealingLR
from chainrule.tensor import Tensor, no_grad
from chainrule.tensor.device import CPU, device
from chainrule.tensor.ops.loss import cross_entropy
from chainrule.training.config import TrainConfig, check_config
from chainrule.training.data_parallel import ProcessGroup, data_parallel, shard_step

#: A step whose largest matrix product has at most this many multiply-adds runs on one
#: BLAS thread: handing a 64x128 @ 128x128 product to a second thread costs more than it
#: saves, and on a busy machine a waiting BLAS thread can slow a step down tenfold.
SMALL_PRODUCT = 2**21


@dataclass(frozen=True)
class EpochMetrics:
    """What one epoch achieved, measured after it in evaluation mode.

    Attributes:
        epoch: 1-based.
        train_loss, train_acc: mean cross-entropy and accuracy on the whole training part.
        test_loss, test_acc: the same on the test part.
        lr: the learning rate the epoch used.
        seconds: wall time of the epoch's training steps (not of the measuring).
        steps: optimiser steps in the epoch.
    """

    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    lr: float
    seconds: float
    steps: int


@dataclass(frozen=True, eq=False)
class Evaluation:
    """A model's mean loss, accuracy and predicted class per sample on one split."""

    loss: float
    accuracy: float
    predictions: np.ndarray


class Reporter(Protocol):
    """Receives progress from ``fit`` (a progress bar, a log, a file writer...)."""

    def on_epoch_start(self, epoch: int, n_batches: int, lr: float) -> None: ...

    def on_batch(self, epoch: int, batch: int, loss: float, correct: int, seen: int) -> None:
        """After each step: the batch's loss, and correct/seen counts so far this epoch."""

    def on_epoch_end(self, metrics: EpochMetrics) -> None: ...


class TrainingDiverged(ArithmeticError):
    """The loss became infinite or NaN: the learning rate is too high for this model."""


def build_model(config: TrainConfig, info: DatasetInfo, dtype: Any = None) -> nn.MLP:
    """The MLP ``info.n_features → hidden... → info.n_classes`` of ``config``, seeded."""
    init_rng, _ = _streams(config.seed)
    return nn.MLP(
        info.n_features,
        list(config.hidden),
        info.n_classes,
        activation=config.activation,
        dropout=config.dropout,
        dtype=dtype,
        rng=init_rng,
    )


def build_optimizer(model: nn.Module, config: TrainConfig) -> optim.Optimizer:
    """``config.optimizer`` over the model's parameters with its lr and weight decay."""
    params = list(model.parameters())
    if config.optimizer == "sgd":
        return optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    # Independent streams for the weights (and dropout) and for the batch order, so that
    # changing one (e.g. adding dropout) does not reshuffle the other.
    init, shuffle = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init), np.random.default_rng(shuffle)


def model_device(model: nn.Module) -> device:
    """Where the model's parameters are (the CPU for a model without any)."""
    for p in model.parameters():
        return p.device
    return CPU


def host_logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The model's outputs for the host rows ``x``, as a NumPy array, computed on the
    model's device (the rows go there and the outputs come back)."""
    out = model(Tensor.from_numpy(x).to(model_device(model)))
    return out.cpu().numpy()  # type: ignore[no-any-return]


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 2048) -> Evaluation:
    """Mean cross-entropy, accuracy and predictions of ``model`` on ``(x, y)``.

    Runs in evaluation mode without recording a graph, in chunks of ``batch_size`` rows;
    the model's training/evaluation mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    total, preds = 0.0, []
    where = model_device(model)
    try:
        with no_grad():
            for start in range(0, len(y), batch_size):
                logits = model(Tensor.from_numpy(x[start : start + batch_size]).to(where))
                target: Any = y[start : start + batch_size]
                if where.type != "cpu":
                    target = Tensor.from_numpy(target).to(where)
                total += float(cross_entropy(logits, target, "sum").item())
                preds.append(logits.cpu().numpy().argmax(axis=1))
    finally:
        model.train(was_training)
    predictions = np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)
    n = max(len(y), 1)
    return Evaluation(total / n, float(np.mean(predictions == y)) if len(y) else 0.0, predictions)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of true class i predicted as class j."""
    counts = np.bincount(
        np.asarray(y_true) * n_classes + np.asarray(y_pred), minlength=n_classes * n_classes
    )
    return counts.reshape(n_classes, n_classes)


@contextlib.contextmanager
def blas_threads(limit: int | None) -> Iterator[None]:
    """Limit NumPy's BLAS to ``limit`` threads inside the block (None: leave it alone).

    Uses ``threadpoolctl`` (installed with scikit-learn, chainrule's ``data`` extra); without
    it the block runs unchanged.
    """
    if limit is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        yield
        return
    with threadpool_limits(limits=limit, user_api="blas"):
        yield


def auto_threads(config: TrainConfig, info: DatasetInfo) -> int | None:
    """1 when every matrix product of a step is small (see ``SMALL_PRODUCT``), else None."""
    sizes = [info.n_features, *config.hidden, info.n_classes]
    largest = max(a * b for a, b in itertools.pairwise(sizes)) * config.batch_size
    return 1 if largest <= SMALL_PRODUCT else None


def fit(
    model: nn.Module,
    splits: DatasetSplits,
    config: TrainConfig,
    reporter: Reporter | None = None,
    threads: int | Literal["auto"] | None = "auto",
    compile: bool = False,
    process_group: ProcessGroup | None = None,
) -> list[EpochMetrics]:
    """Train ``model`` on ``splits.train`` as ``config`` says; return the metrics per epoch.

    Softmax cross-entropy, mini-batches reshuffled every epoch (seeded by
    ``config.seed``), the optimiser and schedule of ``config``. After every epoch the
    model is measured on both splits and ``reporter.on_epoch_end`` gets the numbers, so
    a caller can save the model and the metrics there: an exception or Ctrl-C in a later
    epoch leaves what was saved intact.

    Args:
        model: maps (batch, n_features) to (batch, n_classes) logits, e.g. ``build_model``.
        splits: from ``chainrule.data.load_dataset``.
        config: hyperparameters (``dataset`` is not read here: ``splits`` is the data).
        reporter: progress callbacks, or None.
        threads: BLAS threads while training: ``"auto"`` (one for small networks, see
            ``SMALL_PRODUCT``), an int, or None for NumPy's own setting.
        compile: run each step through ``chainrule.compile`` (the same numbers, faster on
            small networks).
        process_group: train on every rank of this group (``chainrule.distributed``): each
            global batch of ``world size × batch_size`` samples, in the order one process
            would use, is split across the ranks, and ``DistributedDataParallel`` averages
            the gradients; only rank 0 measures the epochs (the other ranks report NaN).
            Not with ``compile``.

    Raises:
        TrainingDiverged: a batch's loss was inf or NaN (lower the learning rate).

    Example:
        >>> from chainrule.data import load_dataset
        >>> from chainrule.training import build_model, default_config, fit
        >>> splits = load_dataset("moons")
        >>> config = default_config("moons", epochs=3)
        >>> history = fit(build_model(config, splits.info), splits, config)
        >>> len(history), history[-1].test_acc > 0.8
        (3, True)
    """
    check_config(config)
    limit = auto_threads(config, splits.info) if threads == "auto" else threads
    _, shuffle_rng = _streams(config.seed)
    seed = int(shuffle_rng.integers(2**63))
    world = 1 if process_group is None else process_group.size
    loader = DataLoader(splits.train, batch_size=config.batch_size * world, shuffle=True, seed=seed)
    optimizer = build_optimizer(model, config)
    net = model if process_group is None else data_parallel(model, config, process_group)
    scheduler = (
        CosineAnnealingLR(optimizer, T_max=config.epochs) if config.schedule == "cosine" else None
    )
    if compile and process_group is not None:
        raise ValueError(
            "fit: compile=True traces one process's step; with a process_group train "
            "without compile (the all-reduce is not traced)."
        )
    where = model_device(model)
    if where.type != "cpu" and (compile or process_group is not None):
        raise ValueError(
            f"fit: the model is on {where}; compile=True (a traced NumPy program) and "
            "process_group (MPI all-reduces of host arrays) train on the CPU only: move the "
            "model with model.cpu(), or train on the GPU without them."
        )
    step = _compiled_step(model, optimizer) if compile else None
    history: list[EpochMetrics] = []
    # Overflow warnings would only repeat, less clearly, what TrainingDiverged says.
    with blas_threads(limit), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for epoch in range(1, config.epochs + 1):
            lr = float(optimizer.param_groups[0]["lr"])
            if reporter is not None:
                reporter.on_epoch_start(epoch, len(loader), lr)
            start = time.perf_counter()
            if process_group is not None:
                steps = _train_epoch(net, loader, optimizer, epoch, reporter, group=process_group)
            else:
                extra = {"step": step} if step is not None else {}  # (the eager call unchanged)
                steps = _train_epoch(model, loader, optimizer, epoch, reporter, **extra)
            seconds = time.perf_counter() - start
            if scheduler is not None:
                scheduler.step()
            if process_group is None or process_group.rank == 0:
                train = evaluate(model, splits.x_train, splits.y_train)
                test = evaluate(model, splits.x_test, splits.y_test)
            else:  # the same model as rank 0's: measuring it again would only take time
                train = test = Evaluation(math.nan, math.nan, np.zeros(0, dtype=np.int64))
            metrics = EpochMetrics(
                epoch, train.loss, train.accuracy, test.loss, test.accuracy, lr, seconds, steps
            )
            history.append(metrics)
            if reporter is not None:
                reporter.on_epoch_end(metrics)
    return history


def _train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: optim.Optimizer,
    epoch: int,
    reporter: Reporter | None,
    step: Any = None,
    group: ProcessGroup | None = None,
) -> int:
    model.train()
    correct = seen = steps = 0
    where = model_device(model)
    on_host = where.type == "cpu"
    for x, y in loader:
        target = y.numpy()
        labels: Any = target
        if not on_host:  # the batch to the model's device, as x.to(device) in PyTorch
            x, labels = x.to(where), y.to(where)
        if group is not None:
            optimizer.zero_grad()
            value, right = shard_step(model, x, target, group)
            optimizer.step()
            steps += 1
            correct += right
            seen += len(target)
            _check_finite(value, epoch, steps, optimizer)
            if reporter is not None:
                reporter.on_batch(epoch, steps, value, correct, seen)
            continue
        if step is not None:
            loss, logits = step(x, target)
        else:
            optimizer.zero_grad()
            logits = model(x)
            loss = cross_entropy(logits, labels)
            loss.backward()
            optimizer.step()
        steps += 1
        value = float(loss.item())
        _check_finite(value, epoch, steps, optimizer)
        if reporter is not None:
            predicted = (logits.numpy() if on_host else logits.cpu().numpy()).argmax(axis=1)
            correct += int(np.count_nonzero(predicted == target))
            seen += len(target)
            reporter.on_batch(epoch, steps, value, correct, seen)
    return steps


def _check_finite(value: float, epoch: int, steps: int, optimizer: optim.Optimizer) -> None:
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"fit: the loss became {value} in epoch {epoch}, step {steps}: the learning "
            f"rate {optimizer.param_groups[0]['lr']:g} is too high for this model; "
            "lower it (e.g. by 10x)"
        )


def _compiled_step(model: nn.Module, optimizer: optim.Optimizer) -> Any:
    """``_train_epoch``'s step, traced once by ``chainrule.compile``: (loss, logits)."""
    from chainrule.compile import compile as compile_step

    def train_step(x: Tensor, target: np.ndarray) -> tuple[Tensor, Tensor]:
        optimizer.zero_grad()
        logits = model(x)
        loss = cross_entropy(logits, target)
        loss.backward()
        optimizer.step()
        return loss, logits

    return compile_step(train_step)
