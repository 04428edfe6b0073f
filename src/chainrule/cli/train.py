"""``chainrule train``: train an MLP on a built-in data set into a run folder.

Every option left out takes the data set's default (``chainrule.training.DEFAULTS``, shown
by ``chainrule train --help``). All input is checked, and the data loaded and the model
built, before anything is written: bad input gets one line and exit status 2. The run
folder then gets ``config.json`` at once, and ``metrics.csv`` and ``model.safetensors`` after every
epoch (atomically); ``curves.png`` (and ``decision_boundary.png`` for 2-D data) at the end.
Ctrl-C stops the run with status 130, keeping the last finished epoch's files; a file that
cannot be written (a full disk, a folder made read-only) stops it with status 1, saying
what was kept.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from chainrule.cli import EXIT_FAILED, EXIT_INTERRUPTED
from chainrule.extras import import_module, interrupt_behind
from chainrule.training.config import ACTIVATIONS, DEFAULTS, MAX_LR, OPTIMIZERS, SCHEDULES

if TYPE_CHECKING:  # imported lazily at run time: `chainrule --help` stays fast
    from rich.console import Console

    from chainrule.data import DatasetSplits
    from chainrule.distributed import ProcessGroup
    from chainrule.nn import MLP
    from chainrule.training import EpochMetrics, RunWriter, TrainConfig


def _int_at_least(low: int, what: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


def _float_in(low: float, high: float, what: str, low_open: bool) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        above = value > low if low_open else value >= low
        if not (math.isfinite(value) and above and value < high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


def parse_hidden(text: str) -> tuple[int, ...]:
    """``'128,128'`` -> ``(128, 128)``; every width a positive integer."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive layer widths such as 128,128, got {text!r}"
        )
    return tuple(int(p) for p in parts)


def _threads(text: str) -> int | Literal["auto"]:
    if text == "auto":
        return "auto"
    return int(_int_at_least(1, "a positive integer or 'auto'")(text))


def _defaults_table() -> str:
    lines = ["defaults per data set (measured; see chainrule.training.config):"]
    for name, c in DEFAULTS.items():
        extra = f", momentum {c.momentum}" if c.optimizer == "sgd" else ""
        drop = f", dropout {c.dropout}" if c.dropout else ""
        lines.append(
            f"  {name:8} --hidden {','.join(map(str, c.hidden))} --epochs {c.epochs} "
            f"--batch-size {c.batch_size} --optimizer {c.optimizer} --lr {c.lr:g} "
            f"--weight-decay {c.weight_decay:g}{extra}{drop}, {c.schedule} schedule"
        )
    return "\n".join(lines)


def add_training_options(p: argparse.ArgumentParser) -> None:
    """The hyperparameter options, shared with ``chainrule demo``; None = the default."""
    p.add_argument("--hidden", type=parse_hidden, help="hidden layer widths, e.g. 128,128")
    p.add_argument("--activation", choices=ACTIVATIONS, help="activation (default relu)")
    p.add_argument("--epochs", type=_int_at_least(1, "a positive integer"))
    p.add_argument("--batch-size", type=_int_at_least(1, "a positive integer"))
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--lr", type=_float_in(0, MAX_LR, f"a positive number below {MAX_LR:g}", True))
    p.add_argument("--weight-decay", type=_float_in(0, math.inf, "a number >= 0", False))
    p.add_argument(
        "--momentum", type=_float_in(0, 1, "a number in [0, 1)", False),
        help="momentum of sgd (default 0.9)",
    )  # fmt: skip
    p.add_argument("--dropout", type=_float_in(0, 1, "a probability in [0, 1)", False))
    p.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule")
    p.add_argument("--seed", type=_int_at_least(0, "a non-negative integer"), help="default 0")


