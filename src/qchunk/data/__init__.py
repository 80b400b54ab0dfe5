"""Data: datasets and replay buffers that sample action chunks, OGBench loading and generation.

- :class:`Dataset` / :class:`ReplayBuffer`: transition storage with ``sample_chunks``.
- :func:`load_ogbench`: an OGBench single-task dataset, rewards relabelled (optionally sparse).
- :class:`ShardedDataset`: a directory of 1M-transition shards, one in memory at a time.
"""

from qchunk.data.dataset import TRANSITION_KEYS, Dataset, ReplayBuffer

__all__ = ["TRANSITION_KEYS", "Dataset", "ReplayBuffer"]
