"""An explicit table of the OGBench domains the paper uses, and parsing of task names.

Task names are the ones ``ogbench.make_env_and_datasets`` accepts, e.g.
``puzzle-3x3-play-singletask-task2-v0`` (task 2) or ``scene-play-singletask-v0`` (the default task).
Dataset names drop the single-task words: ``puzzle-3x3-play-v0``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qchunk.errors import QchunkError


@dataclass(frozen=True)
class OGBenchDomain:
    """One OGBench manipulation domain as the Q-chunking paper uses it."""

    name: str
    """Domain key, e.g. ``"puzzle-3x3"``; also the key of the per-domain agent presets."""
    env_id: str
    """Gymnasium id of the multi-goal environment that data collection uses, e.g. ``"puzzle-3x3-v0"``."""
    episode_length: int
    """Evaluation episode length of the single-task environment."""
    sparse: bool
    """Whether the paper trains on the sparse transform of the reward (r' = -1 if r != 0 else 0)."""
    default_episodes: int
    """Training episodes of the official ``play`` dataset (1001 steps each); validation adds 10%."""
    p_stack: tuple[float, float] | None
    """Range of the per-episode cube-stacking probability for the cube oracle (None: no cube oracle)."""
    oracles: tuple[str, ...]
    """OGBench plan oracles the data collection uses, keyed by the env's ``privileged/target_task``."""

    @property
    def dataset(self) -> str:
        """Name of the official play dataset, e.g. ``"puzzle-3x3-play-v0"``."""
        return f"{self.name}-play-v0"


DOMAINS: dict[str, OGBenchDomain] = {
    d.name: d
    for d in (
        OGBenchDomain("scene", "scene-v0", 750, True, 1000, (0.5, 0.5), ("cube", "button", "drawer", "window")),
        OGBenchDomain("puzzle-3x3", "puzzle-3x3-v0", 500, True, 1000, None, ("button",)),
        OGBenchDomain("cube-double", "cube-double-v0", 500, False, 1000, (0.0, 0.25), ("cube",)),
        OGBenchDomain("cube-triple", "cube-triple-v0", 1000, False, 3000, (0.05, 0.35), ("cube",)),
        OGBenchDomain("cube-quadruple", "cube-quadruple-v0", 1000, False, 1000, (0.1, 0.5), ("cube",)),
    )
}

_TASK_RE = re.compile(r"^(?P<domain>.+)-play-singletask(?:-task(?P<task>\d+))?-v0$")
_DATASET_RE = re.compile(r"^(?P<domain>.+)-play-v0$")


@dataclass(frozen=True)
class TaskSpec:
    """A parsed OGBench name: its domain and (for single-task names) the task number."""

    name: str
    """The name as given, e.g. ``"puzzle-3x3-play-singletask-task2-v0"``."""
    domain: OGBenchDomain
    task: int | None
    """Task number 1..5; ``None`` for the env's default task or for a plain dataset name."""
    singletask: bool

    @property
    def dataset(self) -> str:
        """The dataset file stem, e.g. ``"puzzle-3x3-play-v0"``."""
        return self.domain.dataset


def _unknown(name: str) -> QchunkError:
    tasks = ", ".join(f"{d}-play-singletask-task[1-5]-v0" for d in DOMAINS)
    return QchunkError(f"unknown OGBench task or dataset {name!r}; supported: {tasks} (or the dataset names "
                       f"{', '.join(d.dataset for d in DOMAINS.values())})")


def parse_task(name: str) -> TaskSpec:
    """Parse a single-task name (``puzzle-3x3-play-singletask-task2-v0``) or dataset name
    (``puzzle-3x3-play-v0``). Raises :class:`QchunkError` for anything not in :data:`DOMAINS`."""
    m = _TASK_RE.match(name)
    if m:
        domain = DOMAINS.get(m["domain"])
        if domain is None:
            raise _unknown(name)
        task = int(m["task"]) if m["task"] else None
        if task is not None and not 1 <= task <= 5:
            raise QchunkError(f"task number {task} in {name!r} is out of range; OGBench tasks are 1..5")
        return TaskSpec(name, domain, task, True)
    m = _DATASET_RE.match(name)
    if m and m["domain"] in DOMAINS:
        return TaskSpec(name, DOMAINS[m["domain"]], None, False)
    raise _unknown(name)
