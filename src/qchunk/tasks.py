"""Tasks as values: the open task registry, the explicit table of the tasks the paper uses, and the one
parser of task names.

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

Open tasks are entries of the same registry: :func:`register` adds a task from Python (env factory or
gymnasium id, dataset source, episode length, reward transform, success signal, the domain whose agent
presets it inherits), and two open families take any id: ``gym:<gymnasium id>`` (``gym:Hopper-v5``) and
``minari:<dataset id>`` (the environment a local Minari dataset recorded). Their action bounds, when not
[-1, 1], are rescaled by :class:`ActionScale` for the environment and the dataset alike. gymnasium and
minari are imported lazily, only for those families (the built-in tasks need neither).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from qchunk.errors import QchunkError, did_you_mean, require

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
class OpenDomain:
    """The domain of a task outside the paper's benchmarks: a gymnasium id, a Minari dataset's environment
    or a task registered with :func:`register`."""

    name: str
    """Domain whose per-domain agent presets the task inherits (``alpha`` / ``N``), e.g. ``"cube-double"``."""
    sparse: bool = False
    """Default of ``--sparse`` (the transform r' = -1 if r != 0 else 0)."""
    dataset: str | None = None
    """The task's own dataset source (``minari:<id>`` or a file), or None (``--dataset`` names it)."""
    observation_dim: int = 0
    action_dim: int = 0


#: The domain open tasks inherit their agent presets from unless :func:`register` says otherwise.
DEFAULT_OPEN_DOMAIN = "cube-double"


@dataclass(frozen=True)
class ActionScale:
    """The affine map between an environment's action box ``[low, high]`` and the agents' ``[-1, 1]``.

    The one rescaling of qchunk: the environment wrapper (:class:`qchunk.envs.rescale.UnitActions`) maps the
    agent's actions through :meth:`from_unit`, and the dataset loaders map stored actions through
    :meth:`to_unit`, so data and environment agree. ``low`` and ``high`` are finite with ``high > low``.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]

    @classmethod
    def of_bounds(cls, low, high, where: str) -> ActionScale | None:
        """The scale of bounds ``low``/``high`` (arrays of shape ``(A,)``), or None when they are [-1, 1].

        Raises:
            QchunkError: a bound is infinite or NaN (unbounded actions cannot be mapped onto [-1, 1]), or
                ``high <= low``.
        """
        lo, hi = np.asarray(low, np.float64).reshape(-1), np.asarray(high, np.float64).reshape(-1)
        require(bool(np.isfinite(lo).all() and np.isfinite(hi).all()),
                f"{where}: the action space is unbounded (low {lo.min():.4g}, high {hi.max():.4g}); qchunk's "
                "policies emit actions in [-1, 1] and need finite bounds: register the task with an env factory "
                "that clips or rescales the actions into a bounded Box")
        require(bool((hi > lo).all()), f"{where}: the action space has high <= low in some dimension")
        if np.all(lo == -1.0) and np.all(hi == 1.0):
            return None
        return cls(tuple(float(x) for x in lo), tuple(float(x) for x in hi))

    def to_unit(self, actions: np.ndarray) -> np.ndarray:
        """Raw actions ``(..., A)`` in ``[low, high]`` -> ``(..., A)`` in ``[-1, 1]`` (float32)."""
        lo, hi = np.asarray(self.low), np.asarray(self.high)
        return (2.0 * (np.asarray(actions, np.float64) - lo) / (hi - lo) - 1.0).astype(np.float32)

    def from_unit(self, actions: np.ndarray) -> np.ndarray:
        """Agent actions ``(..., A)`` in ``[-1, 1]`` -> ``(..., A)`` in ``[low, high]`` (float32, clipped)."""
        lo, hi = np.asarray(self.low), np.asarray(self.high)
        unit = np.clip(np.asarray(actions, np.float64), -1.0, 1.0)
        return (lo + (unit + 1.0) * 0.5 * (hi - lo)).astype(np.float32)


@dataclass(frozen=True)
class Task:
    """A parsed task name: everything the data loaders and environment factories need to know about it.

    Made by :func:`get_task` only; hashable and picklable (it travels to evaluation worker processes).
    """

    name: str
    """The name as given, e.g. ``"puzzle-3x3-play-singletask-task2-v0"`` or ``"lift-mh-low_dim"``."""
    benchmark: Literal["ogbench", "robomimic", "gym", "minari", "registered"]
    """Which loader and environment the task belongs to (``gym``: ``gym:<id>``; ``minari``: ``minari:<id>``;
    ``registered``: :func:`register`)."""
    domain: OGBenchDomain | RobomimicDomain | OpenDomain
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
    # Open tasks (gymnasium ids, Minari datasets, tasks registered from Python); the defaults fit the built-ins.
    env_id: str | None = None
    """``gym``: the gymnasium id (``"Hopper-v5"``); ``minari``: the dataset's recorded env spec (JSON)."""
    env_factory: Callable[[], Any] | None = None
    """``registered``: ``() -> gymnasium.Env`` building the raw environment (module-level, so that it pickles
    into evaluation worker processes)."""
    source: str | None = None
    """The offline dataset when ``--dataset`` is not given (``"minari:<id>"`` or a file path), or None."""
    action_low: tuple[float, ...] | None = None
    """The raw environment's lower action bounds when they are not -1 (see :attr:`action_scale`)."""
    action_high: tuple[float, ...] | None = None
    """The raw environment's upper action bounds when they are not 1."""
    success: str | Callable[[dict], bool] | None = "success"
    """The success signal: an ``info`` key read at episode ends (default ``"success"``: the episode counts
    as solved when ``info["success"]`` is true; an env that never reports the key has no success rate),
    a callable ``info -> bool``, or None (no success rate: evaluation reports the return)."""
    reward_transform: Callable[[np.ndarray], np.ndarray] | None = None
    """``rewards (N,) -> rewards (N,)`` applied to the environment's and the dataset's rewards alike."""
    ref_scores: tuple[float, float] | None = None
    """(random, expert) reference returns; evaluation then reports ``normalized_score`` =
    (return - random) / (expert - random) (Minari's and D4RL's normalisation, 0 random, 1 expert)."""

    @property
    def action_scale(self) -> ActionScale | None:
        """The map between the raw environment's action box and the agents' [-1, 1] (None: the bounds are
        already [-1, 1])."""
        if self.action_low is None or self.action_high is None:
            return None
        return ActionScale(self.action_low, self.action_high)

    def normalized_score(self, episode_return: float) -> float | None:
        """``(episode_return - random) / (expert - random)`` with :attr:`ref_scores`, or None without them."""
        if self.ref_scores is None:
            return None
        lo, hi = self.ref_scores
        return (float(episode_return) - lo) / (hi - lo)

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
    known = [*(d.task_name(i) for d in DOMAINS.values() for i in range(1, 6)), *(d.dataset for d in DOMAINS.values()),
             *ROBOMIMIC_TASKS]
    return QchunkError(f"unknown OGBench task or dataset {name!r}{did_you_mean(name, known)}; supported: {tasks} "
                       f"(or the dataset names "
                       f"{', '.join(d.dataset for d in DOMAINS.values())}), and the robomimic tasks "
                       f"{', '.join(ROBOMIMIC_TASKS)}; or gym:<gymnasium id>, minari:<dataset id>, or a task "
                       "registered with qchunk.tasks.register")


_TASK_RE = re.compile(r"^(?P<domain>.+)-(?P<type>play|navigate)-singletask(?:-task(?P<task>\d+))?-v0$")
_DATASET_RE = re.compile(r"^(?P<domain>.+)-(?P<type>play|navigate)-v0$")


def _ogbench_task(name: str, domain: OGBenchDomain, task: int | None, singletask: bool) -> Task:
    reward = f"{OGBENCH_REWARD}; by default {SPARSE_REWARD}" if domain.sparse else OGBENCH_REWARD
    return Task(name, "ogbench", domain, task, singletask, domain.episode_length, domain.sparse,
                domain.observation_dim, domain.action_dim, reward)


@functools.cache
def get_task(name: str) -> Task:
    """The :class:`Task` of a name (cached: the same object for the same name): a task registered with
    :func:`register`, ``gym:<gymnasium id>`` (e.g. ``gym:Hopper-v5``), ``minari:<Minari dataset id>`` (the
    environment the local dataset recorded), or a built-in name: an OGBench single-task name
    (``puzzle-3x3-play-singletask-task2-v0``), an OGBench dataset name (``puzzle-3x3-play-v0``) or a
    robomimic task name (``lift-mh-low_dim``).

    Raises:
        QchunkError: an unknown name (the message lists the supported names), an OGBench task number not
            in 1..5, an unknown gymnasium id or Minari dataset, a missing extra, or spaces qchunk cannot use.
    """
    if not isinstance(name, str):
        raise TypeError(f"a task name must be a str, got {type(name).__name__}")
    if name in _REGISTERED:
        return _REGISTERED[name]
    prefix, sep, _ = name.partition(":")
    if sep and f"{prefix}:" in _FAMILIES:
        return _FAMILIES[f"{prefix}:"](name)
    return _table_task(name)


def _table_task(name: str) -> Task:
    """The built-in task of a name: an OGBench single-task
    name (``puzzle-3x3-play-singletask-task2-v0``), an OGBench dataset name (``puzzle-3x3-play-v0``) or a
    robomimic task name (``lift-mh-low_dim``).

    Raises:
        QchunkError: the name is not in :data:`DOMAINS` or :data:`ROBOMIMIC_TASKS` (the message lists the
            supported names), or its task number is not 1..5.
    """
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


# ------------------------------------------------------------------------------------------- the open registry
#: Tasks registered from Python (:func:`register`), by name.
_REGISTERED: dict[str, Task] = {}

GYM_PREFIX = "gym:"
MINARI_PREFIX = "minari:"
_GYM_EXTRA = "pip install 'gymnasium[mujoco]' (or qchunk[minari]; the dev extra has both)"
_MINARI_EXTRA = "pip install minari (or qchunk[minari]; the dev extra has it)"


def _space_bounds(space: Any, kind: str, where: str) -> tuple[tuple[int, ...], Any, Any]:
    """(shape, low, high) of a gymnasium ``Box`` ``space`` (duck-typed: no gymnasium import); QchunkError
    for any other space or a non-flat one."""
    require(type(space).__name__ == "Box" and hasattr(space, "low"),
            f"{where}: the {kind} space is a {type(space).__name__}; qchunk needs a flat Box (register the task "
            "with an env factory that wraps the env in gymnasium.wrappers.FlattenObservation)")
    shape = tuple(int(x) for x in space.shape)
    require(len(shape) == 1, f"{where}: the {kind} space has shape {shape}; qchunk needs flat vectors (wrap the "
                             "env in gymnasium.wrappers.FlattenObservation and register it with an env factory)")
    return shape, space.low, space.high


def _open_task(name: str, benchmark: str, observation_space: Any, action_space: Any, episode_length: int,
               *, domain: str = DEFAULT_OPEN_DOMAIN, sparse: bool = False, reward: str = "the environment's reward",
               **fields: Any) -> Task:
    """A :class:`Task` for an open task from its raw environment's spaces (checked here)."""
    (obs_dim,), _, _ = _space_bounds(observation_space, "observation", name)
    (act_dim,), low, high = _space_bounds(action_space, "action", name)
    scale = ActionScale.of_bounds(low, high, name)
    if scale is not None:
        fields.update(action_low=scale.low, action_high=scale.high)
    require(int(episode_length) >= 1, f"{name}: episode_length must be >= 1, got {episode_length}")
    d = OpenDomain(domain, sparse, fields.get("source"), obs_dim, act_dim)
    return Task(name, benchmark, d, None, True, int(episode_length), sparse, obs_dim, act_dim, reward,  # type: ignore[arg-type]
                **fields)


def _gym_task(name: str) -> Task:
    """``gym:<id>``: any registered gymnasium environment (built once here to read its spaces)."""
    gym_id = name[len(GYM_PREFIX):]
    import gymnasium as gym

    try:
        spec = gym.spec(gym_id)
    except gym.error.Error as e:
        raise QchunkError(f"unknown gymnasium id {gym_id!r} in --env {name!r}: {' '.join(str(e).split())} "
                          "(--env gym:ID takes any id gymnasium.make accepts, e.g. gym:Hopper-v5)") from None
    env = _make_raw_gym(gym_id, name)
    try:
        return _open_task(name, "gym", env.observation_space, env.action_space, spec.max_episode_steps or 1000,
                          env_id=gym_id)
    finally:
        env.close()


def _make_raw_gym(gym_id: str, name: str):
    import gymnasium as gym

    try:
        return gym.make(gym_id)
    except (gym.error.DependencyNotInstalled, ImportError, ModuleNotFoundError) as e:
        raise QchunkError(f"{name}: the environment needs a package that is not installed "
                          f"({' '.join(str(e).split())[:160]}); {_GYM_EXTRA}") from None


def minari_dataset(dataset_id: str, where: str | None = None):
    """The Minari dataset ``dataset_id`` from the local Minari store (``$MINARI_DATASETS_PATH``, default
    ``~/.minari/datasets``); nothing is downloaded.

    Raises:
        QchunkError: minari is not installed, the id is not in the local store, or the dataset has no episodes.
    """
    where = where or f"{MINARI_PREFIX}{dataset_id}"
    try:
        import minari
    except ImportError:
        raise QchunkError(f"{where}: Minari datasets need the minari package; {_MINARI_EXTRA}") from None
    try:
        dataset = minari.load_dataset(dataset_id)
    except (FileNotFoundError, ValueError) as e:
        store = os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")
        raise QchunkError(f"unknown Minari dataset {dataset_id!r}: not in the local store {store} "
                          f"({' '.join(str(e).split())[:120]}); make one with qchunk data collect --out "
                          f"minari:{dataset_id}, or fetch it with `minari download {dataset_id}`") from None
    require(dataset.total_episodes > 0, f"{where}: the Minari dataset has no episodes; collect some first")
    return dataset


def _minari_task(name: str) -> Task:
    """``minari:<id>``: the environment a local Minari dataset recorded, with the dataset as its data."""
    dataset = minari_dataset(name[len(MINARI_PREFIX):], name)
    spec = dataset.env_spec
    require(spec is not None, f"{name}: the Minari dataset recorded no environment spec; give the environment "
                              "with --env gym:ID (or register the task from Python)")
    meta = dataset.storage.metadata
    ref = (meta.get("ref_min_score"), meta.get("ref_max_score"))
    ref_scores = (float(ref[0]), float(ref[1])) if None not in ref and ref[1] != ref[0] else None
    return _open_task(name, "minari", dataset.observation_space, dataset.action_space, spec.max_episode_steps or 1000,
                      env_id=spec.to_json(), source=name, ref_scores=ref_scores)


_FAMILIES: dict[str, Callable[[str], Task]] = {GYM_PREFIX: _gym_task, MINARI_PREFIX: _minari_task}
"""Open families of names by prefix: ``gym:<gymnasium id>`` and ``minari:<dataset id>``."""


def _builtin_task(name: str) -> Task | None:
    """The built-in (OGBench or robomimic) task of ``name``, or None when ``name`` is not one."""
    try:
        return _table_task(name)
    except QchunkError:
        return None


def register(name: str, env: Callable[[], Any] | str, *, dataset: str | None = None,
             episode_length: int | None = None, reward: Callable[[np.ndarray], np.ndarray] | None = None,
             reward_doc: str | None = None, success: str | Callable[[dict], bool] | None = "success",
             domain: str = DEFAULT_OPEN_DOMAIN, sparse: bool = False, ref_scores: tuple[float, float] | None = None,
             replace: bool = False) -> Task:
    """Register a task under ``name`` so that every command and :func:`get_task` know it; returns its Task.

    Args:
        name: the task's name (no ``:``; not a built-in name).
        env: ``() -> gymnasium.Env`` building the raw environment (a module-level function, so that it
            pickles into evaluation worker processes), or a gymnasium id. It is built once here to read its
            spaces: a flat ``Box`` observation and a bounded ``Box`` action space (bounds other than [-1, 1]
            are rescaled for the agents, see :class:`ActionScale`).
        dataset: the default offline dataset (``"minari:<id>"``, ``.npz`` or ``.hdf5`` file); ``--dataset``
            overrides it.
        episode_length: evaluation time limit (default: the env's ``spec.max_episode_steps``, else 1000).
        reward: ``rewards (N,) -> rewards (N,)`` applied to the env's and the dataset's rewards alike.
        reward_doc: what the reward is, for messages and summaries.
        success: the success signal (see :attr:`Task.success`).
        domain: the domain whose per-domain agent presets (alpha, N) the task inherits.
        sparse: default of ``--sparse``.
        ref_scores: (random, expert) returns for the normalised score.
        replace: replace an earlier registration of ``name`` (otherwise that is an error).

    Raises:
        QchunkError: a bad name, a name taken, or spaces qchunk cannot use.
    """
    require(isinstance(name, str) and name and ":" not in name and name == name.strip(),
            f"task name {name!r} must be a non-empty string without ':' (gym: and minari: are reserved)")
    require(_builtin_task(name) is None, f"{name!r} is a built-in task; register yours under another name")
    require(replace or name not in _REGISTERED, f"task {name!r} is already registered; pass replace=True")
    raw = _make_raw_gym(env, name) if isinstance(env, str) else env()
    try:
        length = episode_length or getattr(getattr(raw, "spec", None), "max_episode_steps", None) or 1000
        task = _open_task(name, "registered", raw.observation_space, raw.action_space, length, domain=domain,
                          sparse=sparse, reward=reward_doc or ("a registered transform of the environment's reward"
                                                               if reward else "the environment's reward"),
                          env_id=env if isinstance(env, str) else None,
                          env_factory=None if isinstance(env, str) else env, source=dataset, success=success,
                          reward_transform=reward, ref_scores=ref_scores)
    finally:
        raw.close()
    _REGISTERED[name] = task
    get_task.cache_clear()
    return task


def unregister(name: str) -> None:
    """Forget a task registered with :func:`register` (no error when it is not registered)."""
    _REGISTERED.pop(name, None)
    get_task.cache_clear()


def task_names() -> list[str]:
    """Every named entry of the registry: the built-in OGBench tasks and dataset names, the robomimic tasks and
    the registered tasks (the open families ``gym:<id>`` and ``minari:<id>`` take any id)."""
    names = []
    for d in DOMAINS.values():
        names += [d.dataset, d.task_name()] + [d.task_name(t) for t in range(1, 6)]
    return names + list(ROBOMIMIC_TASKS) + list(_REGISTERED)
