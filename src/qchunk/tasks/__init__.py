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


from qchunk.tasks.builtin import parse_robomimic_env_args
from qchunk.tasks.domains import (
    DEFAULT_OPEN_DOMAIN,
    DOMAINS,
    OGBENCH_DATASET_DIR,
    OGBENCH_REWARD,
    ROBOMIMIC_DATASET_DIR,
    ROBOMIMIC_OBS_KEYS,
    ROBOMIMIC_REWARD,
    ROBOMIMIC_TASKS,
    SPARSE_REWARD,
    OGBenchDomain,
    OpenDomain,
    RobomimicDomain,
)
from qchunk.tasks.open import GYM_PREFIX, MINARI_PREFIX, minari_dataset
from qchunk.tasks.registry import TASK_MODULES_ENV, as_task, get_task, register, task_names, unregister
from qchunk.tasks.spec import ActionScale, Task

__all__ = [
    "DEFAULT_OPEN_DOMAIN", "DOMAINS", "GYM_PREFIX", "MINARI_PREFIX", "OGBENCH_DATASET_DIR", "OGBENCH_REWARD",
    "ROBOMIMIC_DATASET_DIR", "ROBOMIMIC_OBS_KEYS", "ROBOMIMIC_REWARD", "ROBOMIMIC_TASKS", "SPARSE_REWARD",
    "TASK_MODULES_ENV", "ActionScale", "OGBenchDomain", "OpenDomain", "RobomimicDomain", "Task", "as_task",
    "get_task", "minari_dataset", "parse_robomimic_env_args", "register", "task_names", "unregister",
]