def register(sub: Any) -> None:
    from chainrule.cli import plain
    from chainrule.data import list_datasets

    p = sub.add_parser(
        "train",
        help="train an MLP on a built-in data set: live progress, run folder, pictures",
        description=plain(__doc__.split("\n\n")[1]),
        epilog=_defaults_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", required=True, choices=list_datasets())
    add_training_options(p)
    p.add_argument("--out", type=Path, help="the new run folder (default runs/DATASET-TIME)")
    p.add_argument(
        "--threads", type=_threads, default="auto",
        help="BLAS threads while training: auto (1 for small networks) or a number",
    )  # fmt: skip
    p.add_argument("--no-plots", action="store_true", help="skip curves.png and the boundary")
    p.add_argument(
        "--compile", action="store_true",
        help="run each step as the NumPy program chainrule.compile traces (same numbers)",
    )  # fmt: skip
    p.add_argument(
        "--nproc", type=_int_at_least(1, "a positive integer"), default=1,
        help="train on N processes with MPI (starts mpiexec; --batch-size is per process)",
    )  # fmt: skip
    p.add_argument(
        "--device", type=_device_name, default="cpu",
        help="where to train: cpu (NumPy) or cuda / cuda:N (CuPy on an NVIDIA GPU: "
        "pip install 'chainrule[cuda]')",
    )  # fmt: skip
    p.set_defaults(func=run)


def _device_name(text: str) -> str:
    kind, colon, index = text.partition(":")
    if kind not in ("cpu", "cuda") or (colon and not index.isdigit()) or (kind == "cpu" and colon):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")
    return text


OVERRIDES = ("hidden", "activation", "epochs", "batch_size", "optimizer", "lr", "weight_decay",
             "momentum", "dropout", "schedule", "seed")  # fmt: skip


@dataclass
class Prepared:
    """A run checked and ready: nothing has been written yet."""

    config: TrainConfig
    splits: DatasetSplits
    model: MLP
    out: Path
    plots: bool
    threads: int | Literal["auto"] = "auto"
    history: list[EpochMetrics] = field(default_factory=list)
    compile: bool = False  # train through chainrule.compile
    device: str = "cpu"  # where the model is (and the batches go): 'cpu', 'cuda:0'...


def prepare(
    dataset: str,
    overrides: dict[str, Any],
    out: Path | None,
    plots: bool,
    threads: int | Literal["auto"],
    check_out: bool = True,
    device: str = "cpu",
) -> Prepared:
    """Check everything and build the model (on ``device``); raise ``UsageError`` for bad
    input, including a GPU that is not available (naming the extra to install).

    ``check_out=False`` skips the run folder check (ranks other than 0 write nothing).
    """
    from chainrule.cli import UsageError
    from chainrule.data import dataset_info, load_dataset
    from chainrule.tensor.device import resolve
    from chainrule.training import build_model, default_config
    from chainrule.training.config import MAX_PARAMETERS, count_parameters
    from chainrule.training.runs import check_new_run_dir, default_run_dir

    try:
        # First: nothing else is worth checking without it.
        where = resolve(device, "--device", instead="Train with --device cpu meanwhile.")
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None
    try:
        config = default_config(dataset, **overrides)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    target = out if out is not None else default_run_dir(config.dataset)
    try:
        if check_out:
            target = check_new_run_dir(target)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if plots:
        try:
            import_module("matplotlib")  # checked now: the pictures come after training
        except ImportError:
            raise UsageError(
                "the pictures need matplotlib: pip install 'chainrule[viz]', or pass --no-plots"
            ) from None
    # Checked from the data set's description, before loading (which may write a cache).
    info = dataset_info(config.dataset)
    n_params = count_parameters(info.n_features, config.hidden, info.n_classes)
    if n_params > MAX_PARAMETERS:
        raise UsageError(
            f"--hidden {','.join(map(str, config.hidden))} makes {n_params:,} parameters; at "
            f"most {MAX_PARAMETERS:,} are trained here: use narrower layers"
        )
    try:
        splits = load_dataset(config.dataset, seed=config.seed)
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    model = build_model(config, splits.info).to(where)  # drawn on the host, then moved
    return Prepared(config, splits, model, target, plots, threads, device=str(where))


def title_of(p: Prepared) -> str:
    """``digits: MLP 64-256-256-10, relu; adamw lr 0.002, 60 epochs, batch 32``."""
    from chainrule.training.plots import describe_model

    c, info = p.config, p.splits.info
    sizes = [info.n_features, *c.hidden, info.n_classes]
    drop = f", dropout {c.dropout:g}" if c.dropout else ""
    return (
        f"{info.name}: {describe_model(sizes, c.activation)}{drop}; {c.optimizer} lr {c.lr:g}, "
        f"{c.epochs} epochs, batch {c.batch_size}"
    )


class Stopped(Exception):
    """Training stopped early (Ctrl-C: status 130; a diverged loss: 1); the message says
    what was kept."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def execute(
    p: Prepared, console: Console, max_rows: int = 20, group: ProcessGroup | None = None
) -> list[Path]:
    """Create the run folder, train with a live display, draw; returns the picture paths.

    Raises ``Stopped`` on Ctrl-C or when the loss blows up; the last finished epoch's
    metrics and model stay in the folder (which is removed if no epoch finished).
    """
    from chainrule.cli import UsageError
    from chainrule.cli.progress import TrainingDisplay
    from chainrule.training import RunWriter, TrainingDiverged, fit

    try:
        world = {} if group is None else {"world_size": group.size}
        writer = RunWriter(p.out, p.config, {"world_size": 1, **world, "device": p.device})
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    console.print(title_of(p), soft_wrap=True)

    def save(_: EpochMetrics) -> None:
        writer.write_epoch(p.model, p.splits, p.history)

    display = TrainingDisplay(console, p.config.epochs, save, max_rows)
    try:
        with display:
            # fit's history list is filled in place through the reporter, so the writer
            # sees every finished epoch even if a later one is interrupted.
            reporter = _Collect(display, p.history)
            fit(p.model, p.splits, p.config, reporter, threads=p.threads, compile=p.compile,
                process_group=group)  # fmt: skip
    except (KeyboardInterrupt, TrainingDiverged, OSError) as exc:
        raise _stopped(p, writer, exc) from None
    kept = f"kept {writer.metrics_path} and {writer.model_path} of epoch {writer.epochs_written}"
    try:
        return draw(p) if p.plots else []
    except OSError as exc:
        raise Stopped(
            f"cannot write the pictures: {exc.strerror or exc} ({exc.filename}); {kept}",
            EXIT_FAILED,
        ) from None
    except (KeyboardInterrupt, ImportError) as exc:  # matplotlib's import may wrap a Ctrl-C
        if interrupt_behind(exc) is None:
            raise
        raise Stopped(f"interrupted while drawing the pictures (Ctrl-C); {kept}",
                      EXIT_INTERRUPTED) from None  # fmt: skip


def _stopped(p: Prepared, writer: RunWriter, exc: BaseException) -> Stopped:
    """What to tell the user when training stopped early, after keeping what can be kept."""
    done = len(p.history)
    write_error = exc if isinstance(exc, OSError) else None
    if write_error is None and writer.epochs_written < done:
        # Stopped while the files of the last finished epoch were being written: the
        # model has not changed since that epoch ended, so finish writing them.
        try:
            writer.write_epoch(p.model, p.splits, p.history)
        except OSError as again:
            write_error = again
    if writer.epochs_written == 0:
        with contextlib.suppress(OSError):
            writer.discard()
        kept = f"no epoch finished, removed {p.out}" if not p.out.exists() else "nothing kept"
    else:
        kept = (
            f"kept {writer.model_path} of epoch {writer.epochs_written}/{p.config.epochs} and "
            "its metrics (no pictures)"
        )
    if isinstance(exc, KeyboardInterrupt):
        return Stopped(f"interrupted during epoch {done + 1} (Ctrl-C): {kept}", EXIT_INTERRUPTED)
    if write_error is not None:
        return Stopped(
            f"cannot write the run folder: {write_error.strerror or write_error} "
            f"({write_error.filename}); {kept}",
            EXIT_FAILED,
        )
    return Stopped(f"{exc}; {kept}", EXIT_FAILED)


class _Collect:
    """Appends each epoch's metrics to ``history`` before the display (and writer) see it."""

    def __init__(self, display: Any, history: list[EpochMetrics]) -> None:
        self.display, self.history = display, history

    def on_epoch_start(self, epoch: int, n_batches: int, lr: float) -> None:
        self.display.on_epoch_start(epoch, n_batches, lr)

    def on_batch(self, epoch: int, batch: int, loss: float, correct: int, seen: int) -> None:
        self.display.on_batch(epoch, batch, loss, correct, seen)

    def on_epoch_end(self, metrics: EpochMetrics) -> None:
        self.history.append(metrics)
        self.display.on_epoch_end(metrics)


def draw(p: Prepared) -> list[Path]:
    """``curves.png`` and, for 2-D data, ``decision_boundary.png`` in the run folder."""
    from chainrule.training.plots import plot_curves, plot_decision_boundary
    from chainrule.training.runs import BOUNDARY_FILE, CURVES_FILE

    title = title_of(p)
    paths = [plot_curves(p.history, p.out / CURVES_FILE, title)]
    if p.splits.info.is_2d:
        paths.append(plot_decision_boundary(p.model, p.splits, p.out / BOUNDARY_FILE, title))
    return paths


def print_summary(console: Console, p: Prepared, pictures: list[Path], seconds: float) -> None:
    """The final metrics, the time taken and where the files are."""
    last = p.history[-1]
    steps = sum(m.steps for m in p.history)
    train_s = sum(m.seconds for m in p.history)
    console.print(
        f"{p.splits.info.name}: test accuracy {100 * last.test_acc:.2f}% (loss "
        f"{last.test_loss:.4f}), train accuracy {100 * last.train_acc:.2f}% after "
        f"{len(p.history)} epochs; {steps:,} steps in {train_s:.1f} s "
        f"({steps / max(train_s, 1e-9):,.0f} steps/s), {seconds:.1f} s in all",
        soft_wrap=True,
    )
    console.print(
        f"run folder: {p.out}  (config.json, metrics.csv, model.safetensors)", soft_wrap=True
    )
    for path in pictures:
        console.print(f"picture: {path}", soft_wrap=True)


def run(args: argparse.Namespace) -> int:
    import sys

    from chainrule.cli import train_ranks  # (--nproc)
    from chainrule.cli.progress import make_console

    start = time.perf_counter()
    overrides = {k: getattr(args, k) for k in OVERRIDES}
    from chainrule.cli import UsageError

    if getattr(args, "compile", False) and (args.nproc > 1 or train_ranks.launched()):
        raise UsageError(
            "--compile traces one process's step (not the all-reduce); use it without --nproc"
        )
    device = getattr(args, "device", "cpu")
    if device != "cpu" and (args.nproc > 1 or getattr(args, "compile", False)):
        raise UsageError(
            f"--device {device} trains in one process without --compile (--nproc and "
            "--compile run NumPy programs on the CPU); drop them, or use --device cpu"
        )
    if train_ranks.launched():  # a rank of `mpiexec -n N chainrule train ...`
        group = train_ranks.join()
        if group is not None and group.rank != 0:
            q = prepare(args.dataset, overrides, args.out, False, args.threads, check_out=False)
            return train_ranks.follow(q, group)
    else:
        group = None
    p = prepare(args.dataset, overrides, args.out, not args.no_plots, args.threads, device=device)
    p.compile = bool(getattr(args, "compile", False))
    if args.nproc > 1 and group is None:  # checked here once, then run on N ranks
        return train_ranks.launch(args.nproc, train_ranks.rank_argv(args, p.out), p.out)
    console = make_console()
    try:
        pictures = execute(p, console, group=group)
    except Stopped as exc:
        print(f"chainrule train: {exc}", file=sys.stderr)
        return exc.status
    print_summary(console, p, pictures, time.perf_counter() - start)
    return 0
