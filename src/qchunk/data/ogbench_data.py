"""OGBench datasets in the official npz layout: checked reading, task relabelling, sparse rewards, shards.

The official layout (``<dataset>.npz`` and ``<dataset>-val.npz``) stores per *step* ``observations``,
``actions``, ``terminals`` (1 at each episode's last step) and, for manipulation, ``qpos``, ``qvel`` and
``button_states``. OGBench turns steps into transitions (an episode of 1001 steps gives 1000
transitions) and, for single-task names, relabels ``rewards`` and ``masks`` for the task; we call
OGBench for that so rewards match the benchmark exactly.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from qchunk.data.dataset import Dataset
from qchunk.envs.registry import TaskSpec, parse_task
from qchunk.errors import QchunkError, require

#: OGBench's default dataset directory.
DEFAULT_DATASET_DIR = "~/.ogbench/data"
REQUIRED_NPZ_KEYS = ("observations", "actions", "terminals")
OPTIONAL_NPZ_KEYS = ("qpos", "qvel", "button_states")


def dataset_dir_or_default(dataset_dir: str | os.PathLike | None) -> Path:
    return Path(os.path.expanduser(str(dataset_dir if dataset_dir is not None else DEFAULT_DATASET_DIR)))


def _missing(path: Path, spec: TaskSpec) -> QchunkError:
    return QchunkError(
        f"dataset file {path} not found; generate it with `qchunk data ogbench {spec.dataset} --out {path.parent}`"
        f" (or download it with ogbench.download_datasets)")


def dataset_files(name: str, dataset_dir: str | os.PathLike | None = None) -> list[Path]:
    """The training file(s) of ``name`` in ``dataset_dir`` (default ``~/.ogbench/data``).

    Returns ``[<dir>/<dataset>.npz]`` when that file exists. Otherwise, if ``dataset_dir`` itself holds
    shard files of the task's domain (``<domain>-*.npz`` other than ``*-val.npz``, as the 100M
    cube-quadruple set), returns them sorted.
    Raises :class:`QchunkError` naming the generation command when nothing is there.
    """
    spec = parse_task(name)
    root = dataset_dir_or_default(dataset_dir)
    single = root / f"{spec.dataset}.npz"
    if single.is_file():
        return [single]
    if root.is_dir():
        shards = sorted(p for p in root.glob(f"{spec.domain.name}-*.npz") if not p.name.endswith("-val.npz"))
        if shards:
            return shards
    raise _missing(single, spec)


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
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise QchunkError(f"{path}: not a readable npz file ({type(e).__name__}: {e}); the file is truncated "
                          "or corrupt, regenerate or re-download it") from None
    n = len(arrays["observations"])
    require(n > 0, f"{path}: the dataset is empty")
    for k, v in arrays.items():
        require(len(v) == n, f"{path}: '{k}' has {len(v)} rows but 'observations' has {n}; the file is "
                             "inconsistent, regenerate it")
    require(arrays["observations"].ndim == 2 and arrays["actions"].ndim == 2,
            f"{path}: observations and actions must be 2-D, got {arrays['observations'].shape} and "
            f"{arrays['actions'].shape}")
    for k in ("observations", "actions"):
        if np.issubdtype(arrays[k].dtype, np.floating):
            bad = ~np.isfinite(arrays[k])
            if bad.any():
                raise QchunkError(f"{path}: '{k}' contains NaN or inf ({int(bad.sum())} values, first at row "
                                  f"{int(np.argwhere(bad)[0][0])}); regenerate the dataset")
    terms = arrays["terminals"].astype(np.float32)
    require(np.isin(terms, (0.0, 1.0)).all(), f"{path}: 'terminals' must be 0/1")
    require(terms[-1] == 1.0, f"{path}: the last episode is unfinished (terminals[-1] == 0); the file is "
                              "truncated, regenerate it")
    return arrays


def _ogbench_env(spec: TaskSpec):
    import ogbench

    return ogbench.make_env_and_datasets(spec.name, env_only=True)


def load_ogbench(
    name: str,
    dataset_dir: str | os.PathLike | None = None,
    *,
    dataset_path: str | os.PathLike | None = None,
    sparse: bool = False,
    env=None,
) -> Dataset:
    """Load an OGBench single-task dataset with rewards relabelled for the task.

    Args:
        name: a single-task name, e.g. ``"puzzle-3x3-play-singletask-task2-v0"``.
        dataset_dir: directory of ``<dataset>.npz`` (default ``~/.ogbench/data``).
        dataset_path: an explicit training file (a shard, say); overrides ``dataset_dir``.
        sparse: apply the paper's transform r' = -1 if r != 0 else 0.
        env: an already-made single-task env to relabel with (saves making one per shard).

    Returns:
        A :class:`Dataset` with OGBench's ``rewards`` and ``masks`` (0 at task success) and ``terminals``
        at episode ends.
    """
    spec = parse_task(name)
    require(spec.singletask, f"{name!r} is a dataset name; training needs a single-task name such as "
                             f"{spec.domain.name}-play-singletask-task2-v0")
    path = Path(dataset_path) if dataset_path is not None else dataset_files(name, dataset_dir)[0]
    read_npz(path)  # clear errors before OGBench sees the file
    from ogbench.relabel_utils import relabel_dataset
    from ogbench.utils import load_dataset

    env = env if env is not None else _ogbench_env(spec)
    train = load_dataset(str(path), add_info=True)  # steps -> transitions, as OGBench does
    relabel_dataset(env.spec.id if env.spec is not None else spec.name, env, train)
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
        name: the single-task name to relabel rewards for.
        files: the shard files, in the order to visit them.
        sparse: as :func:`load_ogbench`.
        start: index of the first shard to load.
    """

    def __init__(self, name: str, files: list[Path], *, sparse: bool = False, start: int = 0):
        require(len(files) > 0, "a sharded dataset needs at least one shard file")
        self.name, self.files, self.sparse = name, list(files), sparse
        self._env = _ogbench_env(parse_task(name))
        self.index = start % len(self.files)
        self.dataset = self._load(self.index)

    def _load(self, i: int) -> Dataset:
        return load_ogbench(self.name, dataset_path=self.files[i], sparse=self.sparse, env=self._env)

    def next_shard(self) -> Dataset:
        """Drop the current shard and load the next one; returns it."""
        self.index = (self.index + 1) % len(self.files)
        self.dataset = None  # release before loading: at most one shard in memory
        self.dataset = self._load(self.index)
        return self.dataset

    def __iter__(self) -> Iterator[Path]:
        return iter(self.files)
