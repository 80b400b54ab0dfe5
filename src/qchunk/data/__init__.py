"""Data: datasets and replay buffers that sample action chunks, OGBench and robomimic loading.

- :class:`Dataset` / :class:`ReplayBuffer`: transition storage with ``sample_chunks``.
- :func:`load_ogbench`: an OGBench single-task dataset, rewards relabelled (optionally sparse).
- :func:`load_task_data`: the offline data of any supported :class:`~qchunk.tasks.Task` (what the trainer calls).
- :class:`ShardedDataset`: a directory of 1M-transition shards, one in memory at a time.

Dataset generation (which runs environments) lives in :mod:`qchunk.datagen`.
"""

from qchunk.data.dataset import TRANSITION_KEYS, Dataset, ReplayBuffer
from qchunk.data.ogbench_data import ShardedDataset, dataset_files, load_ogbench
from qchunk.data.tasks import TaskData, load_task_data

__all__ = [
    "TRANSITION_KEYS",
    "Dataset",
    "ReplayBuffer",
    "ShardedDataset",
    "TaskData",
    "dataset_files",
    "load_ogbench",
    "load_task_data",
]
