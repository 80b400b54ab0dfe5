"""Check a dataset against the environment it will train on, before any work is done.

A dataset made for another task (actions of width 3 for a 5-dimensional arm, say) loads fine and samples
fine; it only breaks when the agent first acts in the environment, after the offline phase has run up to
the first evaluation. :func:`check_dataset` compares the data with the environment's spaces up front and
raises one :class:`~qchunk.errors.QchunkError` line naming the file, the mismatch and the fix.

Checked, in this order: observation and action shapes, float dtypes, finite values, actions inside the
action bounds (tolerance :data:`ACTION_TOLERANCE`) and the last transition ending an episode.
"""

from __future__ import annotations

from collections.abc import Mapping

import gymnasium as gym
import numpy as np

from qchunk.data.dataset import Dataset
from qchunk.errors import QchunkError, require

#: How far an action may lie outside the action bounds before it counts as out of range (float32 rounding).
ACTION_TOLERANCE = 1e-6

_FIX_TASK = "use the --env the dataset was made for, or regenerate the dataset for this task"


def _env_label(name: str | None) -> str:
    return name if name else "the environment"


def _bounds_text(low: np.ndarray, high: np.ndarray) -> str:
    if low.size and np.all(low == low.flat[0]) and np.all(high == high.flat[0]):
        return f"[{low.flat[0]:.4g}, {high.flat[0]:.4g}]"
    return f"[{np.array2string(low, precision=4)}, {np.array2string(high, precision=4)}]"


def check_dataset(
    dataset: Dataset | Mapping[str, np.ndarray],
    observation_space: gym.spaces.Box,
    action_space: gym.spaces.Box,
    *,
    source: str,
    env_name: str | None = None,
) -> None:
    """Raise :class:`QchunkError` (one line: file, mismatch, fix) unless ``dataset`` fits the environment.

    Args:
        dataset: a :class:`Dataset` (its stored transitions are checked), or raw arrays as read from a
            file: ``observations (N, *obs_shape)`` and ``actions (N, *action_shape)`` are required;
            ``rewards (N,)``, ``terminals (N,)`` and ``next_observations (N, *obs_shape)`` are checked when
            present (a file in the official OGBench layout has no rewards).
        observation_space: the environment's ``Box`` observation space.
        action_space: the environment's ``Box`` action space.
        source: the dataset's name in messages (its file path).
        env_name: the environment's name in messages (default "the environment").

    Checks: observation shape ``== observation_space.shape`` (for ``observations`` and
    ``next_observations``), action shape ``== action_space.shape``; floating dtypes for actions, rewards
    and (when the space is floating) observations; no NaN or inf in observations, actions, rewards or
    next observations; every action within ``[low - 1e-6, high + 1e-6]``; ``terminals[-1] == 1`` (the last
    transition ends an episode).
    """
    for name, space in (("observation_space", observation_space), ("action_space", action_space)):
        require(isinstance(space, gym.spaces.Box), f"{name} must be a gymnasium Box, got {type(space).__name__}")
    arrays = dataset.arrays() if isinstance(dataset, Dataset) else {k: np.asarray(v) for k, v in dataset.items()}
    missing = [k for k in ("observations", "actions") if k not in arrays]
    require(not missing, f"{source}: missing {missing}; a dataset needs observations and actions")
    env = _env_label(env_name)

    # Shapes: a dataset of another task.
    for key in ("observations", "next_observations"):
        if key in arrays and tuple(arrays[key].shape[1:]) != tuple(observation_space.shape):
            raise QchunkError(f"{source}: observation shape {tuple(arrays[key].shape[1:])} ('{key}') does not "
                              f"match {env}'s observation shape {tuple(observation_space.shape)}; {_FIX_TASK}")
    actions = arrays["actions"]
    if tuple(actions.shape[1:]) != tuple(action_space.shape):
        raise QchunkError(f"{source}: action shape {tuple(actions.shape[1:])} does not match {env}'s action "
                          f"shape {tuple(action_space.shape)}; {_FIX_TASK}")

    # Dtypes: continuous actions, rewards and (float-space) observations must be stored as floats.
    need_float = ["actions", "rewards"]
    if np.issubdtype(observation_space.dtype, np.floating):
        need_float += ["observations", "next_observations"]
    for key in need_float:
        if key in arrays and not np.issubdtype(arrays[key].dtype, np.floating):
            raise QchunkError(f"{source}: '{key}' are stored as {arrays[key].dtype} but {env} needs floats; "
                              f"save them as float32 (e.g. arrays['{key}'].astype(np.float32)) or regenerate "
                              "the dataset")

    # Finite values.
    for key in ("observations", "actions", "rewards", "next_observations"):
        if key in arrays and np.issubdtype(arrays[key].dtype, np.floating):
            bad = ~np.isfinite(arrays[key])
            if bad.any():
                rows = bad.reshape(len(bad), -1).any(axis=1)
                raise QchunkError(f"{source}: '{key}' holds NaN or inf in {int(rows.sum())} rows (first at row "
                                  f"{int(np.argmax(rows))}); clean or regenerate the dataset")

    # Action bounds.
    low = np.broadcast_to(np.asarray(action_space.low, np.float64), action_space.shape)
    high = np.broadcast_to(np.asarray(action_space.high, np.float64), action_space.shape)
    a = actions.astype(np.float64, copy=False)
    outside = ((a < low - ACTION_TOLERANCE) | (a > high + ACTION_TOLERANCE)).reshape(len(a), -1).any(axis=1)
    if outside.any():
        raise QchunkError(f"{source}: {int(outside.sum())} of {len(a)} action rows leave {env}'s action bounds "
                          f"{_bounds_text(low, high)} (min {a.min():.4g}, max {a.max():.4g}); rescale the "
                          "actions into the bounds or regenerate the dataset")

    # Episode ends: a last transition that ends nothing means a cut file (and windows that read past it).
    if "terminals" in arrays:
        terms = np.asarray(arrays["terminals"])
        require(len(terms) > 0 and terms.ndim == 1 and np.isin(terms, (0, 1)).all(),
                f"{source}: 'terminals' must be a non-empty 1-D array of 0/1; regenerate the dataset")
        require(terms[-1] == 1, f"{source}: the last transition does not end an episode (terminals[-1] == 0): "
                                "the file is cut short; regenerate it, or set terminals[-1] = 1 if the episode "
                                "really ends there")


def check_task_dataset(dataset: Dataset | Mapping[str, np.ndarray], env: gym.Env, *,
                       source: str | None = None) -> None:
    """:func:`check_dataset` against a built environment ``env`` (its spaces and, when it has one, its
    ``spec.id`` in messages); ``source`` defaults to ``dataset.source`` (or "dataset")."""
    if source is None:
        source = getattr(dataset, "source", "dataset")
    spec = getattr(env, "spec", None)
    check_dataset(dataset, env.observation_space, env.action_space, source=source,
                  env_name=getattr(spec, "id", None))


__all__ = ["ACTION_TOLERANCE", "check_dataset", "check_task_dataset"]
