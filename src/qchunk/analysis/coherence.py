"""Exploration statistics of online training (the paper's section 5.4): temporal coherence of the
end-effector path, gripper contacts, and an opt-in per-step trajectory log.

Temporal coherence is the mean distance the end effector travels between positions recorded every
``every`` (= 5) environment steps. Chunked policies that act open-loop move in longer, straighter strokes
than single-step policies whose exploration noise is re-drawn every step, so their value is higher (the
paper: QC about 0.068 -> 0.062, BFN 0.050 -> 0.036 over the first 80K online steps of cube-triple task3).

Positions are world coordinates in metres, as :class:`qchunk.envs.probes.ExplorationProbes` reports them in
``info["ee_pos"]`` (OGBench: the ``ur5e/robotiq/pinch`` site; robomimic: the robot's end-effector site).

Sampling rule, shared by :func:`coherence` and :class:`CoherenceTracker`: the position of the state at
online environment step ``t`` (the state the step's action is applied to) is a *sample* when
``t % every == 0``; consecutive samples ``t`` and ``t + every`` form a *pair*, and a pair counts only
when both states belong to the same episode (no reset at any ``t' in (t, t + every]``). Temporal
coherence is the mean over pairs of ``||p(t + every) - p(t)||_2``.

Nothing here imports MuJoCo, gymnasium or JAX; reading the arm of an env is the env side's job
(:mod:`qchunk.envs.probes`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from qchunk.errors import QchunkError
from qchunk.fileio import atomic_savez

#: Version of the ``online_states.npz`` layout written by :class:`TrajectoryLog`.
TRAJECTORY_FORMAT = 1


def coherence(positions: np.ndarray, every: int = 5, episode_starts: np.ndarray | None = None) -> float:
    """Temporal coherence of an end-effector path: mean L2 norm of the differences between positions
    recorded every ``every`` steps, never across an episode reset.

    Args:
        positions: ``(T, 3)`` positions, row ``t`` = the state at step ``t`` (consecutive steps ``0..T-1``;
            shift the steps so that the first row's step is a multiple of ``every`` to match a tracker that
            started at that step).
        every: sampling period ``k`` (the paper: 5).
        episode_starts: ``(T,)`` bool, True where row ``t`` is the first state of an episode (just after a
            reset). ``None``: all rows belong to one episode.
    Returns:
        ``mean_j ||positions[(j+1)k] - positions[jk]||_2`` over the pairs ``j`` with no episode start at
        any row in ``(jk, (j+1)k]``; NaN when there is no such pair.
    """
    p = np.asarray(positions, np.float64)
    if p.ndim != 2:
        raise ValueError(f"positions must have shape (T, D), got {p.shape}")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    samples = np.arange(0, len(p), every)
    if len(samples) < 2:
        return float("nan")
    dist = np.linalg.norm(p[samples[1:]] - p[samples[:-1]], axis=1)
    if episode_starts is not None:
        starts = np.asarray(episode_starts, bool)
        if starts.shape != (len(p),):
            raise ValueError(f"episode_starts must have shape ({len(p)},), got {starts.shape}")
        # resets[j] = any start in rows (jk, (j+1)k]; cumulative counts make it one subtraction
        counts = np.concatenate([[0], np.cumsum(starts)])
        resets = counts[samples[1:] + 1] - counts[samples[:-1] + 1]
        dist = dist[resets == 0]
    return float(dist.mean()) if len(dist) else float("nan")


class CoherenceTracker:
    """Streaming temporal coherence and gripper-contact fraction over logging windows.

    Call :meth:`observe` once per online environment step with the state the step acts on (after a
    reset, the reset state with ``episode_start=True``), and :meth:`window_stats` at each logging point.
    The pair straddling two windows counts in the later one, so the windows partition the pairs that
    :func:`coherence` would use on the whole run. A gap in the steps (e.g. a resume without
    :meth:`load_state_dict`) breaks the path like a reset.

    Args:
        every: sampling period in environment steps (the paper: 5).
        prefix: prefix of the metric names.
    """

    def __init__(self, every: int = 5, prefix: str = "explore/"):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = int(every)
        self.prefix = prefix
        self._last_pos: np.ndarray | None = None
        self._last_step: int | None = None
        self._reset_window()

    def _reset_window(self) -> None:
        self._dist_sum = 0.0
        self._pairs = 0
        self._contact_steps = 0
        self._contacts = 0

    def observe(self, env_step: int, ee_pos: np.ndarray | None, episode_start: bool,
                contact: bool | None = None) -> None:
        """Record the state at online environment step ``env_step``.

        Args:
            env_step: online environment step of this state (increasing by 1 per call).
            ee_pos: ``(3,)`` end-effector world position, or None when the env has none (breaks the path).
            episode_start: this state was just produced by a reset.
            contact: whether the gripper touches something (None: unknown, not counted).
        """
        if contact is not None:
            self._contact_steps += 1
            self._contacts += bool(contact)
        if episode_start or ee_pos is None:
            self._last_pos = self._last_step = None
        if ee_pos is None or env_step % self.every:
            return
        pos = np.asarray(ee_pos, np.float64).reshape(-1)
        if self._last_pos is not None and env_step - self._last_step == self.every:
            self._dist_sum += float(np.linalg.norm(pos - self._last_pos))
            self._pairs += 1
        self._last_pos, self._last_step = pos.copy(), int(env_step)

    def window_stats(self) -> dict[str, float]:
        """Statistics since the previous call, then start a new window.

        Returns:
            ``{prefix}ee_step_l2``: temporal coherence of the window (NaN without a complete pair);
            ``{prefix}ee_pairs``: number of pairs it averages;
            ``{prefix}gripper_contact_frac``: fraction of observed steps with gripper contact (only when
            some step of the window reported contact information).
        """
        p = self.prefix
        out = {f"{p}ee_step_l2": self._dist_sum / self._pairs if self._pairs else float("nan"),
               f"{p}ee_pairs": float(self._pairs)}
        if self._contact_steps:
            out[f"{p}gripper_contact_frac"] = self._contacts / self._contact_steps
        self._reset_window()
        return out

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (for a checkpoint's ``state.json``), so a resumed run logs the same values."""
        return {"every": self.every, "last_pos": None if self._last_pos is None else self._last_pos.tolist(),
                "last_step": self._last_step, "dist_sum": self._dist_sum, "pairs": self._pairs,
                "contact_steps": self._contact_steps, "contacts": self._contacts}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.every = int(state["every"])
        self._last_pos = None if state["last_pos"] is None else np.asarray(state["last_pos"], np.float64)
        self._last_step = state["last_step"]
        self._dist_sum, self._pairs = float(state["dist_sum"]), int(state["pairs"])
        self._contact_steps, self._contacts = int(state["contact_steps"]), int(state["contacts"])


