"""One entry point from a task name to its offline data, whatever benchmark the task belongs to."""

from __future__ import annotations

import os
from dataclasses import dataclass

from qchunk.data.dataset import Dataset
from qchunk.data.ogbench_data import ShardedDataset, dataset_files, load_ogbench
from qchunk.envs.registry import parse_task


@dataclass
class TaskData:
    """The offline data of a training run."""

    dataset: Dataset
    """The transitions in memory (for a shard directory: the current shard)."""
    sharded: ShardedDataset | None = None
    """Set when the data is a directory of shards that the trainer cycles through."""


def load_task_data(env: str, dataset_dir: str | os.PathLike | None = None, sparse: bool = False) -> TaskData:
    """The offline dataset of single-task ``env`` from ``dataset_dir`` (the benchmark's default location
    when None: ``~/.ogbench/data`` or ``~/.robomimic``), with rewards as the task defines them (``sparse``:
    the paper's sparse transform; robomimic rewards are -1 until success and 0 at success either way).

    Raises:
        QchunkError: the data is missing (the message says how to get it) or malformed.
    """
    if parse_task(env).benchmark == "robomimic":
        from qchunk.data.robomimic_data import load_robomimic

        return TaskData(load_robomimic(env, dataset_dir, sparse=sparse))
    files = dataset_files(env, dataset_dir)
    if len(files) > 1:
        sharded = ShardedDataset(env, files, sparse=sparse)
        return TaskData(sharded.dataset, sharded)
    return TaskData(load_ogbench(env, dataset_path=files[0], sparse=sparse))
