"""Transition storage with a chunk sampler: the offline :class:`Dataset` and the ring :class:`ReplayBuffer`.

Both keep transitions in time order. Transition ``i`` is ``(observations[i], actions[i], rewards[i],
next_observations[i])`` with two flags:

- ``terminals[i] = 1``: transition ``i`` is the last of its episode (success, failure or time limit).
  Windows never read across it: later steps of the window are marked invalid.
- ``masks[i] = 0``: the episode *terminated* at ``i`` (success), so nothing is bootstrapped past it.
  A time-limit truncation keeps ``masks = 1``.

:meth:`Dataset.sample_chunks` draws windows ``t .. t+h-1`` and returns the h-step quantities that the
chunked TD target needs (see its docstring for the exact definitions).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from qchunk.errors import QchunkError, require

#: The keys every dataset stores, one row per transition.
TRANSITION_KEYS = ("observations", "actions", "rewards", "terminals", "masks", "next_observations")


def _check_arrays(arrays: Mapping[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Validate transition arrays; return them as float32 with rewards/terminals/masks 1-D."""
    missing = [k for k in ("observations", "actions", "rewards", "terminals") if k not in arrays]
    require(not missing, f"{source}: missing keys {missing}; a dataset needs {list(TRANSITION_KEYS[:4])}")
    out = {k: np.asarray(v) for k, v in arrays.items() if k in TRANSITION_KEYS}
    n = len(out["observations"])
    require(n > 0, f"{source}: the dataset is empty (0 transitions)")
    for k, v in out.items():
        require(len(v) == n, f"{source}: '{k}' has {len(v)} rows but 'observations' has {n}; "
                             "all arrays must have one row per transition")
    if "masks" not in out:
        out["masks"] = np.ones(n, np.float32)
    if "next_observations" not in out:
        raise QchunkError(f"{source}: missing 'next_observations'")
    require(out["observations"].ndim == 2, f"{source}: observations must be 2-D (N, obs_dim), "
                                           f"got shape {out['observations'].shape}")
    require(out["actions"].ndim == 2, f"{source}: actions must be 2-D (N, action_dim), got {out['actions'].shape}")
    require(out["next_observations"].shape == out["observations"].shape,
            f"{source}: next_observations shape {out['next_observations'].shape} != observations shape "
            f"{out['observations'].shape}")
    for k in ("rewards", "terminals", "masks"):
        require(out[k].ndim == 1, f"{source}: '{k}' must be 1-D (N,), got shape {out[k].shape}")
    out = {k: v.astype(np.float32, copy=False) for k, v in out.items()}
    for k in ("observations", "next_observations", "actions", "rewards"):
        bad = ~np.isfinite(out[k])
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise QchunkError(f"{source}: '{k}' contains NaN or inf ({int(bad.sum())} values, first at row {row}); "
                              "regenerate or clean the dataset")
    for k in ("terminals", "masks"):
        require(np.isin(out[k], (0.0, 1.0)).all(), f"{source}: '{k}' must contain only 0 and 1")
    return out


