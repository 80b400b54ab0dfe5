"""Tasks as values: the explicit table of the tasks the paper uses and the one parser of their names.

:func:`get_task` turns a name into a :class:`Task` (cached; the only place names are parsed). Everything
below the entry points (CLI commands, :class:`qchunk.training.TrainConfig`) passes the :class:`Task` on:
``qchunk.data`` reads its dataset locator and observation layout, ``qchunk.envs`` builds its environment,
and neither imports the other. This module imports only the standard library and :mod:`qchunk.errors`.

OGBench task names are the ones ``ogbench.make_env_and_datasets`` accepts, e.g.
``puzzle-3x3-play-singletask-task2-v0`` (task 2) or ``scene-play-singletask-v0`` (the default task).
Dataset names drop the single-task words: ``puzzle-3x3-play-v0`` (a :class:`Task` with
``singletask=False``: it has data, not an environment).

robomimic task names are the authors' ``{task}-mh-low_dim``: ``lift-mh-low_dim``, ``can-mh-low_dim``,
``square-mh-low_dim`` (multi-human demonstrations, low-dimensional observations). Their dataset is
``{task}/mh/low_dim_v15.hdf5`` under the robomimic data directory.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from qchunk.errors import QchunkError, require

#: OGBench's default dataset directory (``<dir>/<dataset>.npz`` and ``<dir>/<dataset>-val.npz``).
OGBENCH_DATASET_DIR = "~/.ogbench/data"
#: robomimic's default dataset directory (``<dir>/<task>/mh/low_dim_v15.hdf5``).
ROBOMIMIC_DATASET_DIR = "~/.robomimic"
#: robomimic observation keys the paper concatenates, in order (``object`` is robosuite's ``object-state``);
#: the layout of both the dataset loader and the environment.
ROBOMIMIC_OBS_KEYS = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object")

OGBENCH_REWARD = ("OGBench's single-task reward: minus the number of subtasks not yet in their goal state "
                  "(0 at success)")
SPARSE_REWARD = "the sparse transform r' = -1 if r != 0 else 0 (-1 until success, 0 at success)"
ROBOMIMIC_REWARD = "-1 per step until success, 0 at success (the stored 0/1 rewards minus 1)"


@dataclass(frozen=True)
class OGBenchDomain:
    """One OGBench domain as the Q-chunking paper (manipulation) or the QAM paper (also the mazes) uses it."""

    name: str
    """Domain key, e.g. ``"puzzle-3x3"``; also the key of the per-domain agent presets."""
    env_id: str
    """Gymnasium id of the multi-goal environment that data collection uses, e.g. ``"puzzle-3x3-v0"``."""
    episode_length: int
    """Evaluation episode length of the single-task environment."""
    sparse: bool
    """Whether the paper trains on the sparse transform of the reward (r' = -1 if r != 0 else 0)."""
    default_episodes: int
    """Training episodes of the official dataset (``play``: 1001 steps each); validation adds 10%."""
    p_stack: tuple[float, float] | None
    """Range of the per-episode cube-stacking probability for the cube oracle (None: no cube oracle)."""
    oracles: tuple[str, ...]
    """OGBench plan oracles the data collection uses, keyed by the env's ``privileged/target_task``."""
    observation_dim: int
    """Size of the single-task env's state observation (measured on OGBench 1.1 envs)."""
    action_dim: int = 5
    """Arm (x, y, z, yaw) and gripper commands in [-1, 1] (manipulation); joint torques for the mazes."""
    dataset_type: str = "play"
    """OGBench dataset type in the names: ``play`` (manipulation, made by plan oracles) or ``navigate``
    (locomotion mazes, made by OGBench's pretrained expert policies, which cannot be fetched here)."""

    @property
    def dataset(self) -> str:
        """Name of the official dataset, e.g. ``"puzzle-3x3-play-v0"`` or ``"antmaze-large-navigate-v0"``."""
        return f"{self.name}-{self.dataset_type}-v0"

    @property
    def generable(self) -> bool:
        """Whether ``qchunk data ogbench`` can make the dataset locally (with OGBench's plan oracles)."""
        return bool(self.oracles)

    def task_name(self, task: int | None = None) -> str:
        """The single-task name of task ``task`` (1..5; None: the default task), e.g.
        ``"antmaze-large-navigate-singletask-task2-v0"``."""
        return f"{self.name}-{self.dataset_type}-singletask{'' if task is None else f'-task{task}'}-v0"


DOMAINS: dict[str, OGBenchDomain] = {
    d.name: d
    for d in (
        OGBenchDomain("scene", "scene-v0", 750, True, 1000, (0.5, 0.5), ("cube", "button", "drawer", "window"), 40),
        OGBenchDomain("puzzle-3x3", "puzzle-3x3-v0", 500, True, 1000, None, ("button",), 55),
        OGBenchDomain("cube-double", "cube-double-v0", 500, False, 1000, (0.0, 0.25), ("cube",), 37),
        OGBenchDomain("cube-triple", "cube-triple-v0", 1000, False, 3000, (0.05, 0.35), ("cube",), 46),
        OGBenchDomain("cube-quadruple", "cube-quadruple-v0", 1000, False, 1000, (0.1, 0.5), ("cube",), 55),
        # The QAM paper's five further domains. Navigate data comes from OGBench's expert policies (1000
        # episodes of 1001 steps; antmaze-giant 500 of 2001, humanoidmaze 1000 of 2001); its reward is
        # already -1 until the goal, 0 there.
        OGBenchDomain("puzzle-4x4", "puzzle-4x4-v0", 500, True, 1000, None, ("button",), 83),
        OGBenchDomain("antmaze-large", "antmaze-large-v0", 1000, False, 1000, None, (), 29, 8, "navigate"),
        OGBenchDomain("antmaze-giant", "antmaze-giant-v0", 1000, False, 500, None, (), 29, 8, "navigate"),
        OGBenchDomain("humanoidmaze-medium", "humanoidmaze-medium-v0", 2000, False, 1000, None, (), 69, 21,
                      "navigate"),
        OGBenchDomain("humanoidmaze-large", "humanoidmaze-large-v0", 2000, False, 1000, None, (), 69, 21,
                      "navigate"),
    )
}
"""OGBench domains by domain key."""


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


@dataclass(frozen=True)
class Task:
    """A parsed task name: everything the data loaders and environment factories need to know about it.

    Made by :func:`get_task` only; hashable and picklable (it travels to evaluation worker processes).
    """

    name: str
    """The name as given, e.g. ``"puzzle-3x3-play-singletask-task2-v0"`` or ``"lift-mh-low_dim"``."""
    benchmark: Literal["ogbench", "robomimic"]
    """Which loader and environment the task belongs to."""
    domain: OGBenchDomain | RobomimicDomain
    """The table entry; ``domain.name`` is the key of the per-domain agent presets."""
    task: int | None
    """OGBench task number 1..5; ``None`` for the env's default task, a dataset name or a robomimic task."""
    singletask: bool
    """An environment can be made for it (False for an OGBench dataset name such as ``puzzle-3x3-play-v0``)."""
    episode_length: int
    """Evaluation time limit in steps (e.g. 500 for puzzle-3x3, 300 for lift)."""
    sparse: bool
    """The paper's default for the sparse reward transform (sparse for scene and puzzle-3x3)."""
    observation_dim: int
    """Size of the flat float32 observation."""
    action_dim: int
    """Size of the action, each entry in [-1, 1]."""
    reward: str
    """What the reward is (the transform applied to the benchmark's own reward)."""

    @property
    def dataset(self) -> str:
        """The dataset file stem (OGBench, e.g. ``"puzzle-3x3-play-v0"``) or relative path (robomimic, e.g.
        ``"lift/mh/low_dim_v15.hdf5"``)."""
        return self.domain.dataset

    def dataset_dir(self, dataset_dir: str | os.PathLike | None = None) -> Path:
        """``dataset_dir`` with ``~`` expanded, or the benchmark's default (``~/.ogbench/data``, ``~/.robomimic``)."""
        default = ROBOMIMIC_DATASET_DIR if self.benchmark == "robomimic" else OGBENCH_DATASET_DIR
        return Path(os.path.expanduser(str(dataset_dir if dataset_dir is not None else default)))

    def dataset_path(self, dataset_dir: str | os.PathLike | None = None) -> Path:
        """The (training) dataset file in ``dataset_dir`` (default: the benchmark's directory):
        ``<dir>/<dataset>.npz`` for OGBench, ``<dir>/<task>/mh/low_dim_v15.hdf5`` for robomimic."""
        root = self.dataset_dir(dataset_dir)
        return root / self.dataset if self.benchmark == "robomimic" else root / f"{self.dataset}.npz"

    def validation_path(self, dataset_dir: str | os.PathLike | None = None) -> Path:
        """OGBench's validation file ``<dir>/<dataset>-val.npz`` (robomimic: the dataset file, whose
        ``mask/valid`` names the validation demos)."""
        if self.benchmark == "robomimic":
            return self.dataset_path(dataset_dir)
        return self.dataset_dir(dataset_dir) / f"{self.dataset}-val.npz"

    def require_singletask(self, needs: str = "environments need") -> Task:
        """``self`` if it names a single task; otherwise the QchunkError saying that ``needs`` (e.g.
        ``"training needs"``) a single-task name, with an example."""
        if not self.singletask:  # only OGBench dataset names (robomimic names are single tasks)
            raise QchunkError(f"{self.name!r} is a dataset name; {needs} a single-task name such as "
                              f"{self.domain.task_name(2)}")
        return self


def _unknown(name: str) -> QchunkError:
    tasks = ", ".join(d.task_name().replace("-v0", "-task[1-5]-v0") for d in DOMAINS.values())
    return QchunkError(f"unknown OGBench task or dataset {name!r}; supported: {tasks} (or the dataset names "
                       f"{', '.join(d.dataset for d in DOMAINS.values())}), and the robomimic tasks "
                       f"{', '.join(ROBOMIMIC_TASKS)}")


_TASK_RE = re.compile(r"^(?P<domain>.+)-(?P<type>play|navigate)-singletask(?:-task(?P<task>\d+))?-v0$")
_DATASET_RE = re.compile(r"^(?P<domain>.+)-(?P<type>play|navigate)-v0$")


def _ogbench_task(name: str, domain: OGBenchDomain, task: int | None, singletask: bool) -> Task:
    reward = f"{OGBENCH_REWARD}; by default {SPARSE_REWARD}" if domain.sparse else OGBENCH_REWARD
    return Task(name, "ogbench", domain, task, singletask, domain.episode_length, domain.sparse,
                domain.observation_dim, domain.action_dim, reward)


@functools.cache
def get_task(name: str) -> Task:
    """The :class:`Task` of a name (cached: the same object for the same name): an OGBench single-task
    name (``puzzle-3x3-play-singletask-task2-v0``), an OGBench dataset name (``puzzle-3x3-play-v0``) or a
    robomimic task name (``lift-mh-low_dim``).

    Raises:
        QchunkError: the name is not in :data:`DOMAINS` or :data:`ROBOMIMIC_TASKS` (the message lists the
            supported names), or its task number is not 1..5.
    """
    if not isinstance(name, str):
        raise TypeError(f"a task name must be a str, got {type(name).__name__}")
    if name in ROBOMIMIC_TASKS:
        d = ROBOMIMIC_TASKS[name]
        return Task(name, "robomimic", d, None, True, d.episode_length, d.sparse, d.observation_dim, d.action_dim,
                    ROBOMIMIC_REWARD)
    m = _TASK_RE.match(name)
    if m:
        domain = DOMAINS.get(m["domain"])
        if domain is None or domain.dataset_type != m["type"]:
            raise _unknown(name)
        task = int(m["task"]) if m["task"] else None
        if task is not None and not 1 <= task <= 5:
            raise QchunkError(f"task number {task} in {name!r} is out of range; OGBench tasks are 1..5")
        return _ogbench_task(name, domain, task, True)
    m = _DATASET_RE.match(name)
    if m and m["domain"] in DOMAINS and DOMAINS[m["domain"]].dataset_type == m["type"]:
        return _ogbench_task(name, DOMAINS[m["domain"]], None, False)
    raise _unknown(name)


def as_task(task: str | Task) -> Task:
    """``task`` itself if it is a :class:`Task`, else :func:`get_task` of the name (for callers that still
    pass names)."""
    return task if isinstance(task, Task) else get_task(task)


def parse_robomimic_env_args(raw: Any, where: str | os.PathLike) -> dict[str, Any]:
    """robomimic's environment metadata (a dataset's ``data.attrs["env_args"]``, JSON text or bytes) as a
    dict with ``env_name`` (robosuite env, e.g. ``"Lift"``), ``type`` (1 = robosuite), ``env_version`` and
    ``env_kwargs`` (the ``robosuite.make`` keyword arguments). QchunkError naming ``where`` if it is not."""
    require(raw is not None, f"{where}: data.attrs['env_args'] is missing; not a robomimic dataset")
    try:
        env_args = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (ValueError, UnicodeDecodeError):
        raise QchunkError(f"{where}: data.attrs['env_args'] is not valid JSON; the file is corrupt") from None
    require(isinstance(env_args, dict) and isinstance(env_args.get("env_name"), str)
            and isinstance(env_args.get("env_kwargs"), dict),
            f"{where}: data.attrs['env_args'] needs 'env_name' and 'env_kwargs'; not a robomimic dataset")
    return env_args
