"""Data: datasets and replay buffers that sample action chunks, OGBench loading and generation.

- :class:`Dataset` / :class:`ReplayBuffer`: transition storage with ``sample_chunks``.
- :func:`load_ogbench`: an OGBench single-task dataset, rewards relabelled (optionally sparse).
- :func:`load_task_data`: the offline data of any supported task name (what the trainer calls).
- :class:`ShardedDataset`: a directory of 1M-transition shards, one in memory at a time.
- :func:`qchunk.data.generate.generate_ogbench`: make an OGBench play dataset locally.
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
