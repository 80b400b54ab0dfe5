"""The offline data of any task from a dataset source: ``minari:<id>``, or a ``.npz`` / ``.hdf5`` file in the
D4RL layout (:mod:`qchunk.data.d4rl_files`).

The raw data is checked against the task's raw spaces first (so an action outside the environment's own
bounds is named in its units), then its actions are mapped onto [-1, 1] with the task's
:class:`~qchunk.tasks.ActionScale` (the map the environment wrapper inverts) and its rewards go through the
task's reward transform (and the sparse transform with ``sparse``).
"""

from __future__ import annotations

import numpy as np

from qchunk.data.dataset import Dataset
from qchunk.errors import QchunkError
from qchunk.tasks import MINARI_PREFIX, Task


def source_kind(source: str) -> str:
    """``"minari"`` or ``"file"`` for a ``--dataset`` value; QchunkError for anything else."""
    if source.startswith(MINARI_PREFIX):
        return "minari"
    if source.lower().endswith((".npz", ".hdf5", ".h5")):
        return "file"
    raise QchunkError(f"--dataset {source!r}: give minari:<dataset id> or a .npz / .hdf5 file in the D4RL layout "
                      "(observations, actions, rewards, terminals and/or timeouts)")


def raw_transitions(source: str) -> dict[str, np.ndarray]:
    """The transitions of ``source`` as stored (actions in the environment's own units)."""
    if source_kind(source) == "minari":
        from qchunk.data.minari_data import minari_transitions

        return minari_transitions(source[len(MINARI_PREFIX):])
    from qchunk.data.d4rl_files import d4rl_transitions, read_d4rl_file

    return d4rl_transitions(read_d4rl_file(source), source)


def raw_spaces(task: Task):
    """(observation_space, action_space) of ``task``'s raw environment (before the [-1, 1] rescaling), as
    the task recorded them."""
    import gymnasium as gym

    obs = gym.spaces.Box(-np.inf, np.inf, (task.observation_dim,), np.float32)
    scale = task.action_scale
    if scale is None:
        return obs, gym.spaces.Box(-1.0, 1.0, (task.action_dim,), np.float32)
    return obs, gym.spaces.Box(np.asarray(scale.low, np.float32), np.asarray(scale.high, np.float32),
                               dtype=np.float32)


def load_source(task: Task, source: str, sparse: bool = False) -> Dataset:
    """The offline :class:`Dataset` of ``task`` from ``source``, checked against the task's raw spaces,
    actions rescaled to [-1, 1], rewards transformed (see the module docstring).

    Raises:
        QchunkError: the source is unknown, unreadable or does not fit the task (one line each).
    """
    from qchunk.data.check import check_dataset

    arrays = raw_transitions(source)
    check_dataset(arrays, *raw_spaces(task), source=source, env_name=task.name)
    rewards = np.asarray(arrays["rewards"], np.float64)
    if task.reward_transform is not None:
        rewards = np.asarray(task.reward_transform(rewards), np.float64).reshape(rewards.shape)
    if sparse:
        rewards = np.where(rewards != 0.0, -1.0, 0.0)
    actions = arrays["actions"] if task.action_scale is None else task.action_scale.to_unit(arrays["actions"])
    return Dataset(observations=arrays["observations"], actions=actions, rewards=rewards.astype(np.float32),
                   terminals=arrays["terminals"], next_observations=arrays["next_observations"],
                   masks=arrays["masks"], source=source)
