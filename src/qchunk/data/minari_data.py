"""Minari datasets (Farama's standard format for offline RL) from the local Minari store.

Each episode of ``T`` steps stores ``observations (T + 1, obs)``, ``actions (T, A)``, ``rewards (T,)``,
``terminations (T,)`` and ``truncations (T,)``. Transition ``t`` of an episode is
``(observations[t], actions[t], rewards[t], observations[t + 1])``; its ``masks`` is
``1 - terminations[t]`` and the episode's last transition ends it (``terminals = 1``) whether it terminated,
was truncated or was cut by the collector.
"""

from __future__ import annotations

import numpy as np

from qchunk.data.columns import FLAG, READ_ERRORS, SCALAR, VECTOR, check_columns, read_error
from qchunk.errors import require
from qchunk.tasks import minari_dataset


def minari_transitions(dataset_id: str) -> dict[str, np.ndarray]:
    """The transitions of local Minari dataset ``dataset_id`` (unscaled actions), keyed as
    :func:`qchunk.data.d4rl_files.d4rl_transitions` returns them.

    Raises:
        QchunkError: minari missing, unknown id, no episodes, observations that are not flat arrays, or an
            array of the wrong shape, dtype or length, or not finite (:mod:`qchunk.data.columns`).
    """
    source = f"minari:{dataset_id}"
    dataset = minari_dataset(dataset_id, source)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("observations", "actions", "rewards", "next_observations",
                                                          "terminals", "masks")}
    try:
        episodes = list(dataset.iterate_episodes())
    except READ_ERRORS as e:
        raise read_error(source, e) from None
    for episode in episodes:
        where = f"{source}: episode {episode.id}"
        obs = episode.observations
        require(isinstance(obs, np.ndarray) and obs.ndim == 2,
                f"{source}: observations are {type(obs).__name__} of shape {getattr(obs, 'shape', '?')}; qchunk "
                "needs flat (T + 1, obs) arrays (collect with gymnasium.wrappers.FlattenObservation)")
        actions = np.asarray(episode.actions)
        steps = len(actions)
        if steps == 0:
            continue
        cols = check_columns({"observations": obs}, {"observations": VECTOR}, where, rows=steps + 1)
        cols |= check_columns({"actions": actions.reshape(steps, -1) if actions.ndim == 1 else actions,
                               "rewards": np.asarray(episode.rewards), "terminations": np.asarray(episode.terminations),
                               "truncations": np.asarray(episode.truncations)},
                              {"actions": VECTOR, "rewards": SCALAR, "terminations": FLAG, "truncations": FLAG},
                              where, rows=steps)
        ends = np.zeros(steps, np.float32)
        ends[-1] = 1.0
        parts["observations"].append(obs[:-1])
        parts["next_observations"].append(obs[1:])
        parts["actions"].append(cols["actions"])
        parts["rewards"].append(cols["rewards"].astype(np.float64))
        parts["terminals"].append(ends)
        parts["masks"].append(1.0 - cols["terminations"].astype(np.float32))
    require(parts["actions"], f"{source}: every episode of the Minari dataset is empty")
    return {k: np.concatenate(v) for k, v in parts.items()}
