"""The sweep's manifest ``OUT/sweep.json``: the grid, how it was launched, and every run directory under it."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
from pathlib import Path
from typing import Any

from qchunk.errors import QchunkError
from qchunk.experiments.sweep_plan import SweepArgs, SweepPlan
from qchunk.fileio import atomic_write_json
from qchunk.training.settings_diff import flat_settings

#: The sweep's manifest in the sweep directory: the grid and how it was launched.
MANIFEST = "sweep.json"


def write_manifest(plan: SweepPlan, args: SweepArgs | None) -> None:
    """Record the grid in ``OUT/sweep.json``, atomically, so that it describes every run directory on disk.

    The run list is merged: entries of earlier invocations are kept (a sweep that adds runs), the planned
    runs are (re)described, and a run directory under ``OUT`` that neither lists (``sweep.json`` lost or
    damaged) is described from its ``config.json``. Call it only after :func:`check_settings_on_disk`.
    """
    path = plan.out / MANIFEST
    old: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        old = json.loads(path.read_text())
    old = old if isinstance(old, dict) else {}
    runs = {r["dir"]: r for r in old.get("runs", []) if isinstance(r, dict) and "dir" in r}
    runs.update({str(r.rel_dir): r.to_dict() for r in plan.runs})
    for rel, entry in runs_on_disk(plan.out).items():
        runs.setdefault(rel, entry)
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    atomic_write_json(path, {
        "name": plan.name, "recipe": plan.recipe.name if plan.recipe else None,
        "created": old.get("created", now), "updated": now,
        "args": dataclasses.asdict(args) if args is not None else old.get("args"),
        "runs": list(runs.values())})


def runs_on_disk(out: Path) -> dict[str, dict[str, Any]]:
    """Manifest entries for the run directories under ``out``, read from their ``config.json``."""
    from qchunk.training import RESUME_FREE_FIELDS, find_runs
    from qchunk.training.config import TrainConfig

    entries = {}
    for run in find_runs(out):
        try:
            cfg = run.read().train
        except QchunkError:
            continue
        rel = run.path.relative_to(out)
        have = flat_settings(cfg.to_dict())
        default = flat_settings(TrainConfig(agent=cfg.agent, env=cfg.env, seed=cfg.seed).to_dict())
        agent, label = have["agent"], rel.parent.name
        entries[str(rel)] = {
            "dir": str(rel), "env": have["env"], "agent": agent, "seed": have["seed"],
            "variant": label.removeprefix(f"{agent}-") if label != agent else "",
            "settings": {k: v for k, v in have.items()
                         if k not in RESUME_FREE_FIELDS | {"agent", "env", "seed"} and v != default.get(k)}}
    return entries

