"""What qchunk may write over: it replaces only what it wrote itself, or what the user asked it to replace.

- A dataset writer (``data collect``, ``data ogbench``, ``data robomimic``) refuses an output file that exists
  already unless ``--overwrite`` is given (:func:`refuse_existing`), before any work.
- A figure or report file (``plot``, ``report``, ``analyze trajectories``, ``bench --json``) is replaced only
  when it carries :data:`MARK` (or lies in a run's or sweep's own ``plots/``, ``report/`` or ``analysis/``:
  :func:`qchunk.training.run_dir.in_own_folder`; :func:`refuse_foreign_files`).
- A directory that qchunk fills (a run, a sweep, an ``eval`` output) is recognised as qchunk's by the file
  it writes first (``config.json`` of a run, ``sweep.json`` of a sweep, ``summary.json`` of an evaluation),
  read and checked to be qchunk's. A directory without it may hold only the files qchunk writes before it
  (its lock, a sweep's task marker); anything else there is the user's, and the directory is refused in
  one line naming those files (:func:`foreign_entries`, :func:`name_entries`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from qchunk.errors import QchunkError


def name_entries(names: Iterable[str], limit: int = 4) -> str:
    """``"a, b, c and 2 more"``: at most ``limit`` names of a listing, for a one-line message."""
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def foreign_entries(directory: str | os.PathLike, ours: Callable[[str], bool]) -> list[str]:
    """The names directly in ``directory`` for which ``ours(name)`` is false (none when it does not exist)."""
    path = Path(directory)
    if not path.is_dir():
        return []
    return sorted(p.name for p in path.iterdir() if not ours(p.name))


def refuse_existing(paths: Iterable[str | os.PathLike], flag: str = "--out", overwrite: bool = False) -> None:
    """Raise a one-line :class:`QchunkError` when any of ``paths`` exists and ``overwrite`` is false."""
    if overwrite:
        return
    there = [Path(p).expanduser() for p in paths if Path(p).expanduser().exists()]
    if there:
        what = name_entries(str(p) for p in there)
        raise QchunkError(f"{flag}: {what} exist{'s' if len(there) == 1 else ''} already; pass --overwrite to "
                          f"replace {'it' if len(there) == 1 else 'them'} or choose another {flag}")


MARK = "written-by-qchunk"
"""Carried inside every figure and report file qchunk writes (PNG text chunk, SVG/PDF/EPS creator, a
comment or key in text files), so that a later run recognises the file as one it may replace."""

def figure_metadata(fmt: str) -> dict[str, str] | None:
    """``savefig(metadata=...)`` for a figure in format ``fmt`` that carries :data:`MARK` (none for formats whose
    writer takes no metadata, such as JPEG: such a file is recognised only inside a run's or sweep's own folders)."""
    if fmt == "png":
        return {"Software": MARK}
    return {"Creator": MARK} if fmt in ("pdf", "svg", "ps", "eps") else None


def written_by_qchunk(path: str | os.PathLike) -> bool:
    """Whether the file ``path`` carries :data:`MARK` (False when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return MARK.encode() in f.read(64 << 20)
    except OSError:
        return False


def refuse_foreign_files(paths: Iterable[str | os.PathLike], flag: str = "--out",
                         also: Callable[[Path], bool] | None = None) -> None:
    """Raise a one-line :class:`QchunkError` when any of ``paths`` exists and qchunk did not write it
    (``also(path)``: another test that recognises a file as qchunk's, e.g. one written before :data:`MARK`)."""
    foreign = [str(Path(p)) for p in paths if Path(p).exists() and not written_by_qchunk(p)
               and not (also is not None and also(Path(p)))]
    if foreign:
        it = "it" if len(foreign) == 1 else "them"
        raise QchunkError(f"{flag}: {name_entries(foreign)} exist{'s' if len(foreign) == 1 else ''} and qchunk did "
                          f"not write {it}; move {it} or choose another {flag}")