# ----------------------------------------------------------------------------- per-step trajectory log
class TrajectoryLog:
    """Per-step end-effector positions of online training, saved as ``RUN_DIR/online_states.npz``.

    File layout (``N`` = logged steps, in the order they happened):

    * ``env_step (N,) int64``: online environment step of the state (the state the step acts on);
    * ``ee_pos (N, 3) float32``: end-effector world position in metres;
    * ``episode (N,) int64``: online episode index (0 for the first online episode);
    * ``contact (N,) int8``: gripper contact 1/0, -1 when unknown;
    * ``format (), int64``: :data:`TRAJECTORY_FORMAT`.

    Appending is amortised O(1) (arrays grow by doubling); a 1M-step run holds about 29 MB.
    """

    def __init__(self, capacity: int = 4096):
        capacity = max(int(capacity), 1)
        self._step = np.zeros(capacity, np.int64)
        self._pos = np.zeros((capacity, 3), np.float32)
        self._episode = np.zeros(capacity, np.int64)
        self._contact = np.zeros(capacity, np.int8)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def _grow(self) -> None:
        cap = 2 * len(self._step)
        for name in ("_step", "_pos", "_episode", "_contact"):
            old = getattr(self, name)
            new = np.zeros((cap, *old.shape[1:]), old.dtype)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    def append(self, env_step: int, ee_pos: np.ndarray, episode: int, contact: bool | None = None) -> None:
        """Log one state: step, ``(3,)`` world position, episode index, contact (None: unknown)."""
        if self._n == len(self._step):
            self._grow()
        i = self._n
        self._step[i], self._pos[i], self._episode[i] = env_step, ee_pos, episode
        self._contact[i] = -1 if contact is None else int(bool(contact))
        self._n += 1

    def arrays(self) -> dict[str, np.ndarray]:
        """The logged rows as the arrays of the file layout (copies)."""
        n = self._n
        return {"env_step": self._step[:n].copy(), "ee_pos": self._pos[:n].copy(),
                "episode": self._episode[:n].copy(), "contact": self._contact[:n].copy(),
                "format": np.asarray(TRAJECTORY_FORMAT, np.int64)}

    def save(self, path: str | os.PathLike) -> None:
        """Write the log to ``path`` (``.npz``) atomically."""
        atomic_savez(path, self.arrays())

    @classmethod
    def load(cls, path: str | os.PathLike, before_step: int | None = None) -> TrajectoryLog:
        """Read a log back; ``before_step`` keeps only rows with ``env_step < before_step`` (for a resume
        from a checkpoint at that online step)."""
        data = load_online_states(path)
        keep = np.ones(len(data["env_step"]), bool) if before_step is None else data["env_step"] < before_step
        n = int(keep.sum())
        log = cls(capacity=2 * n)
        log._step[:n], log._pos[:n] = data["env_step"][keep], data["ee_pos"][keep]
        log._episode[:n], log._contact[:n] = data["episode"][keep], data["contact"][keep]
        log._n = n
        return log


