"""An explicit table of the tasks the paper uses (OGBench domains and robomimic tasks), and parsing of names.

OGBench task names are the ones ``ogbench.make_env_and_datasets`` accepts, e.g.
``puzzle-3x3-play-singletask-task2-v0`` (task 2) or ``scene-play-singletask-v0`` (the default task).
Dataset names drop the single-task words: ``puzzle-3x3-play-v0``.

robomimic task names are the authors' ``{task}-mh-low_dim``: ``lift-mh-low_dim``, ``can-mh-low_dim``,
``square-mh-low_dim`` (multi-human demonstrations, low-dimensional observations). They are single-task
names; their dataset is ``{task}/mh/low_dim_v15.hdf5`` under the robomimic data directory.
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


@dataclass(frozen=True)
class RobomimicDomain:
    """One robomimic task (multi-human demonstrations, low-dimensional observations) as the paper uses it.

    All three tasks share the agent presets of the ``robomimic`` domain, so :attr:`name` is ``"robomimic"``
    for each; :attr:`task` tells them apart.
    """

    task: str
    """Task key, e.g. ``"lift"``; also the dataset's directory name."""
    env_name: str
    """robosuite environment, e.g. ``"Lift"`` (the official dataset's ``env_args["env_name"]``)."""
    episode_length: int
    """Evaluation horizon of the authors' released code (lift 300, can 300, square 400)."""
    observation_dim: int
    """Size of concat(robot0_eef_pos, robot0_eef_quat, robot0_gripper_qpos, object): 19 or 23."""
    official_transitions: int
    """Transitions in the official ``low_dim_v15.hdf5`` (the paper's offline dataset size)."""
    name: str = "robomimic"
    """Domain key of the per-domain agent presets (shared by lift, can and square)."""
    sparse: bool = False
    """Rewards are already -1 until success and 0 at success; the sparse transform would change nothing."""
    action_dim: int = 7

    @property
    def dataset(self) -> str:
        """The dataset file relative to the robomimic data directory, e.g. ``"lift/mh/low_dim_v15.hdf5"``."""
        return f"{self.task}/mh/low_dim_v15.hdf5"

    @property
    def task_name(self) -> str:
        """The registry name, e.g. ``"lift-mh-low_dim"``."""
        return f"{self.task}-mh-low_dim"


ROBOMIMIC_TASKS: dict[str, RobomimicDomain] = {
    d.task_name: d
    for d in (
        RobomimicDomain("lift", "Lift", 300, 19, 31_127),
        RobomimicDomain("can", "PickPlaceCan", 300, 23, 62_756),
        RobomimicDomain("square", "NutAssemblySquare", 400, 23, 80_731),
    )
}
"""robomimic tasks by registry name (``lift-mh-low_dim`` ...)."""

_TASK_RE = re.compile(r"^(?P<domain>.+)-play-singletask(?:-task(?P<task>\d+))?-v0$")
_DATASET_RE = re.compile(r"^(?P<domain>.+)-play-v0$")


@dataclass(frozen=True)
class TaskSpec:
    """A parsed name: its domain (OGBench or robomimic) and, for OGBench single-task names, the task number."""

    name: str
    """The name as given, e.g. ``"puzzle-3x3-play-singletask-task2-v0"`` or ``"lift-mh-low_dim"``."""
    domain: OGBenchDomain | RobomimicDomain
    task: int | None
    """OGBench task number 1..5; ``None`` for the env's default task, a plain dataset name or a robomimic task."""
    singletask: bool

    @property
    def benchmark(self) -> str:
        """``"ogbench"`` or ``"robomimic"``: which loader and environment the name belongs to."""
        return "robomimic" if isinstance(self.domain, RobomimicDomain) else "ogbench"

    @property
    def dataset(self) -> str:
        """The dataset file stem (OGBench, e.g. ``"puzzle-3x3-play-v0"``) or relative path (robomimic, e.g.
        ``"lift/mh/low_dim_v15.hdf5"``)."""
        return self.domain.dataset


def _unknown(name: str) -> QchunkError:
    tasks = ", ".join(f"{d}-play-singletask-task[1-5]-v0" for d in DOMAINS)
    return QchunkError(f"unknown OGBench task or dataset {name!r}; supported: {tasks} (or the dataset names "
                       f"{', '.join(d.dataset for d in DOMAINS.values())}), and the robomimic tasks "
                       f"{', '.join(ROBOMIMIC_TASKS)}")


def parse_task(name: str) -> TaskSpec:
    """Parse an OGBench single-task name (``puzzle-3x3-play-singletask-task2-v0``) or dataset name
    (``puzzle-3x3-play-v0``), or a robomimic task name (``lift-mh-low_dim``). Raises :class:`QchunkError`
    for anything not in :data:`DOMAINS` or :data:`ROBOMIMIC_TASKS`."""
    if name in ROBOMIMIC_TASKS:
        return TaskSpec(name, ROBOMIMIC_TASKS[name], None, True)
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
