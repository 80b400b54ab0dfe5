"""Reading run directories: ``config.json``, ``eval.csv`` and ``result.json``, and labelling runs for plots.

A run directory is any directory holding ``config.json`` (written by :func:`qchunk.training.train`); a
sweep directory is searched recursively for them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qchunk.agents.registry import display_name
from qchunk.errors import QchunkError, did_you_mean
from qchunk.training.run_dir import EVAL_CSV, RunDir, find_runs

#: Short names of settings in labels.
_SHORT = {"horizon": "h", "num_critics": "K", "utd": "UTD", "num_samples": "N", "alpha": "α"}

#: Train settings that never distinguish curves (bookkeeping, or varied by the grid itself).
_NOT_A_SETTING = {"env", "seed", "resume", "progress", "eval_workers", "eval_envs", "dataset_dir", "tensorboard",
                  "wandb", "log_every", "checkpoint_every", "overrides"}


@dataclass
class RunRecord:
    """One run directory, read."""

    path: Path
    train: dict[str, Any]
    """``config.json["train"]``: the resolved TrainConfig."""
    agent_config: dict[str, Any]
    """``config.json["agent"]``: the resolved agent config."""
    versions: dict[str, Any]
    steps: np.ndarray
    """Global step of each evaluation (offline gradient steps, then offline_steps + env steps), int64."""
    online: np.ndarray
    """Whether each evaluation is from the online phase, bool."""
    success: np.ndarray
    """Success rate of each evaluation in [0, 1], float64."""
    result: dict[str, Any] | None = None
    """``result.json`` once the run has finished."""
    label: str = ""
    """The curve this run belongs to (set by :func:`assign_labels`)."""
    metric: str = "success"
    """The eval.csv column :attr:`success` holds: ``success``, or for a task without a success signal (its
    success column is NaN) ``normalized_score`` where the task has reference scores, else ``return``."""

    @property
    def env(self) -> str:
        """The run's task name."""
        return str(self.train["env"])

    @property
    def agent(self) -> str:
        """The agent name (``qc-fql``)."""
        return str(self.train["agent"])

    @property
    def seed(self) -> int:
        """The run's seed."""
        return int(self.train.get("seed", 0))

    @property
    def offline_steps(self) -> int:
        """Offline gradient steps of the run (0 for online-only agents)."""
        return int(self.train.get("offline_steps") or 0)

    @property
    def online_steps(self) -> int:
        """Online environment steps of the run."""
        return int(self.train.get("online_steps") or 0)

    @property
    def domain(self) -> str:
        """Domain key (``cube-double``); the env name itself when it is not an OGBench task."""
        return task_of(self.env)[0]

    @property
    def task(self) -> str:
        """Task key within the domain (``task2``), or the env name."""
        return task_of(self.env)[1]

    @property
    def finished(self) -> bool:
        """Whether ``result.json`` says the run finished."""
        return bool(self.result and self.result.get("finished") is True)

    def setting(self, key: str) -> Any:
        """A setting by name: a TrainConfig field, else an agent field (resolved), else an override."""
        if key in self.train and key != "overrides":
            return self.train[key]
        if key in self.agent_config:
            return self.agent_config[key]
        return (self.train.get("overrides") or {}).get(key)

    def value_at_end_of(self, phase: str) -> float | None:
        """Success at the end of ``phase`` (``offline``: the eval at step offline_steps; ``online``: at the
        last step of the run), or None when the run has not got there (or has no such phase)."""
        if phase == "offline":
            if self.offline_steps == 0:
                return None
            target, mask = self.offline_steps, ~self.online
        else:
            if self.online_steps == 0:
                return None
            target, mask = self.offline_steps + self.online_steps, self.online
        hit = np.flatnonzero(mask & (self.steps == target))
        return float(self.success[hit[-1]]) if hit.size else None


def task_of(env: str) -> tuple[str, str]:
    """``cube-double-play-singletask-task2-v0`` -> ``("cube-double", "task2")``, ``lift-mh-low_dim`` ->
    ``("robomimic", "lift")``, ``gym:Hopper-v5`` -> ``("gym", "Hopper-v5")`` (``minari:<id>`` likewise); other
    names map to themselves."""
    for kind in ("-play-singletask-", "-navigate-singletask-"):  # antmaze-large-navigate-...: antmaze-large
        head, sep, rest = env.partition(kind)
        if sep and rest.endswith("-v0"):
            return head, rest[: -len("-v0")] or "task"
    task, sep, _ = env.partition("-mh-")
    if sep and task in ("lift", "can", "square"):
        return "robomimic", task
    family, sep, rest = env.partition(":")
    if sep and family in ("gym", "minari") and rest:  # gym:Hopper-v5 -> ("gym", "Hopper-v5")
        return family, rest
    return env, env