def load_online_states(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read and validate an ``online_states.npz`` (see :class:`TrajectoryLog` for the layout).

    Raises:
        QchunkError: the file is missing, unreadable or not in that layout.
    """
    try:
        with np.load(path) as z:
            data = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise QchunkError(f"{path} does not exist; train with --save-online-states to record it") from None
    except (OSError, ValueError) as e:
        raise QchunkError(f"{path} is not a readable .npz file ({e})") from None
    missing = [k for k in ("env_step", "ee_pos", "episode") if k not in data]
    if missing:
        raise QchunkError(f"{path} is not an online-states file (missing {', '.join(missing)})")
    n = len(data["env_step"])
    if data["ee_pos"].shape != (n, 3) or data["episode"].shape != (n,):
        raise QchunkError(f"{path} is corrupt: env_step {data['env_step'].shape}, ee_pos {data['ee_pos'].shape}, "
                          f"episode {data['episode'].shape}")
    data.setdefault("contact", np.full(n, -1, np.int8))
    if not np.all(np.isfinite(data["ee_pos"])):
        raise QchunkError(f"{path} is corrupt: non-finite positions")
    return data


def path_breaks(env_step: np.ndarray, episode: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: rows that do not continue the previous row's path (a new episode, or a gap in the steps)."""
    env_step, episode = np.asarray(env_step), np.asarray(episode)
    starts = np.ones(len(env_step), bool)
    starts[1:] = (np.diff(episode) != 0) | (np.diff(env_step) != 1)
    return starts


def log_coherence(env_step: np.ndarray, ee_pos: np.ndarray, episode: np.ndarray, every: int = 5) -> float:
    """Temporal coherence of logged rows (as :class:`TrajectoryLog` stores them), by the tracker's rule.

    Args:
        env_step: ``(N,)`` online step of each row (increasing).
        ee_pos: ``(N, 3)`` positions.
        episode: ``(N,)`` episode index of each row.
        every: sampling period.
    Returns:
        The value a :class:`CoherenceTracker` fed these rows would report over one window (NaN: no pair).
    """
    env_step = np.asarray(env_step, np.int64)
    counts = np.cumsum(path_breaks(env_step, episode))
    sel = np.flatnonzero(env_step % every == 0)
    a, b = sel[:-1], sel[1:]
    ok = (env_step[b] - env_step[a] == every) & (counts[b] == counts[a])
    if not ok.any():
        return float("nan")
    pos = np.asarray(ee_pos, np.float64)
    return float(np.linalg.norm(pos[b[ok]] - pos[a[ok]], axis=1).mean())
