"""OGBench datasets in the official npz layout: checked reading, task relabelling, sparse rewards, shards.

The official layout (``<dataset>.npz`` and ``<dataset>-val.npz``) stores per *step* ``observations``,
``actions``, ``terminals`` (1 at each episode's last step) and, for manipulation, ``qpos``, ``qvel`` and
``button_states``. OGBench turns steps into transitions (an episode of 1001 steps gives 1000
transitions) and, for single-task names, relabels ``rewards`` and ``masks`` for the task; we call
OGBench for that so rewards match the benchmark exactly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from qchunk.data.columns import FLAG, READ_ERRORS, VECTOR, check_columns, read_error
from qchunk.data.dataset import Dataset
from qchunk.errors import QchunkError, require
from qchunk.tasks import Task

#: Where OGBench's own downloader fetches the official files from (``<url>/<dataset>.npz``).
OGBENCH_DATASET_URL = "https://rail.eecs.berkeley.edu/datasets/ogbench"
REQUIRED_NPZ_KEYS = ("observations", "actions", "terminals")
OPTIONAL_NPZ_KEYS = ("qpos", "qvel", "button_states")
#: The kind of each array of the layout (see :mod:`qchunk.data.columns`).
NPZ_COLUMNS = {"observations": VECTOR, "actions": VECTOR, "terminals": FLAG, "qpos": VECTOR, "qvel": VECTOR,
               "button_states": VECTOR}


def _missing(path: Path, task: Task) -> QchunkError:
    if not task.domain.generable:  # navigate: made by OGBench's pretrained experts, not by plan oracles
        return QchunkError(
            f"dataset file {path} not found; {task.dataset} needs OGBench's pretrained expert policies and cannot "
            f"be generated here: put the official {task.dataset}.npz and {task.dataset}-val.npz "
            f"({OGBENCH_DATASET_URL}/{task.dataset}.npz, or ogbench.download_datasets(['{task.dataset}'])) "
            f"into {path.parent} (or pass --dataset-dir DIR)")
    return QchunkError(
        f"dataset file {path} not found; generate it with `qchunk data ogbench {task.dataset} --out {path.parent}`"
        f" (or download it with ogbench.download_datasets)")


def _require_ogbench(task: Task) -> None:
    require(task.benchmark == "ogbench", f"{task.name!r} is a {task.benchmark} task, not an OGBench one")


def dataset_files(task: Task, dataset_dir: str | os.PathLike | None = None) -> list[Path]:
    """The training file(s) of OGBench ``task`` in ``dataset_dir`` (default ``~/.ogbench/data``).

    Returns ``[<dir>/<dataset>.npz]`` when that file exists. Otherwise, if ``dataset_dir`` itself holds
    shard files of the task's domain (``<domain>-*.npz`` other than ``*-val.npz``, as the 100M
    cube-quadruple set), returns them sorted.
    Raises :class:`QchunkError` naming the generation command when nothing is there.
    """
    _require_ogbench(task)
    single = task.dataset_path(dataset_dir)
    root = single.parent
    if single.is_file():
        return [single]
    if root.is_dir():
        shards = sorted(p for p in root.glob(f"{task.domain.name}-*.npz") if not p.name.endswith("-val.npz"))
        if shards:
            return shards
    raise _missing(single, task)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read and check an npz in the official layout; every problem is one clear :class:`QchunkError`."""
    path = Path(path)
    if not path.is_file():
        raise QchunkError(f"dataset file {path} not found")
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            missing = [k for k in REQUIRED_NPZ_KEYS if k not in keys]
            require(not missing, f"{path}: missing keys {missing}; an OGBench dataset holds "
                                 f"{list(REQUIRED_NPZ_KEYS)} (+ {list(OPTIONAL_NPZ_KEYS)} for manipulation)")
            arrays = {k: f[k] for k in (*REQUIRED_NPZ_KEYS, *OPTIONAL_NPZ_KEYS) if k in keys}
    except QchunkError:
        raise
    except READ_ERRORS as e:
        raise read_error(path, e) from None
    arrays = check_columns(arrays, NPZ_COLUMNS, str(path))
    terms = arrays["terminals"].astype(np.float32)
    require(terms[-1] == 1.0, f"{path}: the last episode is unfinished (terminals[-1] == 0); the file is "
                              "truncated, regenerate it")
    return arrays


def _relabel_env(task: Task):
    """The raw single-task OGBench env that OGBench's relabelling reads the task's goal from."""
    import ogbench

    return ogbench.make_env_and_datasets(task.name, env_only=True)


def load_ogbench(
    task: Task,
    dataset_dir: str | os.PathLike | None = None,
    *,
    dataset_path: str | os.PathLike | None = None,
    sparse: bool = False,
    env=None,
) -> Dataset:
    """Load an OGBench single-task dataset with rewards relabelled for the task.

    Args:
        task: a single task, e.g. ``get_task("puzzle-3x3-play-singletask-task2-v0")``.
        dataset_dir: directory of ``<dataset>.npz`` (default ``~/.ogbench/data``).
        dataset_path: an explicit training file (a shard, say); overrides ``dataset_dir``.
        sparse: apply the paper's transform r' = -1 if r != 0 else 0.
        env: an already-made single-task env to relabel with (saves making one per shard).

    Returns:
        A :class:`Dataset` with OGBench's ``rewards`` and ``masks`` (0 at task success) and ``terminals``
        at episode ends.
    """
    _require_ogbench(task)
    task.require_singletask("training needs")
    path = Path(dataset_path) if dataset_path is not None else dataset_files(task, dataset_dir)[0]
    read_npz(path)  # clear errors before OGBench sees the file
    from ogbench.relabel_utils import relabel_dataset
    from ogbench.utils import load_dataset

    env = env if env is not None else _relabel_env(task)
    train = load_dataset(str(path), add_info=True)  # steps -> transitions, as OGBench does
    relabel_dataset(env.spec.id if env.spec is not None else task.name, env, train)
    rewards = train["rewards"]
    if sparse:
        rewards = np.where(rewards != 0.0, -1.0, 0.0).astype(np.float32)
    return Dataset(observations=train["observations"], actions=train["actions"], rewards=rewards,
                   terminals=train["terminals"], next_observations=train["next_observations"],
                   masks=train["masks"], source=str(path))


class ShardedDataset:
    """A directory of dataset shards (e.g. the 100M cube-quadruple set, 1M transitions a file).

    Only one shard is in memory at a time; :meth:`next_shard` replaces it with the next one (cycling),
    so memory stays bounded by the largest shard.

    Args:
        task: the single task to relabel rewards for.
        files: the shard files, in the order to visit them.
        sparse: as :func:`load_ogbench`.
        start: index of the first shard to load.
    """

    def __init__(self, task: Task, files: list[Path], *, sparse: bool = False, start: int = 0):
        require(len(files) > 0, "a sharded dataset needs at least one shard file")
        self.task, self.files, self.sparse = task, list(files), sparse
        self._env = _relabel_env(task)
        self.index = start % len(self.files)
        self.dataset = self._load(self.index)

    def _load(self, i: int) -> Dataset:
        return load_ogbench(self.task, dataset_path=self.files[i], sparse=self.sparse, env=self._env)

    def next_shard(self) -> Dataset:
        """Drop the current shard and load the next one; returns it."""
        self.index = (self.index + 1) % len(self.files)
        self.dataset = None  # release before loading: at most one shard in memory
        self.dataset = self._load(self.index)
        return self.dataset

    def __iter__(self) -> Iterator[Path]:
        return iter(self.files)
