"""Batches that mix offline and online chunks in a fixed proportion (RLPD's "symmetric sampling")."""

from __future__ import annotations

import numpy as np

from qchunk.data.dataset import Dataset
from qchunk.errors import require


def mixed_batch_sizes(batch_size: int, offline_ratio: float) -> tuple[int, int]:
    """``(offline, online)`` rows of a batch of ``batch_size``: ``round(batch_size * offline_ratio)`` offline,
    the rest online (256 at 0.5 gives 128 + 128)."""
    require(0.0 <= offline_ratio <= 1.0, f"offline_ratio must be in [0, 1], got {offline_ratio}")
    offline = round(batch_size * offline_ratio)
    return offline, batch_size - offline


def sample_mixed_chunks(
    offline: Dataset,
    online: Dataset,
    batch_size: int,
    horizon: int,
    discount: float,
    rng: np.random.Generator,
    offline_ratio: float = 0.5,
) -> dict[str, np.ndarray]:
    """A batch of chunks (the layout of :meth:`Dataset.sample_chunks`) whose first rows are drawn uniformly
    from ``offline`` and the remaining rows from ``online``, in the proportion of
    :func:`mixed_batch_sizes`. Both halves go through the same chunk sampler, so episode ends, masks and
    ``valid`` are handled identically; the two stores are never concatenated.

    Args:
        offline: the prior data.
        online: the online replay buffer.
        batch_size: total rows B.
        horizon: chunk length h.
        discount: gamma.
        rng: draws the offline starts first, then the online starts.
        offline_ratio: fraction of rows from ``offline`` (0.5: symmetric sampling).
    """
    n_offline, n_online = mixed_batch_sizes(batch_size, offline_ratio)
    parts = []
    if n_offline:
        parts.append(offline.sample_chunks(n_offline, horizon, discount, rng))
    if n_online:
        parts.append(online.sample_chunks(n_online, horizon, discount, rng))
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
