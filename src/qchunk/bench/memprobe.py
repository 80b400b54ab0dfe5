"""Peak memory: of a full :class:`~qchunk.data.ReplayBuffer` in a fresh process, and of a process tree.

Run by the ``data`` suite as ``python -m qchunk.bench.memprobe CAPACITY OBS_DIM ACTION_DIM BATCHES SEED``
(one process per capacity, so each peak is its own); prints one JSON object. Only numpy and
:mod:`qchunk.data` are imported (no JAX), so the baseline is small.

The buffer is allocated, then every row is written in place (synthetic transitions, an episode end every
1000 rows), which touches every page, as a buffer filled by training holds them; then ``BATCHES`` chunk
batches (256 x h=5) are sampled from it. ``peak_rss_mb`` is the process's peak resident set (``VmHWM``)
minus its resident set before the allocation.

:class:`TreeRss` samples the summed resident set of this process and given child processes (the
evaluation pool's workers) in a background thread; the ``eval`` suite reports its peak.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Sequence

import numpy as np

#: Rows written per block while filling (the block is reused, so filling allocates almost nothing).
_BLOCK = 1 << 14


def _status_mb(key: str, pid: int | str = "self") -> float | None:
    """A ``/proc/<pid>/status`` entry (``VmRSS``, ``VmHWM``) in MB; None off Linux or for a gone process."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


class TreeRss:
    """Peak summed resident set (``VmRSS``) of this process and ``pids``, sampled every ``interval`` s.

    Use as a context manager around the work; :attr:`peak_mb` is None off Linux. Short spikes between
    two samples are missed, so the peak is a lower bound (``interval`` 0.1 s, as an external sampler).
    """

    def __init__(self, pids: Sequence[int] = (), interval: float = 0.1):
        self.pids, self.interval = list(pids), interval
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> float | None:
        """The summed resident set now, in MB (processes that are gone count 0)."""
        mine = _status_mb("VmRSS")
        if mine is None:
            return None
        return mine + sum(_status_mb("VmRSS", pid) or 0.0 for pid in self.pids)

    def _run(self) -> None:
        while True:
            now = self.sample()
            if now is not None:
                self.peak_mb = now if self.peak_mb is None else max(self.peak_mb, now)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def probe(capacity: int, observation_dim: int, action_dim: int, batches: int, seed: int = 0) -> dict[str, float | None]:
    """Allocate and fill a buffer of ``capacity`` transitions, sample from it; returns the measurements."""
    from qchunk.data.dataset import ReplayBuffer

    rng = np.random.default_rng(seed)
    base = _status_mb("VmRSS")
    t0 = time.perf_counter()
    buf = ReplayBuffer(capacity, observation_dim, action_dim)
    data = buf._data  # the storage, written in place: no temporary copies distort the peak
    block = {k: rng.uniform(-1.0, 1.0, (_BLOCK, *v.shape[1:])).astype(np.float32) for k, v in data.items()}
    block["masks"][:] = 1.0
    block["terminals"][:] = (np.arange(_BLOCK) % 1000 == 999).astype(np.float32)
    for start in range(0, capacity, _BLOCK):
        stop = min(start + _BLOCK, capacity)
        for k, v in data.items():
            v[start:stop] = block[k][: stop - start]
    # what add() would have tracked for episodes of 1000 steps (recomputing it would allocate O(capacity))
    buf._size, buf._ptr = capacity, 0
    buf._longest_episode, buf._open_episode_len = min(1000, capacity), capacity % 1000
    fill_s = time.perf_counter() - t0
    rss_filled = _status_mb("VmRSS")

    horizon, batch_size = 5, 256
    buf.sample_chunks(batch_size, horizon, 0.99, rng)
    t0 = time.perf_counter()
    for _ in range(batches):
        buf.sample_chunks(batch_size, horizon, 0.99, rng)
    sample_s = time.perf_counter() - t0
    peak = _status_mb("VmHWM")
    return {
        "capacity": capacity,
        "expected_mb": sum(v.nbytes for v in data.values()) / 2**20,
        "baseline_rss_mb": base,
        "peak_rss_mb": None if peak is None or base is None else peak - base,
        "filled_rss_mb": None if rss_filled is None or base is None else rss_filled - base,
        "fill_s": fill_s,
        "batches_per_s": batches / sample_s if batches else None,
    }


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m qchunk.bench.memprobe``."""
    capacity, obs_dim, act_dim, batches, seed = (int(x) for x in (argv or sys.argv[1:]))
    print(json.dumps(probe(capacity, obs_dim, act_dim, batches, seed)))


if __name__ == "__main__":
    main()
