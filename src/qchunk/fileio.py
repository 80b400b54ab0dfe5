"""Atomic file writes: a temp file in the target directory, fsync, then ``os.replace``.

A reader (or a resumed run) therefore sees either the old complete file or the new complete file,
never a half-written one, even if the process is killed mid-write.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from qchunk.errors import QchunkError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_file(directory: str | os.PathLike, prefix: str, suffix: str = ".tmp") -> Path:
    """A new empty file in ``directory`` with a unique name and a normal write's permissions (``0o666`` less the
    umask; :func:`tempfile.mkstemp` alone makes it private, ``0o600``), for a writer that renames it into place."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to ``path`` for a writer that wants a file name (h5py, say); on clean exit the
    file there is fsynced and replaces ``path`` atomically. On an exception it is removed and ``path`` is
    left untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_file(path.parent, f".{path.name}.")
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on clean exit it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f
        f.flush()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_savez(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], compressed: bool = True) -> None:
    """Save ``arrays`` as an ``.npz`` at ``path`` atomically (compressed by default, as OGBench)."""
    with atomic_open(path, "wb") as f:
        (np.savez_compressed if compressed else np.savez)(f, **arrays)


def require_writable(path: str | os.PathLike, what: str, *, is_dir: bool) -> Path:
    """Check, before any work, that ``path`` can be written; raise a one-line :class:`QchunkError` naming
    ``what`` (the flag, e.g. ``"--json"``) otherwise. Returns ``path`` with ``~`` expanded.

    ``is_dir``: ``path`` is a directory to write files into (else a file to write). An existing path must be
    of that kind. For a path that does not exist yet, its nearest existing ancestor must be a directory
    (not a file). Writability is tested by creating and removing a temporary file in the directory that
    would receive the first write (the path itself, its parent, or that ancestor), since permission bits
    say nothing for root or for special file systems such as ``/proc``. Nothing is left behind.
    """
    p = Path(path).expanduser()
    if p.exists():
        if is_dir and not p.is_dir():
            raise QchunkError(f"{what} {p} is a file, not a directory; give a directory")
        if not is_dir and p.is_dir():
            raise QchunkError(f"{what} {p} is a directory; give a file name")
    probe = p if is_dir and p.is_dir() else p.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise QchunkError(f"{what} {p} lies under {probe}, which is a file; choose another path")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".qchunk-write-check-", dir=probe)
    except OSError as e:
        raise QchunkError(f"{what} {p} cannot be written ({probe}: {e.strerror or type(e).__name__}); choose a "
                          "writable path") from None
    os.close(fd)
    os.unlink(tmp)
    return p
