"""Whose files a sweep directory holds: ``qchunk sweep --out DIR`` writes only into a directory of its own.

A sweep directory is qchunk's once it holds qchunk's ``sweep.json`` (a JSON object with the ``runs`` and
``created`` that :func:`qchunk.experiments.sweep.write_manifest` writes). Without it (a new directory, or
a sweep whose manifest was lost) the directory may hold only the sweep's lock and run directories; a
``sweep.json`` of another tool, or any other file, is the user's, and the sweep is refused in one line
naming it, before any work. Each planned run directory that holds no run yet must hold only the files
qchunk writes before a run (:meth:`qchunk.training.RunDir.check_owned`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from qchunk.dir_lock import LOCK_FILE
from qchunk.errors import QchunkError
from qchunk.ownership import foreign_entries, name_entries
from qchunk.training.run_dir import RunDir, find_runs

MANIFEST = "sweep.json"


def is_sweep_manifest(path: Path) -> bool:
    """Whether ``path`` is a ``sweep.json`` written by qchunk."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("runs"), list) and "created" in doc


def check_sweep_dir(out: Path, run_dirs: Iterable[Path]) -> None:
    """Refuse ``out`` (one line naming the files) when it holds files qchunk did not write; see the module doc.

    ``run_dirs``: the planned run directories under ``out``.
    """
    run_dirs = list(run_dirs)
    if out.exists() and not out.is_dir():
        raise QchunkError(f"--out {out} is a file, not a directory; choose another --out")
    manifest = out / MANIFEST
    if manifest.exists():
        if not is_sweep_manifest(manifest):
            raise QchunkError(f"--out {out} holds a {MANIFEST} that qchunk did not write; move it or choose another "
                              "--out")
    elif out.is_dir():
        planned = {p.relative_to(out).parts[0] for p in run_dirs}

        def ours(name: str) -> bool:
            return name == LOCK_FILE or name in planned or ((out / name).is_dir() and next(
                iter(find_runs(out / name)), None) is not None)

        foreign = foreign_entries(out, ours)
        if foreign:
            raise QchunkError(f"--out {out} holds files qchunk did not write and no {MANIFEST}: "
                              f"{name_entries(foreign)}; move them or choose another --out")
    for path in run_dirs:
        run = RunDir(path)
        if not run.holds_run():  # a run's own config.json is checked with its settings
            run.check_owned("--out")
