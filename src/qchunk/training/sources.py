"""``BatchSource``: where a run's batches come from (offline data, shards, the replay buffer, mixing).

Offline, every batch is ``batch_size`` chunks of the offline dataset (for a shard directory, the current
shard). Online there are two schemes:

* ``offline_ratio`` None (the QC family's paper behaviour): the replay buffer starts as a copy of the
  offline set, online transitions are appended, and batches sample the union uniformly. With a buffer
  smaller than offline set + online steps (cube-triple's 3M against the paper's 2M), online rows
  overwrite the oldest offline rows, as in the authors' code.
* a number r (the RLPD family: 0.5): the buffer holds online transitions only, and every batch is
  ``round(B * r)`` offline chunks then the rest online chunks, both through the chunk sampler.

With a shard directory the offline data is one shard at a time. Online, the RLPD family's offline half keeps
following the shards; a buffer that started as the offline set follows them only with ``swap_online_prefix``
(the QAM code: each new shard overwrites the buffer's first rows, where the offline data was).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from qchunk.data.dataset import Dataset, ReplayBuffer
from qchunk.data.device import DeviceData
from qchunk.data.mixing import sample_mixed_chunks
from qchunk.data.tasks import TaskData


def _stack(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([b[k] for b in batches]) for k in batches[0]}


class BatchSource:
    """One seed's sampler state over the offline data and its replay buffer.

    Args:
        data: the offline data (shared by the seeds of a multi-seed run; shards only with one seed).
        batch_size, horizon, discount: the chunk sampler's B, h and gamma.
        offline_ratio: None (sample the buffer, which starts as the offline set) or the fraction of
            offline chunks in every online batch (the buffer then holds online data only).
        swap_online_prefix: online, a shard swap writes the new shard over the buffer's offline rows (only
            with ``offline_ratio`` None and shards).
    """

    def __init__(self, data: TaskData, batch_size: int, horizon: int, discount: float,
                 offline_ratio: float | None, device_cache: dict[int, DeviceData] | None = None,
                 swap_online_prefix: bool = False):
        self.dataset: Dataset = data.dataset
        self.sharded = data.sharded
        self.batch_size, self.horizon, self.discount = batch_size, horizon, discount
        self.offline_ratio = offline_ratio
        self.swap_online_prefix = swap_online_prefix
        self.buffer: ReplayBuffer | None = None
        self.sample_seconds = 0.0
        self._device_cache = {} if device_cache is None else device_cache

    @property
    def prefix(self) -> Dataset | None:
        """The dataset the buffer starts from (None when it holds online data only)."""
        return self.dataset if self.offline_ratio is None else None

    def fingerprint(self) -> dict[str, Any]:
        """Identifies the offline data, so a resume notices a regenerated or edited dataset."""
        if self.sharded is not None:
            return {"shards": [p.name for p in self.sharded.files]}
        return self.dataset.fingerprint()

    def sample(self, rng: np.random.Generator, n: int, online: bool) -> dict[str, np.ndarray]:
        """One batch (``n == 1``) or ``n`` batches stacked on a leading axis (``update_many``)."""
        t = time.perf_counter()
        B, h, g = self.batch_size, self.horizon, self.discount
        if not online:
            batches = [self.dataset.sample_chunks(B, h, g, rng) for _ in range(n)]
        elif self.offline_ratio is None:
            batches = [self.buffer.sample_chunks(B, h, g, rng) for _ in range(n)]
        else:
            batches = [sample_mixed_chunks(self.dataset, self.buffer, B, h, g, rng, self.offline_ratio)
                       for _ in range(n)]
        self.sample_seconds += time.perf_counter() - t
        return batches[0] if n == 1 else _stack(batches)

    def draw_starts(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """The start indices ``(n, B)`` of ``n`` offline batches (the draws :meth:`sample` makes), for
        :meth:`device_data`'s windows."""
        t = time.perf_counter()
        starts = np.stack([self.dataset.draw_starts(self.batch_size, self.horizon, self.discount, rng)
                           for _ in range(n)]).astype(np.int32)
        self.sample_seconds += time.perf_counter() - t
        return starts

    def device_data(self) -> DeviceData:
        """The current offline set in device memory (copied once, shared by the seeds of a run; a shard swap
        copies the new shard and drops the old one)."""
        key = id(self.dataset)
        data = self._device_cache.get(key)
        if data is None or data.dataset is not self.dataset:
            self._device_cache.clear()
            data = self._device_cache[key] = DeviceData(self.dataset)
        return data

    def start_online(self, buffer_size: int | None, online_steps: int) -> ReplayBuffer:
        """Create the replay buffer (see the module docstring for its contents)."""
        d = self.dataset
        if self.offline_ratio is not None:
            self.buffer = ReplayBuffer(buffer_size or online_steps, d.observation_dim, d.action_dim)
        else:
            cap = max(buffer_size or (d.size + online_steps), d.size + 1)
            self.buffer = ReplayBuffer.from_dataset(d, cap)
            self.buffer.end_episode()  # online episodes never continue the offline data's last one
        return self.buffer

    def buffer_state(self) -> dict[str, np.ndarray] | None:
        """The buffer in its checkpoint format (the offline prefix left out while intact)."""
        if self.buffer is None:
            return None
        return self.buffer.state_dict(skip=self.prefix.size if self.prefix is not None else 0)

    def restore_buffer(self, state: dict[str, np.ndarray]) -> None:
        self.buffer = ReplayBuffer.from_state_dict(state, prefix=self.prefix)

    def shard(self) -> int:
        return 0 if self.sharded is None else self.sharded.index

    def swap_shard(self, online: bool) -> int:
        """Load the next shard (a no-op without shards); returns its index. Online with a buffer that started
        as the offline set, only with ``swap_online_prefix``, and the shard then overwrites the buffer's offline
        rows (:meth:`~qchunk.data.dataset.ReplayBuffer.replace_prefix`)."""
        if self.sharded is None:
            return self.shard()
        if not online or self.offline_ratio is not None:
            self.dataset = self.sharded.next_shard()
        elif self.swap_online_prefix:
            self.dataset = self.sharded.next_shard()
            self.buffer.replace_prefix(self.dataset)
        return self.shard()

    def seek_shard(self, index: int) -> None:
        """Make shard ``index`` current (resume)."""
        if self.sharded is not None and index != self.sharded.index:
            self.sharded.index = index - 1
            self.dataset = self.sharded.next_shard()
