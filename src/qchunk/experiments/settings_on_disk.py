"""Settings on disk: a sweep refuses run directories that hold a run made with other settings than it plans."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from qchunk.errors import QchunkError
from qchunk.experiments.sweep_plan import SweepPlan
from qchunk.training.run_dir import CONFIG_FILE
from qchunk.training.settings_diff import setting_differences as training_differences
from qchunk.training.settings_diff import summarize_differences


def setting_differences(on_disk: dict[str, Any], planned: dict[str, Any], free: Iterable[str] = ()) -> list[str]:
    """``"offline_steps: 100 on disk, 300 now"`` for every setting in which two ``TrainConfig.to_dict()``
    differ, except the ``free`` fields (those that may change on resume)."""
    return training_differences(on_disk, planned, free, there="on disk")


def settings_conflicts(plan: SweepPlan) -> dict[Path, list[str]]:
    """The planned runs whose directory already holds a run made with other settings.

    Compares each run's resolved :class:`~qchunk.training.TrainConfig` with the ``"train"`` section of its
    ``config.json`` (fields in :data:`qchunk.training.RESUME_FREE_FIELDS` may differ). Reads files only.

    Returns:
        ``{run_dir: ["offline_steps: 100 on disk, 300 now", ...]}`` for each conflicting run (empty: none).

    Raises:
        QchunkError: a planned run directory is a file or holds a ``config.json`` that cannot be read.
    """
    from qchunk.training import RESUME_FREE_FIELDS, RunDir

    conflicts: dict[Path, list[str]] = {}
    for spec in plan.runs:
        run = RunDir(plan.out / spec.rel_dir)
        if run.path.exists() and not run.path.is_dir():
            raise QchunkError(f"{run.path} is a file where the sweep puts a run directory; move it away or choose "
                              "another --out")
        if not run.holds_run():
            continue
        try:
            on_disk = run.read().train.to_dict()
        except QchunkError:
            raise QchunkError(f"{run.file(CONFIG_FILE)} is unreadable, so the sweep cannot tell which settings "
                              "made that run; move that run directory away or choose another --out") from None
        planned = spec.config(resume=True, progress=False).resolved().to_dict()
        diff = setting_differences(on_disk, planned, RESUME_FREE_FIELDS)
        if diff:
            conflicts[run.path] = diff
    return conflicts


def check_settings_on_disk(plan: SweepPlan, conflicts: dict[Path, list[str]] | None = None, stream=None) -> None:
    """Refuse a sweep whose run directories hold runs made with other settings: one line per such run on
    ``stream`` (default stderr), then a one-line QchunkError. Nothing is written.

    ``conflicts``: the result of :func:`settings_conflicts` when already computed."""
    conflicts = settings_conflicts(plan) if conflicts is None else conflicts
    if not conflicts:
        return
    stream = stream or sys.stderr
    for path, diff in conflicts.items():
        print(f"{path}: made with other settings ({summarize_differences(diff)})", file=stream)
    n = len(conflicts)
    raise QchunkError(f"{n} run{'s' if n > 1 else ''} in {plan.out} {'were' if n > 1 else 'was'} made with other "
                      "settings than this sweep's; sweep with the settings they were made with, or choose another "
                      "--out")

