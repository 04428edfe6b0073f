"""The ``chainrule`` command as a whole: ``python -m chainrule``, help text, exit statuses
and missing optional dependencies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.cli import EXIT_USAGE, SUBCOMMANDS, main


def test_python_dash_m_chainrule_runs_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chainrule", "toy", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"max_disagreement"' in done.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_has_no_restructuredtext_markup(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: chainrule " in out and "``" not in out


def test_a_missing_optional_package_names_the_extra_in_one_line(
    tmp_path: Path,
) -> None:
    # sys.modules[name] = None makes `import sklearn` fail as it does where chainrule was
    # installed without [data].
    done = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['sklearn'] = None; "
         "from chainrule.cli import main; sys.exit(main(['demo', '--out', 'x']))"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == EXIT_USAGE, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "chainrule[all]" in done.stderr and "sklearn" in done.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "interrupt",
    [
        "KeyboardInterrupt",
        "ImportError('initialization failed') from KeyboardInterrupt()",
        "ImportError('broken install')",
    ],
)
def test_ctrl_c_while_the_package_is_still_importing_is_one_line_and_130(interrupt: str) -> None:
    # The console script's entry point imports chainrule only inside main(): a Ctrl-C that
    # lands during that import (simulated here, deterministically; the second form is how
    # a pybind11 extension reports it) is caught there.
    script = (
        "import builtins, sys\n"
        "real = builtins.__import__\n"
        "def slow(name, *args, **kwargs):\n"
        "    if name == 'chainrule.cli':\n"
        f"        raise {interrupt}\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = slow\n"
        "import chainrule_launch\n"
        "sys.exit(chainrule_launch.main())\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    if interrupt == "ImportError('broken install')":  # a real failure keeps its traceback
        assert run.returncode == 1 and "ImportError: broken install" in run.stderr
        return
    assert run.returncode == 130
    assert "Traceback" not in run.stderr and run.stderr.count("\n") == 1
    assert "interrupted (Ctrl-C) while starting" in run.stderr


def test_the_console_script_runs_through_the_launcher() -> None:
    script = Path(sys.executable).parent / "chainrule"
    run = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0 and run.stdout.startswith("chainrule ")
    assert "chainrule_launch" in script.read_text()
