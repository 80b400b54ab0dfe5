"""One entry point from a task to its offline data, whatever benchmark the task belongs to (OGBench npz and
shards, robomimic hdf5, Minari datasets and D4RL-layout files)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qchunk.data.dataset import Dataset
from qchunk.data.ogbench_data import ShardedDataset, dataset_files, load_ogbench
from qchunk.errors import QchunkError, require
from qchunk.tasks import Task, as_task


@dataclass
class TaskData:
    """The offline data of a training run."""

    dataset: Dataset
    """The transitions in memory (for a shard directory: the current shard)."""
    sharded: ShardedDataset | None = None
    """Set when the data is a directory of shards that the trainer cycles through."""


ACTION_CLIP_EPS = 1e-5
"""A single-file dataset's actions are clipped to ``[-1 + eps, 1 - eps]`` at load, as the authors' ``env_utils``
does (both papers' code): a data action exactly at a bound has an infinite pre-image under tanh, so this bounds
its log-probability under a tanh-Gaussian policy. Shard directories are read unclipped, as theirs."""


def load_task_data(task: Task | str, dataset_dir: str | os.PathLike | None = None, sparse: bool = False,
                   dataset: str | None = None, relabel_env: Callable[[], Any] | None = None) -> TaskData:
    """The offline dataset of single task ``task`` from ``dataset_dir`` (the benchmark's default location
    when None: ``~/.ogbench/data`` or ``~/.robomimic``), with rewards as the task defines them (``sparse``:
    the paper's sparse transform; robomimic rewards are -1 until success and 0 at success either way).

    ``dataset`` (``--dataset``) names the data instead: ``minari:<id>`` or a D4RL-layout ``.npz`` / ``.hdf5``
    file (:mod:`qchunk.data.open_data`; for an OGBench task a ``.npz`` in OGBench's layout). Open tasks
    (``gym:<id>``, ``minari:<id>``, registered ones) read ``dataset`` or else their own source.

    ``task`` is a :class:`~qchunk.tasks.Task` (a name is accepted too and looked up with
    :func:`~qchunk.tasks.get_task`). ``relabel_env``: ``() -> env`` of the task that a single OGBench file is
    relabelled with, called once the file is found (the trainer hands in its first online env, which saves
    building one; a shard directory keeps an env of its own, as it relabels again during training).

    A single file's actions are clipped to ``[-1 + eps, 1 - eps]`` (:data:`ACTION_CLIP_EPS`).

    Raises:
        QchunkError: the data is missing (the message says how to get it) or malformed.
    """
    data = _load(as_task(task).require_singletask("training needs"), dataset_dir, sparse, dataset, relabel_env)
    if data.sharded is None:
        data.dataset.clip_actions(ACTION_CLIP_EPS)
    return data


def _load(task: Task, dataset_dir: str | os.PathLike | None, sparse: bool, dataset: str | None,
          relabel_env: Callable[[], Any] | None) -> TaskData:
    if task.benchmark not in ("ogbench", "robomimic"):
        from qchunk.data.open_data import load_source

        source = dataset if dataset is not None else task.source
        if source is None:
            raise QchunkError(f"{task.name} has no dataset of its own; give --dataset minari:<id> or a .npz / .hdf5 "
                              f"file (make one with qchunk data collect --env {task.name} --out FILE)")
        return TaskData(load_source(task, source, sparse))
    if dataset is not None:
        require(task.benchmark == "ogbench" and dataset.endswith(".npz"),
                f"--dataset with the built-in task {task.name} must be an .npz in OGBench's layout; robomimic "
                "reads --dataset-dir (DIR/{task}/mh/low_dim_v15.hdf5)")
        return TaskData(load_ogbench(task, dataset_path=dataset, sparse=sparse,
                                     env=relabel_env() if relabel_env is not None else None))
    if task.benchmark == "robomimic":
        from qchunk.data.robomimic_data import load_robomimic

        return TaskData(load_robomimic(task, dataset_dir, sparse=sparse))
    files = dataset_files(task, dataset_dir)
    if len(files) > 1:
        sharded = ShardedDataset(task, files, sparse=sparse)
        return TaskData(sharded.dataset, sharded)
    return TaskData(load_ogbench(task, dataset_path=files[0], sparse=sparse,
                                 env=relabel_env() if relabel_env is not None else None))