def find_run_dirs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Every directory at or under ``paths`` that holds a ``config.json`` (sorted, no duplicates).

    Raises:
        QchunkError: a path does not exist, or no run directory is found.
    """
    found: list[Path] = []
    paths = [Path(p).expanduser() for p in paths]
    for p in paths:
        if not p.exists():
            raise QchunkError(f"{p} does not exist")
        if not p.is_dir():
            raise QchunkError(f"{p} is not a directory (give run or sweep directories)")
        found.extend(run.path for run in find_runs(p))
    out = sorted(set(found))
    if not out:
        raise QchunkError(f"no runs under {', '.join(map(str, paths))} (a run directory holds config.json; "
                          "start runs with qchunk train or qchunk sweep)")
    return out


def read_run(path: Path) -> RunRecord:
    """Read one run directory.

    Raises:
        QchunkError: config.json is unreadable or not a qchunk run, or eval.csv is malformed.
    """
    run = RunDir(path)
    record = run.read()
    steps, online, success = [], [], []
    rows = run.rows(EVAL_CSV)
    metric = _metric_of(rows)
    for i, row in enumerate(rows):
        try:
            steps.append(int(row["step"]))
            online.append(row["phase"] == "online")
            success.append(float(row[metric]))
        except (KeyError, TypeError, ValueError):
            raise QchunkError(f"{run.file(EVAL_CSV)}: row {i + 2} lacks step/phase/{metric}") from None
    return RunRecord(path, record.train.to_dict(), record.agent, record.versions, np.asarray(steps, np.int64),
                     np.asarray(online, bool), np.asarray(success, np.float64), run.read_result(), metric=metric)


def _metric_of(rows: list[dict[str, str]]) -> str:
    """``success`` unless every row's success is NaN (a task without a success signal): then
    ``normalized_score`` when the rows have it, else ``return``."""
    def nan(v: str | None) -> bool:
        try:
            return v is not None and math.isnan(float(v))
        except ValueError:
            return False

    if rows and all(nan(r.get("success")) for r in rows):
        return "normalized_score" if rows[0].get("normalized_score") not in (None, "") else "return"
    return "success"


def load_runs(paths: Iterable[str | os.PathLike], by: str = "agent") -> list[RunRecord]:
    """Read every run under ``paths`` and label it (see :func:`assign_labels`)."""
    runs = [read_run(p) for p in find_run_dirs(paths)]
    assign_labels(runs, by)
    return runs


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join(_fmt(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _settings(run: RunRecord) -> dict[str, Any]:
    """The settings a user chose for a run: train fields plus explicitly overridden agent fields."""
    out = {k: v for k, v in run.train.items() if k not in _NOT_A_SETTING and k != "agent"}
    out.update({k: v for k, v in (run.train.get("overrides") or {}).items() if v is not None})
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in out.items()}


def assign_labels(runs: Sequence[RunRecord], by: str = "agent") -> None:
    """Set ``run.label`` for every run.

    ``by="agent"``: the agent's display name, plus the settings that differ between runs of that agent on
    the same task (``QC-FQL h=10``, ``QC K=10, UTD=5``), so a sweep's variants get their own curves.
    ``by="KEY[,KEY...]"``: the values of those settings (TrainConfig or agent fields), e.g. ``horizon`` or
    ``agent,num_critics``.

    Raises:
        QchunkError: an unknown key.
    """
    if by == "agent":
        varying: dict[str, set[str]] = {}
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in runs:
            groups.setdefault((r.agent, r.env), []).append(_settings(r))
        for (agent, _), settings in groups.items():
            keys = {k for s in settings for k in s}
            varying.setdefault(agent, set()).update(
                k for k in keys if len({repr(s.get(k)) for s in settings}) > 1)
        for r in runs:
            s = _settings(r)
            name = display_name(r.agent)
            keys = sorted(varying.get(r.agent, ()))
            r.label = name + (" " + ", ".join(f"{_SHORT.get(k, k)}={_fmt(s.get(k))}" for k in keys) if keys else "")
        return
    keys = [k.strip() for k in by.split(",") if k.strip()]
    if not keys:
        raise QchunkError("--by needs 'agent' or setting names such as horizon or agent,num_critics")
    for k in keys:
        if not any(k == "agent" or k in r.train or k in r.agent_config for r in runs):
            known = sorted({"agent", *(key for r in runs for key in (*r.train, *r.agent_config))})
            raise QchunkError(f"--by {k}: no run has a setting called {k!r}{did_you_mean(k, known)} (use TrainConfig "
                              "or agent field names)")
    for r in runs:
        parts = []
        for k in keys:
            if k == "agent":
                parts.append(display_name(r.agent))
            else:
                parts.append(f"{_SHORT.get(k, k)}={_fmt(r.setting(k))}")
        r.label = ", ".join(parts)