class Dataset:
    """A sequence of transitions that samples action chunks.

    Args:
        observations: ``(N, obs_dim)`` states s_t.
        actions: ``(N, A)`` actions a_t.
        rewards: ``(N,)`` rewards r_t.
        terminals: ``(N,)`` 1 where transition t ends its episode (any reason), else 0.
        next_observations: ``(N, obs_dim)`` states s_{t+1}.
        masks: ``(N,)`` 0 where the episode terminated (no bootstrap), else 1. Default all ones.
        source: a name for error messages (a file path, say).

    All arrays are stored as float32. Invalid input raises :class:`~qchunk.errors.QchunkError`.
    """

    def __init__(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminals: np.ndarray,
        next_observations: np.ndarray,
        masks: np.ndarray | None = None,
        *,
        source: str = "dataset",
    ):
        arrays = dict(observations=observations, actions=actions, rewards=rewards, terminals=terminals,
                      next_observations=next_observations, masks=masks)
        arrays = {k: v for k, v in arrays.items() if v is not None}
        self._init_storage(_check_arrays(arrays, source), capacity=None)
        self.source = source

    @classmethod
    def from_dict(cls, arrays: Mapping[str, np.ndarray], source: str = "dataset") -> Dataset:
        """Build from a dict with the keys of :data:`TRANSITION_KEYS` (``masks`` optional)."""
        return cls(**{k: arrays.get(k) for k in TRANSITION_KEYS}, source=source)

    def _init_storage(self, arrays: dict[str, np.ndarray], capacity: int | None) -> None:
        n = len(arrays["observations"])
        capacity = n if capacity is None else capacity
        if capacity == n:
            self._data = dict(arrays)
        else:
            self._data = {k: np.zeros((capacity, *v.shape[1:]), np.float32) for k, v in arrays.items()}
            for k, v in arrays.items():
                self._data[k][:n] = v
        self._capacity = capacity
        self._size = n
        self._ptr = n % capacity  # next physical slot to write
        self._reset_episode_stats()

    def _reset_episode_stats(self) -> None:
        lengths = self.episode_lengths() if self._size else np.zeros(1, np.int64)
        self._longest_episode = int(lengths.max())
        terms = self._data["terminals"]
        last_closed = self._size == 0 or terms[self._physical(np.array(self._size - 1))] > 0
        self._open_episode_len = 0 if last_closed else int(lengths[-1])

    # ------------------------------------------------------------------ properties
    @property
    def size(self) -> int:
        """Number of stored transitions."""
        return self._size

    def __len__(self) -> int:
        return self._size

    @property
    def observation_dim(self) -> int:
        return int(self._data["observations"].shape[1])

    @property
    def action_dim(self) -> int:
        return int(self._data["actions"].shape[1])

    def _physical(self, logical: np.ndarray) -> np.ndarray:
        """Map logical indices (0 = oldest stored transition) to storage slots."""
        start = self._ptr if self._size == self._capacity else 0
        return (start + logical) % self._capacity

    def arrays(self) -> dict[str, np.ndarray]:
        """The stored transitions in time order (oldest first), as a dict of arrays (copies when wrapped)."""
        idx = self._physical(np.arange(self._size))
        return {k: v[idx] for k, v in self._data.items()}

    def clip_actions(self, eps: float) -> None:
        """Clip the stored actions to ``[-1 + eps, 1 - eps]`` in place (see :data:`ACTION_CLIP_EPS`)."""
        np.clip(self._data["actions"], -1.0 + eps, 1.0 - eps, out=self._data["actions"])

    def fingerprint(self) -> dict[str, object]:
        """A cheap identity of the stored data (size + SHA-1 of terminals, rewards and sampled observations),
        so a resumed run notices a regenerated or edited dataset."""
        import hashlib

        h = hashlib.sha1()
        a = self.arrays() if self._size < self._capacity or self._ptr else self._data
        for k in ("terminals", "rewards"):
            h.update(np.ascontiguousarray(a[k]).tobytes())
        h.update(np.ascontiguousarray(a["observations"][:: max(1, self._size // 64)]).tobytes())
        return {"size": self._size, "sha1": h.hexdigest()}

    def episode_lengths(self) -> np.ndarray:
        """Lengths of the stored episodes in time order; a trailing unfinished episode is included."""
        terms = self._data["terminals"][self._physical(np.arange(self._size))]
        ends = np.flatnonzero(terms > 0)
        bounds = np.concatenate([[-1], ends, [self._size - 1] if (len(ends) == 0 or ends[-1] != self._size - 1)
                                 else np.empty(0, np.int64)])
        return np.diff(bounds).astype(np.int64)

    # ------------------------------------------------------------------ sampling
    def _check_sample_args(self, batch_size: int, horizon: int, discount: float) -> None:
        require(isinstance(batch_size, int | np.integer) and batch_size >= 1,
                f"batch_size must be a positive integer, got {batch_size!r}")
        require(isinstance(horizon, int | np.integer) and horizon >= 1,
                f"horizon (chunk length) must be an integer >= 1, got {horizon!r}")
        require(0.0 < discount <= 1.0, f"discount must be in (0, 1], got {discount!r}")
        require(horizon <= self._size, f"horizon {horizon} is longer than the {self._size} stored transitions")
        longest = self._longest_episode
        require(horizon <= longest, f"horizon {horizon} is longer than every episode in {self.source} "
                                    f"(longest: {longest} steps); use a shorter chunk")

    def sample_starts(self, batch_size: int, horizon: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform logical start indices whose window lies inside the stored data.

        A window may end at the newest transition only if it closes an episode: otherwise its last
        steps would be data not yet written (or, in a full ring buffer, the oldest data).
        """
        newest_closes = self._data["terminals"][self._physical(np.array(self._size - 1))] > 0
        high = self._size if newest_closes else self._size - horizon + 1
        return rng.integers(0, high, size=batch_size)

    def sample_chunks(
        self, batch_size: int, horizon: int, discount: float, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Sample ``batch_size`` windows of ``horizon`` steps for chunked TD learning.

        For a window starting at t and k = 0..h-1:

        - ``observations (B, obs)``: s_t.
        - ``actions (B, h, A)``: a_{t+k}.
        - ``valid (B, h)``: 1 if step t+k belongs to the episode of t (no episode end at t..t+k-1).
        - ``rewards (B, h)``: sum_{j<=k, valid} discount^j r_{t+j} (rewards of a later episode never count).
        - ``masks (B, h)``: min_{j<=k} masks_{t+j}: 0 once the episode terminated inside the window.
        - ``next_observations (B, h, obs)``: s_{t+k+1}.

        Steps after an episode end (``valid = 0``) repeat the episode's last action, next state and mask, so
        every entry is well defined; losses weight them out via ``valid``.

        Args:
            batch_size: B >= 1.
            horizon: h >= 1, at most the longest stored episode.
            discount: gamma in (0, 1].
            rng: the numpy generator that draws the start indices (explicit, for reproducibility).

        Returns:
            A dict of float32 arrays with the shapes above.
        """
        return self.chunks_at(self.draw_starts(batch_size, horizon, discount, rng), horizon, discount)

    def draw_starts(self, batch_size: int, horizon: int, discount: float, rng: np.random.Generator) -> np.ndarray:
        """The start indices ``(B,)`` :meth:`sample_chunks` draws (the same draws from ``rng``), its arguments
        checked; :class:`~qchunk.data.device.DeviceData` gathers their windows on the device."""
        self._check_sample_args(batch_size, horizon, discount)
        return self.sample_starts(batch_size, horizon, rng)

    def chunks_at(self, starts: np.ndarray, horizon: int, discount: float) -> dict[str, np.ndarray]:
        """The windows of :meth:`sample_chunks` at given logical start indices ``starts (B,)``."""
        d = self._data
        offsets = np.arange(horizon)
        raw = np.minimum(starts[:, None] + offsets, self._size - 1)  # (B, h) logical
        terms = d["terminals"][self._physical(raw)]
        # valid[k] = no episode end at steps t..t+k-1.
        ended_before = np.concatenate([np.zeros((len(starts), 1), np.float32),
                                       np.maximum.accumulate(terms, axis=1)[:, :-1]], axis=1)
        valid = 1.0 - ended_before
        # Index of the last valid step up to k: invalid steps repeat the episode's last transition.
        eff = self._physical(starts[:, None] + np.cumsum(valid, axis=1).astype(np.int64) - 1)
        step_rewards = d["rewards"][eff] * valid * (discount ** offsets).astype(np.float32)
        return {
            "observations": d["observations"][self._physical(starts)],
            "actions": d["actions"][eff],
            "rewards": np.cumsum(step_rewards, axis=1, dtype=np.float32),
            "masks": np.minimum.accumulate(d["masks"][eff], axis=1),
            "valid": valid.astype(np.float32),
            "next_observations": d["next_observations"][eff],
        }


class ReplayBuffer(Dataset):
    """A ring buffer of transitions with the :class:`Dataset` chunk sampler.

    When full, :meth:`add` overwrites the oldest transition. Sampling only reads written slots, and a
    window never spans the write pointer (the newest data is never stitched to the oldest).
    """

    def __init__(self, capacity: int, observation_dim: int, action_dim: int, *, source: str = "replay buffer"):
        require(capacity >= 1, f"replay buffer capacity must be >= 1, got {capacity}")
        self._data = {
            "observations": np.zeros((capacity, observation_dim), np.float32),
            "actions": np.zeros((capacity, action_dim), np.float32),
            "rewards": np.zeros(capacity, np.float32),
            "terminals": np.zeros(capacity, np.float32),
            "masks": np.ones(capacity, np.float32),
            "next_observations": np.zeros((capacity, observation_dim), np.float32),
        }
        self._capacity = capacity
        self._size = 0
        self._ptr = 0
        self._reset_episode_stats()
        self.source = source

    @classmethod
    def from_dataset(cls, dataset: Dataset, capacity: int | None = None) -> ReplayBuffer:
        """A buffer holding a copy of ``dataset`` (in time order) with room for ``capacity`` transitions.

        QC-family fine-tuning starts its online buffer this way and appends online data to it.
        """
        capacity = dataset.size if capacity is None else capacity
        require(capacity >= dataset.size, f"replay buffer capacity {capacity} is smaller than the offline "
                                          f"dataset ({dataset.size} transitions)")
        buf = cls.__new__(cls)
        buf._init_storage(dataset.arrays(), capacity)
        buf.source = f"replay buffer from {dataset.source}"
        return buf

    @property
    def capacity(self) -> int:
        return self._capacity

    def add(self, observation, action, reward: float, terminal: bool, mask: float, next_observation) -> None:
        """Append one transition; ``terminal``: episode ended (any reason), ``mask``: 0 if it terminated."""
        i = self._ptr
        d = self._data
        d["observations"][i] = observation
        d["actions"][i] = action
        d["rewards"][i] = reward
        d["terminals"][i] = float(terminal)
        d["masks"][i] = mask
        d["next_observations"][i] = next_observation
        self._ptr = (i + 1) % self._capacity
        self._size = min(self._size + 1, self._capacity)
        self._open_episode_len += 1
        self._longest_episode = max(self._longest_episode, self._open_episode_len)
        if terminal:
            self._open_episode_len = 0

    def rows_since(self, start: int) -> dict[str, np.ndarray]:
        """Transitions ``start..size-1`` (logical, time order), e.g. those appended after the offline data."""
        idx = self._physical(np.arange(start, self._size))
        return {k: v[idx] for k, v in self._data.items()}

    def end_episode(self) -> None:
        """Mark the newest transition as the end of its episode (a cut, not a termination: mask unchanged)."""
        if self._size:
            self._data["terminals"][(self._ptr - 1) % self._capacity] = 1.0
            self._open_episode_len = 0

    def extend(self, rows: Mapping[str, np.ndarray]) -> None:
        """Append many transitions at once (``rows`` as returned by :meth:`arrays`), oldest first."""
        n = len(rows["observations"])
        for start in range(0, n, self._capacity):  # chunks no larger than the ring
            part = {k: np.asarray(rows[k][start:start + self._capacity]) for k in self._data}
            m = len(part["observations"])
            idx = (self._ptr + np.arange(m)) % self._capacity
            for k, v in part.items():
                self._data[k][idx] = v
            self._ptr = int((self._ptr + m) % self._capacity)
            self._size = min(self._size + m, self._capacity)
        self._reset_episode_stats()

    def replace_prefix(self, dataset: Dataset) -> None:
        """Write ``dataset`` over the buffer's first ``dataset.size`` physical rows, where a buffer made by
        :meth:`from_dataset` keeps its offline data (the QAM code's online shard swap,
        ``replay_buffer[k][:size] = shard[k]``); its last row ends an episode, as the prefix of a restored buffer.
        The size is unchanged; ``dataset`` may be no larger than it."""
        n = dataset.size
        require(n <= self._size, f"a {n}-transition shard does not fit the {self._size} rows of the replay buffer")
        rows = dataset.arrays()
        for k, v in self._data.items():
            v[:n] = rows[k] if k in rows else 1.0  # masks default to 1
        self._data["terminals"][n - 1] = 1.0
        self._reset_episode_stats()

    def state_dict(self, skip: int = 0) -> dict[str, np.ndarray]:
        """Everything needed to restore the buffer exactly (its checkpoint format).

        ``skip``: the first ``skip`` transitions are a copy of a dataset the restorer has anyway (the
        offline set a QC-family buffer starts from); while nothing has been overwritten they are left
        out, so a checkpoint stores only the online rows (the prefix is restored as a closed episode).
        ``_meta`` holds capacity, size, write pointer
        and the rows left out.
        """
        wrapped = self._size == self._capacity
        skip = 0 if wrapped else min(skip, self._size)
        rows = {k: (v if wrapped else v[skip: self._size]) for k, v in self._data.items()}
        return {**rows, "_meta": np.array([self._capacity, self._size, self._ptr, skip], np.int64)}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, np.ndarray], prefix: Dataset | None = None) -> ReplayBuffer:
        """Inverse of :meth:`state_dict`; ``prefix`` is the dataset whose rows were skipped (if any)."""
        meta = [int(x) for x in state["_meta"]]
        capacity, size, ptr = meta[:3]
        skip = meta[3] if len(meta) > 3 else 0
        if skip:
            require(prefix is not None and prefix.size == skip,
                    f"this replay buffer starts with a {skip}-transition dataset; pass it as prefix")
            buf = cls.from_dataset(prefix, capacity)
            buf.end_episode()  # the prefix ends an episode (online episodes never continue it)
            buf.extend({k: state[k] for k in buf._data})
            require((buf._size, buf._ptr) == (size, ptr), "replay buffer state is inconsistent with its rows")
            return buf
        buf = cls(capacity, state["observations"].shape[1], state["actions"].shape[1])
        for k in buf._data:
            buf._data[k][: len(state[k])] = state[k]
        buf._size, buf._ptr = size, ptr
        buf._reset_episode_stats()
        return buf
