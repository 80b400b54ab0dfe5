"""robomimic datasets (multi-human, low-dim, v1.5) read with h5py in the official hdf5 layout.

The layout robomimic 0.5 writes (``{task}/mh/low_dim_v15.hdf5``)::

    data                      attrs: total (transitions), env_args (JSON: env_name, env_version, type, env_kwargs)
    data/demo_<i>             attrs: num_samples (T)
        actions  (T, 7)       delta end-effector pose and gripper command, in [-1, 1]
        rewards  (T,)         1 where the task is solved, else 0
        dones    (T,)         1 where the task is solved and at the demo's last step
        states   (T, S)       flattened MuJoCo state (not needed here)
        obs/<key>, next_obs/<key>   (T, d) per observation key
    mask/train, mask/valid    byte strings: names of the demos of each split (optional)

:func:`load_robomimic` turns this into the paper's transitions: observations are
concat(robot0_eef_pos, robot0_eef_quat, robot0_gripper_qpos, object) as float32 (19 dims for lift, 23 for
can and square), demos in numeric order (``demo_2`` before ``demo_10``), rewards shifted to -1 until
success and 0 at success (``rewards - 1``), ``masks = 1 - dones`` and ``terminals`` = 1 at each demo's last
step. We read the file with h5py and never import the ``robomimic`` package (its PyPI release 0.3 needs
``mujoco_py``; the v1.5 datasets belong to robomimic 0.5).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qchunk.data.columns import FLAG, READ_ERRORS, SCALAR, VECTOR, check_columns, h5_array, read_error
from qchunk.data.dataset import Dataset
from qchunk.errors import QchunkError, did_you_mean, require
from qchunk.tasks import ROBOMIMIC_DATASET_DIR, ROBOMIMIC_OBS_KEYS, ROBOMIMIC_TASKS, Task, parse_robomimic_env_args

#: robomimic's default dataset directory (``{dir}/{task}/mh/low_dim_v15.hdf5``).
DEFAULT_DATASET_DIR = ROBOMIMIC_DATASET_DIR
#: Observation keys the paper concatenates, in order (defined in :mod:`qchunk.tasks`; the env uses them too).
OBS_KEYS = ROBOMIMIC_OBS_KEYS
#: Where the official v1.5 files are published.
DOWNLOAD_URL = "https://huggingface.co/datasets/amandlek/robomimic/tree/main/v1.5"

_DEMO_RE = re.compile(r"^demo_(\d+)$")


def _require_robomimic(task: Task) -> None:
    require(task.benchmark == "robomimic",
            f"{task.name!r} is not a robomimic task{did_you_mean(task.name, ROBOMIMIC_TASKS)}; choose one of "
            f"{', '.join(ROBOMIMIC_TASKS)}")


def missing_dataset_error(task: Task, path: Path) -> QchunkError:
    """The error for a dataset file that is not there: where to get it and where to put it."""
    domain = task.domain
    root = path.parent.parent.parent
    generate = (f"; or generate a small scripted one with `qchunk data robomimic lift --out {root}`"
                if domain.task == "lift" else "")
    return QchunkError(
        f"robomimic dataset {path} not found; download {domain.task}/mh/low_dim_v15.hdf5 from {DOWNLOAD_URL} "
        f"and put it at {path} (or pass --dataset-dir DIR with the file at DIR/{domain.dataset}){generate}")


def _open(path: Path):
    import h5py

    if not path.is_file():
        raise QchunkError(f"robomimic dataset {path} not found")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise QchunkError(f"{path}: not a readable hdf5 file ({e}); the file is truncated or corrupt, "
                          "download or generate it again") from None


def _env_args(path: Path, data) -> dict[str, Any]:
    return parse_robomimic_env_args(data.attrs.get("env_args"), path)


def _sorted_demos(path: Path, data) -> list[str]:
    demos = [k for k in data.keys() if _DEMO_RE.match(k)]
    require(len(demos) > 0, f"{path}: no demos (data/demo_<i>) in the file")
    return sorted(demos, key=lambda k: int(_DEMO_RE.match(k)[1]))


def _filter(path: Path, f, demos: list[str], filter_key: str | None) -> list[str]:
    if filter_key is None:
        return demos
    masks = f.get("mask")
    available = sorted(masks.keys()) if masks is not None else []
    require(filter_key in available, f"{path}: no filter key mask/{filter_key}; the file has "
                                     f"{available or 'no mask group'}")
    names = {n.decode() if isinstance(n, bytes) else str(n) for n in np.asarray(masks[filter_key][()]).ravel()}
    unknown = sorted(names - set(demos))
    require(not unknown, f"{path}: mask/{filter_key} names demos that are not in the file ({unknown[:3]})")
    require(len(names) > 0, f"{path}: mask/{filter_key} is empty")
    return [d for d in demos if d in names]


@dataclass
class RobomimicDemos:
    """The demos of one file, concatenated in numeric demo order (``T`` = total steps of the chosen demos)."""

    observations: np.ndarray
    """``(T, obs_dim)`` float32 concat of :data:`OBS_KEYS` before each step."""
    next_observations: np.ndarray
    """``(T, obs_dim)`` float32, the same after each step."""
    actions: np.ndarray
    """``(T, 7)`` float32."""
    rewards: np.ndarray
    """``(T,)`` float32 robomimic rewards as stored (1 at success, else 0)."""
    dones: np.ndarray
    """``(T,)`` float32 robomimic dones as stored."""
    lengths: np.ndarray
    """``(num_demos,)`` int64 steps per demo."""
    demos: list[str]
    """Demo names in the order they were concatenated."""
    env_args: dict[str, Any]


def read_robomimic(path: str | os.PathLike, filter_key: str | None = None) -> RobomimicDemos:
    """Read and check a robomimic low-dim hdf5 file; every problem is one :class:`QchunkError`.

    Args:
        path: the hdf5 file.
        filter_key: read only the demos named in ``mask/<filter_key>`` (e.g. ``"train"``); None reads all.
    """
    path = Path(path)
    try:
        return _read_demos(path, filter_key)
    except QchunkError:
        raise
    except READ_ERRORS as e:  # a file cut short opens, then fails inside
        raise read_error(path, e) from None


def _read_demos(path: Path, filter_key: str | None) -> RobomimicDemos:
    with _open(path) as f:
        require("data" in f, f"{path}: no 'data' group; not a robomimic dataset")
        data = f["data"]
        env_args = _env_args(path, data)
        all_demos = _sorted_demos(path, data)
        lengths_all = {}
        for d in all_demos:
            require("actions" in data[d], f"{path}: data/{d} has no 'actions'")
            require(len(getattr(data[d]["actions"], "shape", ())) >= 1,
                    f"{path}: data/{d}/actions is not an array of rows")
            lengths_all[d] = int(data[d]["actions"].shape[0])
        if "total" in data.attrs:
            total = int(data.attrs["total"])
            require(total == sum(lengths_all.values()),
                    f"{path}: data.attrs['total'] is {total} but the demos hold {sum(lengths_all.values())} "
                    "steps; the file is inconsistent, download or generate it again")
        demos = _filter(path, f, all_demos, filter_key)
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "next_obs", "actions", "rewards", "dones")}
        for d in demos:
            g, n = data[d], lengths_all[d]
            where = f"{path}: data/{d}"
            if "num_samples" in g.attrs:
                require(int(g.attrs["num_samples"]) == n,
                        f"{where}: attrs['num_samples'] is {int(g.attrs['num_samples'])} but 'actions' has {n} rows")
            require(n > 0, f"{where} is empty")
            for key in ("rewards", "dones"):
                require(key in g, f"{where} has no '{key}'")
            cols = check_columns({k: h5_array(g, k, where) for k in ("actions", "rewards", "dones")},
                                 {"actions": VECTOR, "rewards": SCALAR, "dones": FLAG}, where, rows=n)
            for group in ("obs", "next_obs"):
                missing = [k for k in OBS_KEYS if group not in g or k not in g[group]]
                require(not missing, f"{where}/{group} lacks {missing}; a low-dim dataset holds {list(OBS_KEYS)}")
                obs = {k: h5_array(g[group], k, f"{where}/{group}") for k in OBS_KEYS}
                obs = {k: v.reshape(n, -1) if v.ndim == 1 and len(v) == n else v for k, v in obs.items()}
                obs = check_columns(obs, dict.fromkeys(OBS_KEYS, VECTOR), f"{where}/{group}", rows=n)
                parts[group].append(np.concatenate([obs[k].astype(np.float32) for k in OBS_KEYS], axis=1))
            parts["actions"].append(cols["actions"].astype(np.float32))
            parts["rewards"].append(cols["rewards"].astype(np.float32))
            parts["dones"].append(cols["dones"].astype(np.float32))
    dims = {p.shape[1] for p in parts["obs"]} | {p.shape[1] for p in parts["next_obs"]}
    require(len(dims) == 1, f"{path}: demos have different observation sizes {sorted(dims)}")
    acts = {p.shape[1] for p in parts["actions"]}
    require(len(acts) == 1, f"{path}: demos have different action sizes {sorted(acts)}")
    return RobomimicDemos(
        observations=np.concatenate(parts["obs"]), next_observations=np.concatenate(parts["next_obs"]),
        actions=np.concatenate(parts["actions"]), rewards=np.concatenate(parts["rewards"]),
        dones=np.concatenate(parts["dones"]), lengths=np.array([lengths_all[d] for d in demos], np.int64),
        demos=demos, env_args=env_args)


def load_robomimic(
    task: Task,
    dataset_dir: str | os.PathLike | None = None,
    *,
    path: str | os.PathLike | None = None,
    sparse: bool = False,
    filter_key: str | None = None,
) -> Dataset:
    """Load a robomimic task's offline data as the paper uses it.

    Args:
        task: ``get_task("lift-mh-low_dim")``, ``"can-mh-low_dim"`` or ``"square-mh-low_dim"``.
        dataset_dir: directory holding ``{task}/mh/low_dim_v15.hdf5`` (default ``~/.robomimic``).
        path: an explicit hdf5 file; overrides ``dataset_dir``.
        sparse: the paper's sparse transform (r' = -1 if r != 0 else 0); the identity on these rewards.
        filter_key: only the demos of ``mask/<filter_key>``; None (the paper) uses every demo.

    Returns:
        A :class:`Dataset`: ``observations`` / ``next_observations`` ``(N, 19)`` (lift) or ``(N, 23)`` (can,
        square), ``actions (N, 7)``, ``rewards (N,)`` = stored rewards - 1 (-1 until success, 0 at success),
        ``masks (N,)`` = 1 - dones, ``terminals (N,)`` = 1 at the last step of each demo.

    Raises:
        QchunkError: the file is missing (the message says where to get it and where to put it), belongs
            to another task, or is malformed.
    """
    _require_robomimic(task)
    domain, name = task.domain, task.name
    file = Path(path) if path is not None else task.dataset_path(dataset_dir)
    if not file.is_file():
        raise missing_dataset_error(task, file)
    demos = read_robomimic(file, filter_key=filter_key)
    env_name = demos.env_args["env_name"]
    require(env_name == domain.env_name, f"{file}: holds a {env_name} dataset, but {name} is robosuite's "
                                         f"{domain.env_name}; put the {domain.task} file there")
    require(demos.observations.shape[1] == domain.observation_dim,
            f"{file}: observations have {demos.observations.shape[1]} dims, {name} has {domain.observation_dim}")
    require(demos.actions.shape[1] == domain.action_dim,
            f"{file}: actions have {demos.actions.shape[1]} dims, {name} has {domain.action_dim}")
    require(np.isin(demos.dones, (0.0, 1.0)).all(), f"{file}: 'dones' must be 0/1")
    rewards = demos.rewards - 1.0  # the paper: -1 until success, 0 at success
    if sparse:
        rewards = np.where(rewards != 0.0, -1.0, 0.0).astype(np.float32)
    terminals = np.zeros(len(rewards), np.float32)
    terminals[np.cumsum(demos.lengths) - 1] = 1.0
    return Dataset(observations=demos.observations, actions=demos.actions, rewards=rewards, terminals=terminals,
                   next_observations=demos.next_observations, masks=1.0 - demos.dones, source=str(file))
