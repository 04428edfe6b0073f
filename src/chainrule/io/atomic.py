"""Atomic file writes, and the clean-up of temporaries that killed writers left behind.

``atomic_write`` writes to a hidden temporary next to the target (``.NAME.<12 hex>.tmp``,
the same folder, so the same file system and ``os.replace`` is an atomic rename), flushes
and fsyncs it, then renames it over the target. A crash or a full disk leaves either the
old file or the new one, never half of one; ``os.replace`` replaces a symbolic link at the
target by the new file and never writes through it.

A writer killed with ``kill -9`` (or by a power cut) cannot remove its temporary. The next
write to the same target removes such leftovers, safely with concurrent writers: each
writer holds an exclusive ``flock`` on its temporary for as long as it writes, and only
temporaries that nobody holds are removed (a lock dies with its process). A writer checks,
once it holds its lock, that its temporary is still the file at its name, so a clean-up
between its ``open`` and its ``flock`` costs a retry, not a failed save. Where ``flock``
does not exist (Windows) only leftovers older than ``STALE_SECONDS`` are removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

if sys.platform != "win32":
    import fcntl

PathLike = str | os.PathLike[str]
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows only: no newline translation
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: Without file locks, a temporary this old is taken as a dead writer's.
STALE_SECONDS = 3600.0


def temporary_pattern(target: Path) -> re.Pattern[str]:
    """The names of ``atomic_write``'s temporaries for ``target`` (and nothing else)."""
    return re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]{{12}}\.tmp")


def _lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` without waiting; False if another holds it."""
    if sys.platform == "win32":  # pragma: no cover - no flock
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def remove_stale_temporaries(target: PathLike) -> list[Path]:
    """Remove the temporaries of earlier, dead writes to ``target``; return what was removed.

    Only regular files whose names match ``temporary_pattern`` are touched, never a
    symbolic link's target, and never a temporary a live writer holds locked.
    """
    target = Path(target)
    pattern = temporary_pattern(target)
    removed: list[Path] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        if not pattern.fullmatch(name):
            continue
        candidate = target.parent / name
        try:
            fd = os.open(candidate, os.O_RDONLY | _O_NOFOLLOW | _O_BINARY)
        except OSError:  # gone already, a symbolic link, or not ours to read
            continue
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                continue
            if sys.platform == "win32" and time.time() - info.st_mtime < STALE_SECONDS:
                continue  # pragma: no cover - without locks, only old leftovers go
            if not _lock(fd):
                continue  # a live writer is writing it
            # Still the same file at that name (not replaced while we opened it)?
            with contextlib.suppress(OSError):
                if os.stat(candidate, follow_symlinks=False).st_ino == info.st_ino:
                    os.unlink(candidate)
                    removed.append(candidate)
        finally:
            os.close(fd)
    return removed


def _create_temporary(target: Path) -> tuple[Path, int]:
    """A new temporary next to ``target``, open for writing and locked by this process."""
    while True:
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            # Mode 0o666 honours the umask, unlike tempfile.mkstemp's 0o600: the file gets
            # the same permissions as any file the user creates.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue
        if sys.platform != "win32":
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until the file is closed
        try:
            same = os.stat(tmp, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except OSError:
            same = False
        if same:
            return tmp, fd
        os.close(fd)  # pragma: no cover - another writer's clean-up took it; try anew


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write a file through ``write(fileobj)`` so that ``path`` is never half-written.

    If ``write`` raises (or the process is interrupted), the temporary is removed and
    ``path`` is left untouched. Temporaries of earlier writers that were killed are
    removed first (see the module's docstring).

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist.
        IsADirectoryError: ``path`` is a folder.
        OSError: the folder is not writable, the disk is full, ...
    """
    target = Path(path)
    directory = target.parent
    if not directory.is_dir():
        raise FileNotFoundError(
            f"cannot write '{target}': the directory '{directory}' does not exist; "
            "create it first (e.g. os.makedirs)."
        )
    if target.is_dir() and not target.is_symlink():
        raise IsADirectoryError(f"cannot write '{target}': it is a folder; name a file in it")
    remove_stale_temporaries(target)
    tmp, fd = _create_temporary(target)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # data on disk before the rename makes it visible
            if sys.platform != "win32":
                # Renamed while still open (and locked), so no clean-up can take it first.
                os.replace(tmp, target)
        if sys.platform == "win32":  # pragma: no cover - Windows cannot rename an open file
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def atomic_savefig(fig: Any, path: PathLike, dpi: int = 110) -> None:
    """Save a matplotlib figure as a PNG through ``atomic_write``: a Ctrl-C or a full disk
    leaves the old picture (or none), never half of one."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on a directory
        pass
    finally:
        os.close(fd)
