"""Minari datasets (Farama's standard format for offline RL) from the local Minari store.

Each episode of ``T`` steps stores ``observations (T + 1, obs)``, ``actions (T, A)``, ``rewards (T,)``,
``terminations (T,)`` and ``truncations (T,)``. Transition ``t`` of an episode is
``(observations[t], actions[t], rewards[t], observations[t + 1])``; its ``masks`` is
``1 - terminations[t]`` and the episode's last transition ends it (``terminals = 1``) whether it terminated,
was truncated or was cut by the collector.
"""

from __future__ import annotations

import numpy as np

from qchunk.errors import require
from qchunk.tasks import minari_dataset


def minari_transitions(dataset_id: str) -> dict[str, np.ndarray]:
    """The transitions of local Minari dataset ``dataset_id`` (unscaled actions), keyed as
    :func:`qchunk.data.d4rl_files.d4rl_transitions` returns them.

    Raises:
        QchunkError: minari missing, unknown id, no episodes, or observations that are not flat arrays.
    """
    source = f"minari:{dataset_id}"
    dataset = minari_dataset(dataset_id, source)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("observations", "actions", "rewards", "next_observations",
                                                          "terminals", "masks")}
    for episode in dataset.iterate_episodes():
        obs = episode.observations
        require(isinstance(obs, np.ndarray) and obs.ndim == 2,
                f"{source}: observations are {type(obs).__name__} of shape {getattr(obs, 'shape', '?')}; qchunk "
                "needs flat (T + 1, obs) arrays (collect with gymnasium.wrappers.FlattenObservation)")
        steps = len(episode.actions)
        if steps == 0:
            continue
        ends = np.zeros(steps, np.float32)
        ends[-1] = 1.0
        parts["observations"].append(obs[:-1])
        parts["next_observations"].append(obs[1:])
        parts["actions"].append(np.asarray(episode.actions).reshape(steps, -1))
        parts["rewards"].append(np.asarray(episode.rewards, np.float64).reshape(steps))
        parts["terminals"].append(ends)
        parts["masks"].append(1.0 - np.asarray(episode.terminations, np.float32).reshape(steps))
    require(parts["actions"], f"{source}: every episode of the Minari dataset is empty")
    return {k: np.concatenate(v) for k, v in parts.items()}
