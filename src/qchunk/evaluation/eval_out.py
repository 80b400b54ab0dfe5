"""Whose files an ``qchunk eval`` output directory holds: an evaluation replaces only an earlier one.

An output directory is qchunk's once it holds the ``summary.json`` that ``qchunk eval`` writes (a JSON
object with ``run_dir`` and ``checkpoint_step``); then its ``episodes.csv``, ``summary.json`` and
``videos/episode_*.mp4`` are replaced by the new evaluation. Without it the directory may hold only the
lock (:mod:`qchunk.dir_lock`); anything else is the user's, and ``eval`` is refused in one line
naming it, before any episode runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from qchunk.dir_lock import LOCK_FILE
from qchunk.errors import QchunkError
from qchunk.ownership import foreign_entries, name_entries

SUMMARY = "summary.json"


def is_eval_summary(path: Path) -> bool:
    """Whether ``path`` is a ``summary.json`` written by ``qchunk eval``."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and {"run_dir", "checkpoint_step"} <= set(doc)


def check_eval_out(out: Path) -> None:
    """Refuse ``out`` when it is a file or holds files ``qchunk eval`` did not write (see the module doc)."""
    if out.exists() and not out.is_dir():
        raise QchunkError(f"--out {out} is a file, not a directory; choose another --out")
    if is_eval_summary(out / SUMMARY):
        return
    foreign = foreign_entries(out, lambda name: name == LOCK_FILE)
    if foreign:
        raise QchunkError(f"--out {out} holds files qchunk eval did not write: {name_entries(foreign)}; move them or "
                          "choose another --out")
