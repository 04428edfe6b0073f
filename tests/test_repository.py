"""Standing checks on the repository itself: it works from any folder on any machine."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Folders of one machine's file system: a path under one of them works only there. Built
# from parts so that this file does not match itself.
_MACHINE_ROOTS = ("work", "root", "home", "tmp", "Users", "opt", "mnt", "srv")
MACHINE_PATH = re.compile(
    r"(?<![\w.~/-])/(?:" + "|".join(_MACHINE_ROOTS) + r")/[\w.-]+|[A-Za-z]:\\\\?Users\\\\?\w+"
)
# What a checkout holds when git cannot list it (an unpacked sdist, a copied folder).
_SKIP = {".git", ".venv", "venv", "build", "dist", "runs", "__pycache__", ".mypy_cache",
         ".ruff_cache", ".pytest_cache", ".hypothesis", ".ipynb_checkpoints"}  # fmt: skip


def _tracked_files() -> list[Path]:
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is not None and done.returncode == 0 and done.stdout:
        return [ROOT / name for name in done.stdout.decode().split("\0") if name]
    # Not a git checkout (or no git): every file of the source tree outside build outputs.
    return [
        p
        for p in ROOT.rglob("*")
        if p.is_file() and not any(part in _SKIP or part.endswith(".egg-info") for part in p.parts)
    ]


def machine_paths(files: list[Path]) -> list[str]:
    """``file:line: text`` for every absolute path of a machine in the text files given."""
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):  # binary (pictures) or gone: not source text
            continue
        for number, line in enumerate(text.splitlines(), 1):
            match = MACHINE_PATH.search(line)
            if match:
                found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)}")
    return found


def test_no_tracked_file_names_an_absolute_path_of_a_machine() -> None:
    files = _tracked_files()
    assert len(files) > 50, files  # the listing found the checkout
    found = machine_paths(files)
    assert not found, (
        "these files name a path of one machine (find files relative to the package, "
        "tmp_path or sys.executable instead):\n" + "\n".join(found)
    )


def test_the_path_check_catches_the_defect_it_guards_against(tmp_path: Path) -> None:
    # The pattern that broke every fresh clone, and the generic text that must pass.
    bad = tmp_path / "bad.py"
    bad.write_text('CONSOLE_SCRIPT = Path("/' + 'work/main/.venv/bin/chainrule")\n')
    good = tmp_path / "good.py"
    good.write_text(
        'p = Path(sys.executable).parent / "chainrule"  # ~/.cache/chainrule, a/tmp/b, '
        "https://example.org/home/page\n"
    )
    root_files = [bad, good]
    found = [
        line for path in root_files for line in path.read_text().splitlines()
        if MACHINE_PATH.search(line)
    ]  # fmt: skip
    assert found == [bad.read_text().strip()]
