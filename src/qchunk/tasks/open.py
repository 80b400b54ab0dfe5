"""Open tasks: ``gym:<gymnasium id>``, ``minari:<dataset id>`` and the spaces check every open task passes.
gymnasium and minari are imported lazily, only here (the built-in tasks need neither)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from qchunk.errors import QchunkError, require
from qchunk.tasks.domains import DEFAULT_OPEN_DOMAIN, OpenDomain
from qchunk.tasks.spec import ActionScale, Task

GYM_PREFIX = "gym:"
MINARI_PREFIX = "minari:"
_GYM_EXTRA = "pip install 'gymnasium[mujoco]' (or qchunk[minari]; the dev extra has both)"
_MINARI_ID = re.compile(r"^([\w.-]+/)*[\w.-]+-v\d+$")
_MINARI_EXTRA = "pip install minari (or qchunk[minari]; the dev extra has it)"


def _space_bounds(space: Any, kind: str, where: str) -> tuple[tuple[int, ...], Any, Any]:
    """(shape, low, high) of a gymnasium ``Box`` ``space`` (duck-typed: no gymnasium import); QchunkError
    for any other space or a non-flat one."""
    require(type(space).__name__ == "Box" and hasattr(space, "low"),
            f"{where}: the {kind} space is a {type(space).__name__}; qchunk needs a flat Box (register the task "
            "with an env factory that wraps the env in gymnasium.wrappers.FlattenObservation)")
    shape = tuple(int(x) for x in space.shape)
    require(len(shape) == 1, f"{where}: the {kind} space has shape {shape}; qchunk needs flat vectors (wrap the "
                             "env in gymnasium.wrappers.FlattenObservation and register it with an env factory)")
    return shape, space.low, space.high


def open_task(name: str, benchmark: str, observation_space: Any, action_space: Any, episode_length: int,
               *, domain: str = DEFAULT_OPEN_DOMAIN, sparse: bool = False, reward: str = "the environment's reward",
               **fields: Any) -> Task:
    """A :class:`Task` for an open task from its raw environment's spaces (checked here)."""
    (obs_dim,), _, _ = _space_bounds(observation_space, "observation", name)
    (act_dim,), low, high = _space_bounds(action_space, "action", name)
    scale = ActionScale.of_bounds(low, high, name)
    if scale is not None:
        fields.update(action_low=scale.low, action_high=scale.high)
    require(int(episode_length) >= 1, f"{name}: episode_length must be >= 1, got {episode_length}")
    d = OpenDomain(domain, sparse, fields.get("source"), obs_dim, act_dim)
    return Task(name, benchmark, d, None, True, int(episode_length), sparse, obs_dim, act_dim, reward,  # type: ignore[arg-type]
                **fields)


def _gym_task(name: str) -> Task:
    """``gym:<id>``: any registered gymnasium environment (built once here to read its spaces)."""
    gym_id = name[len(GYM_PREFIX):]
    import gymnasium as gym

    try:
        spec = gym.spec(gym_id)
    except gym.error.Error as e:
        raise QchunkError(f"unknown gymnasium id {gym_id!r} in --env {name!r}: {' '.join(str(e).split())} "
                          "(--env gym:ID takes any id gymnasium.make accepts, e.g. gym:Hopper-v5)") from None
    env = make_raw_gym(gym_id, name)
    try:
        return open_task(name, "gym", env.observation_space, env.action_space, spec.max_episode_steps or 1000,
                          env_id=gym_id)
    finally:
        env.close()


def make_raw_gym(gym_id: str, name: str):
    import gymnasium as gym

    try:
        return gym.make(gym_id)
    except (gym.error.DependencyNotInstalled, ImportError, ModuleNotFoundError) as e:
        raise QchunkError(f"{name}: the environment needs a package that is not installed "
                          f"({' '.join(str(e).split())[:160]}); {_GYM_EXTRA}") from None


def minari_dataset(dataset_id: str, where: str | None = None):
    """The Minari dataset ``dataset_id`` from the local Minari store (``$MINARI_DATASETS_PATH``, default
    ``~/.minari/datasets``); nothing is downloaded.

    Raises:
        QchunkError: minari is not installed, the id is not in the local store, or the dataset has no episodes.
    """
    where = where or f"{MINARI_PREFIX}{dataset_id}"
    require(_MINARI_ID.match(dataset_id), f"{where}: a Minari id ends in its version: namespace/name-v0 (or "
                                          "name-v0)")
    try:
        import minari
    except ImportError:
        raise QchunkError(f"{where}: Minari datasets need the minari package; {_MINARI_EXTRA}") from None
    try:
        dataset = minari.load_dataset(dataset_id)
    except (FileNotFoundError, ValueError) as e:
        store = os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")
        raise QchunkError(f"unknown Minari dataset {dataset_id!r}: not in the local store {store} "
                          f"({' '.join(str(e).split())[:120]}); make one with qchunk data collect --out "
                          f"minari:{dataset_id}, or fetch it with `minari download {dataset_id}`") from None
    require(dataset.total_episodes > 0, f"{where}: the Minari dataset has no episodes; collect some first")
    return dataset


def _minari_task(name: str) -> Task:
    """``minari:<id>``: the environment a local Minari dataset recorded, with the dataset as its data."""
    dataset = minari_dataset(name[len(MINARI_PREFIX):], name)
    spec = dataset.env_spec
    require(spec is not None, f"{name}: the Minari dataset recorded no environment spec; give the environment "
                              "with --env gym:ID (or register the task from Python)")
    meta = dataset.storage.metadata
    ref = (meta.get("ref_min_score"), meta.get("ref_max_score"))
    ref_scores = (float(ref[0]), float(ref[1])) if None not in ref and ref[1] != ref[0] else None
    return open_task(name, "minari", dataset.observation_space, dataset.action_space, spec.max_episode_steps or 1000,
                      env_id=spec.to_json(), source=name, ref_scores=ref_scores)


FAMILIES: dict[str, Callable[[str], Task]] = {GYM_PREFIX: _gym_task, MINARI_PREFIX: _minari_task}
"""Open families of names by prefix: ``gym:<gymnasium id>`` and ``minari:<dataset id>``."""
