"""The benchmarks' domains: the OGBench and robomimic tables the papers use, and the domain of an open task."""

from __future__ import annotations

from dataclasses import dataclass

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
