"""Data: datasets and replay buffers that sample action chunks, OGBench loading and generation.

- :class:`Dataset` / :class:`ReplayBuffer`: transition storage with ``sample_chunks``.
- :func:`load_ogbench`: an OGBench single-task dataset, rewards relabelled (optionally sparse).
- :class:`ShardedDataset`: a directory of 1M-transition shards, one in memory at a time.
- :func:`qchunk.data.generate.generate_ogbench`: make an OGBench play dataset locally.
"""

from qchunk.data.dataset import TRANSITION_KEYS, Dataset, ReplayBuffer
from qchunk.data.ogbench_data import ShardedDataset, dataset_files, load_ogbench

__all__ = ["TRANSITION_KEYS", "Dataset", "ReplayBuffer", "ShardedDataset", "dataset_files", "load_ogbench"]
