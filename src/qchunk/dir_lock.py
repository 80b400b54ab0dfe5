"""One writer per directory: an exclusive ``fcntl.flock`` on ``DIR/.qchunk.lock``, held for a whole run.

``train`` holds it on every run directory (each seed's of a multi-seed run), ``sweep`` on its ``--out``
directory (and each of its runs, through ``train``), ``eval`` on its output directory. A second process
that asks for a held lock gets a one-line :class:`~qchunk.errors.QchunkError` naming the holder's PID.

The lock belongs to the open file, so the operating system releases it when its holder exits in any way
(``kill -9`` included); a lock file left behind then blocks nothing, and the next holder takes it over.
A clean release removes the lock file (while still holding it; a process that opened the old file
notices that it no longer is the file at that path and tries again), and the directory too when the lock
created it and nothing else was written there. Within one process the lock is re-entrant (a sweep's run
holds its directory around ``train``, which takes it again).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from qchunk.errors import QchunkError

LOCK_FILE = ".qchunk.lock"

_held: dict[Path, list[int]] = {}  # resolved directory -> [fd, depth], this process's locks


def holder_pid(directory: str | os.PathLike) -> int | None:
    """The PID written in ``directory``'s lock file (None when absent or unreadable); not a test of the lock."""
    try:
        return int((Path(directory) / LOCK_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _acquire(lock: Path, what: str, directory: Path) -> int:
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = holder_pid(directory)
            raise QchunkError(f"{what} {directory} is in use by another qchunk process "
                              f"({'pid ' + str(pid) if pid else 'pid unknown'}); wait for it to finish or stop it"
                              ) from None
        except OSError:
            os.close(fd)
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder we waited behind removed the file: lock the new one
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


@contextlib.contextmanager
def hold(directory: str | os.PathLike, what: str = "run dir") -> Iterator[Path]:
    """Hold ``directory``'s lock (creating the directory) for the ``with`` block; yields the directory.

    Raises:
        QchunkError: another process holds it (the message names ``what``, the directory and the holder's
            PID), or the directory cannot be created or written.
    """
    path = Path(directory).expanduser()
    if path.exists() and not path.is_dir():
        raise QchunkError(f"{what} {path} is a file, not a directory; choose another {what}")
    key = path.resolve()
    if key in _held:
        _held[key][1] += 1
        try:
            yield path
        finally:
            _held[key][1] -= 1
        return
    created = [p for p in (path, *path.parents) if not p.exists()]  # deepest first
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = _acquire(path / LOCK_FILE, what, path)
    except OSError as e:
        _remove_empty(created)
        raise QchunkError(f"{what} {path} is not writable ({e.strerror or type(e).__name__}); choose another "
                          f"{what}") from None
    except QchunkError:
        _remove_empty(created)
        raise
    _held[key] = [fd, 1]
    try:
        yield path
    finally:
        del _held[key]
        with contextlib.suppress(OSError):
            os.unlink(path / LOCK_FILE)
        os.close(fd)
        _remove_empty(created)


def _remove_empty(created: list[Path]) -> None:
    for p in created:
        try:
            p.rmdir()
        except OSError:
            return
