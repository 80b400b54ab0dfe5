"""Chunk windows gathered on the accelerator (``qchunk train --sample-on device``).

:class:`DeviceData` holds a :class:`~qchunk.data.dataset.Dataset`'s transitions in device memory, in time order;
:func:`gather_chunks` computes, inside a jitted function, the same windows as
:meth:`Dataset.chunks_at <qchunk.data.dataset.Dataset.chunks_at>` from start indices that the host draws with
:meth:`Dataset.draw_starts <qchunk.data.dataset.Dataset.draw_starts>` (the same numpy generator, the same
draws). Only the start indices (``B`` integers per batch) cross the host boundary.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from qchunk.data.dataset import TRANSITION_KEYS, Dataset


def gather_chunks(arrays: dict[str, jax.Array], starts: jax.Array, horizon: int,
                  discount: float) -> dict[str, jax.Array]:
    """The windows of ``Dataset.chunks_at`` for time-ordered ``arrays`` (``observations (N, obs)``,
    ``actions (N, A)``, ``rewards``, ``terminals``, ``masks`` ``(N,)``, ``next_observations (N, obs)``) at
    ``starts (..., B)``; traceable. Returns ``observations (..., B, obs)``, ``actions (..., B, h, A)``,
    ``rewards``, ``masks``, ``valid (..., B, h)`` and ``next_observations (..., B, h, obs)``, float32."""
    size = arrays["terminals"].shape[0]
    offsets = jnp.arange(horizon)
    starts = starts.astype(jnp.int32)
    raw = jnp.minimum(starts[..., None] + offsets, size - 1)  # (..., B, h)
    terms = arrays["terminals"][raw]
    # valid[k] = no episode end at steps t..t+k-1
    ended = jax.lax.cummax(terms, axis=terms.ndim - 1)
    ended_before = jnp.concatenate([jnp.zeros_like(ended[..., :1]), ended[..., :-1]], axis=-1)
    valid = 1.0 - ended_before
    # the last valid step up to k: invalid steps repeat the episode's last transition
    eff = starts[..., None] + jnp.cumsum(valid, axis=-1).astype(jnp.int32) - 1
    powers = jnp.asarray((discount ** np.arange(horizon)).astype(np.float32))
    step_rewards = arrays["rewards"][eff] * valid * powers
    return {
        "observations": arrays["observations"][starts],
        "actions": arrays["actions"][eff],
        "rewards": jnp.cumsum(step_rewards, axis=-1),
        "masks": jax.lax.cummin(arrays["masks"][eff], axis=eff.ndim - 1),
        "valid": valid.astype(jnp.float32),
        "next_observations": arrays["next_observations"][eff],
    }


@functools.partial(jax.jit, static_argnums=(2, 3))
def _gather(arrays, starts, horizon, discount):
    return gather_chunks(arrays, starts, horizon, discount)


class DeviceData:
    """``dataset``'s transitions in device memory (time order), with the chunk sampler's interface.

    ``arrays`` is what a jitted step passes to :func:`gather_chunks`; :meth:`sample_chunks` and
    :meth:`chunks_at` return the same batches as the dataset's methods of those names (as numpy arrays; equal
    up to float rounding of the discounted reward sums), for tests and small uses.
    """

    def __init__(self, dataset: Dataset):
        rows = dataset.arrays()
        self.dataset = dataset
        self.size = dataset.size
        self.arrays = {k: jnp.asarray(rows[k]) for k in TRANSITION_KEYS}
        self.nbytes = int(sum(v.nbytes for v in rows.values()))

    def draw_starts(self, batch_size: int, horizon: int, discount: float, rng: np.random.Generator) -> np.ndarray:
        """:meth:`Dataset.draw_starts` of the dataset (the host's draws)."""
        return self.dataset.draw_starts(batch_size, horizon, discount, rng)

    def chunks_at(self, starts: np.ndarray, horizon: int, discount: float) -> dict[str, np.ndarray]:
        out = _gather(self.arrays, jnp.asarray(starts, jnp.int32), int(horizon), float(discount))
        return {k: np.asarray(v) for k, v in out.items()}

    def sample_chunks(self, batch_size: int, horizon: int, discount: float,
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self.chunks_at(self.draw_starts(batch_size, horizon, discount, rng), horizon, discount)
