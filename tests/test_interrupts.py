"""A Ctrl-C stays a Ctrl-C wherever it lands: inside an extension module's import (which
pybind11 wraps as ``ImportError("initialization failed")`` raised from it), while the
data loads, while the pictures are drawn; and a picture is never half-written."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from chainrule.cli import main
from chainrule.cli import train as train_module
from chainrule.data import sources
from chainrule.data.cache import CACHE_ENV
from chainrule.extras import import_module, interrupt_behind
from chainrule.training import EpochMetrics, load_trained
from chainrule.training import plots as plots_module


def wrapped_interrupt() -> ImportError:
    """What a pybind11 module raises when a Ctrl-C stops its initialisation."""
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise ImportError("initialization failed") from ki
    except ImportError as exc:
        return exc


def test_the_interrupt_behind_an_error_is_found_through_causes_and_contexts() -> None:
    ki = KeyboardInterrupt()
    assert interrupt_behind(ki) is ki
    assert interrupt_behind(wrapped_interrupt()) is not None
    outer = RuntimeError("outer")
    outer.__context__ = ValueError("middle")
    outer.__context__.__cause__ = ki  # deeper, and through both links
    assert interrupt_behind(outer) is ki
    suppressed = RuntimeError("raised `from None`")
    suppressed.__context__, suppressed.__suppress_context__ = wrapped_interrupt(), True
    assert interrupt_behind(suppressed) is not None


def test_an_error_with_no_interrupt_behind_it_gives_none_even_in_a_cycle() -> None:
    a, b = ImportError("a"), ValueError("b")
    a.__context__, b.__cause__ = b, a
    assert interrupt_behind(a) is None
    assert interrupt_behind(ImportError("initialization failed")) is None


def test_import_module_raises_an_interrupted_import_as_the_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real import through Python's machinery, of a module that fails as pybind11 does.
    (tmp_path / "chainrule_fake_ext.py").write_text(
        "try:\n    raise KeyboardInterrupt\n"
        "except KeyboardInterrupt as e:\n    raise ImportError('initialization failed') from e\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="initialization failed"):
        importlib.import_module("chainrule_fake_ext")  # what the plain import gives
    sys.modules.pop("chainrule_fake_ext", None)
    with pytest.raises(KeyboardInterrupt):
        import_module("chainrule_fake_ext")
    assert "chainrule_fake_ext" not in sys.modules


def test_import_module_leaves_other_import_errors_and_successes_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert import_module("json") is importlib.import_module("json")
    with pytest.raises(ModuleNotFoundError) as info:
        import_module("chainrule_no_such_module")
    assert info.value.name == "chainrule_no_such_module"
    plain = ImportError("initialization failed")  # nothing behind it: a real failure

    def fail(name: str) -> Any:
        raise plain

    monkeypatch.setattr(importlib, "import_module", fail)
    with pytest.raises(ImportError) as again:
        import_module("anything")
    assert again.value is plain


def run_main(argv: list[str]) -> int:
    """``main(argv)``; a Ctrl-C escaping it fails the test instead of stopping pytest."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        pytest.fail("main() let a KeyboardInterrupt escape instead of exiting with 130")


def _raise(exc: BaseException) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fail


def test_a_data_set_import_interrupted_by_ctrl_c_is_not_reported_as_a_missing_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importlib, "import_module", _raise(wrapped_interrupt()))
    with pytest.raises(KeyboardInterrupt):
        sources.require("mnist1d.data", "mnist1d", "mnist1d")
    monkeypatch.setattr(importlib, "import_module", _raise(ImportError("no")))
    with pytest.raises(ImportError, match=r"needs the 'mnist1d' package.*chainrule\[data\]"):
        sources.require("mnist1d.data", "mnist1d", "mnist1d")


@pytest.mark.parametrize("where", ["scikit-learn's import", "prepare"])
def test_the_command_reports_a_wrapped_ctrl_c_while_starting_as_interrupted_130(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if where == "prepare":  # the ImportError reaches main() itself, unconverted
        monkeypatch.setattr(train_module, "prepare", _raise(wrapped_interrupt()))
    else:  # loading the moons imports scikit-learn, which is interrupted
        real = importlib.import_module

        def interrupted(name: str, package: str | None = None) -> Any:
            if name.startswith("sklearn"):
                raise wrapped_interrupt()
            return real(name, package)

        monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
        monkeypatch.setattr(importlib, "import_module", interrupted)
    code = run_main(["train", "--dataset", "moons", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 130, err
    assert err.count("\n") == 1 and "interrupted (Ctrl-C) before anything was written" in err
    assert [p.name for p in tmp_path.rglob("*") if p.name != "cache"] == []


@pytest.mark.parametrize("how", ["plain", "wrapped"])
def test_ctrl_c_while_drawing_keeps_the_trained_model_and_exits_130(
    how: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    exc = KeyboardInterrupt() if how == "plain" else wrapped_interrupt()
    monkeypatch.setattr(train_module, "draw", _raise(exc))
    out = tmp_path / "run"
    code = run_main(["train", "--dataset", "moons", "--epochs", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 130, err
    assert err.count("\n") == 1 and "interrupted while drawing the pictures" in err
    assert "of epoch 2" in err and "Traceback" not in err
    assert sorted(os.listdir(out)) == ["config.json", "metrics.csv", "model.safetensors"]
    assert load_trained(out / "model.safetensors").metadata["epochs_completed"] == 2


def test_a_real_import_error_while_drawing_is_not_called_an_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(train_module, "draw", _raise(ImportError("broken matplotlib")))
    with pytest.raises(ImportError, match="broken matplotlib"):
        run_main(["train", "--dataset", "moons", "--epochs", "1", "--out", str(tmp_path / "r")])


def test_a_picture_interrupted_while_saving_leaves_the_old_one_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    history = [EpochMetrics(e, 1.0 / e, 0.5, 1.2 / e, 0.4, 0.1, 0.01, 10) for e in (1, 2)]
    path = tmp_path / "curves.png"
    plots_module.plot_curves(history, path, "before")
    before = path.read_bytes()
    real = Figure.savefig

    def half_then_interrupt(self: Any, f: Any, **kwargs: Any) -> None:
        real(self, f, **kwargs)  # the whole picture reaches the file, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        plots_module.plot_curves(history, path, "after")
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["curves.png"]  # no temporary left
