"""Peak memory of a full :class:`~qchunk.data.ReplayBuffer`, measured in a fresh process.

Run by the ``data`` suite as ``python -m qchunk.bench.memprobe CAPACITY OBS_DIM ACTION_DIM BATCHES SEED``
(one process per capacity, so each peak is its own); prints one JSON object. Only numpy and
:mod:`qchunk.data` are imported (no JAX), so the baseline is small.

The buffer is allocated, then every row is written in place (synthetic transitions, an episode end every
1000 rows), which touches every page, as a buffer filled by training holds them; then ``BATCHES`` chunk
batches (256 x h=5) are sampled from it. ``peak_rss_mb`` is the process's peak resident set (``VmHWM``)
minus its resident set before the allocation.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

#: Rows written per block while filling (the block is reused, so filling allocates almost nothing).
_BLOCK = 1 << 14


def _status_mb(key: str) -> float | None:
    """A ``/proc/self/status`` entry (``VmRSS``, ``VmHWM``) in MB; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


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
