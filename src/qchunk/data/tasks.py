"""One entry point from a task to its offline data, whatever benchmark the task belongs to."""

from __future__ import annotations

import os
from dataclasses import dataclass

from qchunk.data.dataset import Dataset
from qchunk.data.ogbench_data import ShardedDataset, dataset_files, load_ogbench
from qchunk.tasks import Task, as_task


@dataclass
class TaskData:
    """The offline data of a training run."""

    dataset: Dataset
    """The transitions in memory (for a shard directory: the current shard)."""
    sharded: ShardedDataset | None = None
    """Set when the data is a directory of shards that the trainer cycles through."""


def load_task_data(task: Task | str, dataset_dir: str | os.PathLike | None = None, sparse: bool = False) -> TaskData:
    """The offline dataset of single task ``task`` from ``dataset_dir`` (the benchmark's default location
    when None: ``~/.ogbench/data`` or ``~/.robomimic``), with rewards as the task defines them (``sparse``:
    the paper's sparse transform; robomimic rewards are -1 until success and 0 at success either way).

    ``task`` is a :class:`~qchunk.tasks.Task` (a name is accepted too and looked up with
    :func:`~qchunk.tasks.get_task`).

    Raises:
        QchunkError: the data is missing (the message says how to get it) or malformed.
    """
    task = as_task(task).require_singletask("training needs")
    if task.benchmark == "robomimic":
        from qchunk.data.robomimic_data import load_robomimic

        return TaskData(load_robomimic(task, dataset_dir, sparse=sparse))
    files = dataset_files(task, dataset_dir)
    if len(files) > 1:
        sharded = ShardedDataset(task, files, sparse=sparse)
        return TaskData(sharded.dataset, sharded)
    return TaskData(load_ogbench(task, dataset_path=files[0], sparse=sparse))
