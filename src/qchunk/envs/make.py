"""Making environments by registry name: OGBench single-task envs with the paper's reward transform."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from qchunk.envs.registry import parse_task
from qchunk.errors import require


class SparseReward(gym.RewardWrapper):
    """The paper's sparse transform of OGBench's single-task reward: r' = -1 if r != 0 else 0."""

    def reward(self, reward):
        return -1.0 if reward != 0 else 0.0


class Float32Observation(gym.ObservationWrapper):
    """Cast observations to float32 (OGBench returns float64; agents and datasets use float32)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32),
                                                dtype=np.float32)

    def observation(self, observation):
        return np.asarray(observation, np.float32)


def make_env(name: str, sparse: bool = False, episode_length: int | None = None) -> gym.Env:
    """A single-task environment with the evaluation time limit of its domain.

    Args:
        name: a single-task name such as ``"puzzle-3x3-play-singletask-task2-v0"``.
        sparse: apply :class:`SparseReward`.
        episode_length: time limit in steps (default: the task's own, e.g. 500 for puzzle-3x3).

    The env's ``step`` reports ``terminated`` at task success (the single-task envs end there) and
    ``truncated`` at the time limit; ``info["success"]`` says whether the task is solved.
    """
    import ogbench

    spec = parse_task(name)
    require(spec.singletask, f"{name!r} is a dataset name; environments need a single-task name such as "
                             f"{spec.domain.name}-play-singletask-task2-v0")
    kwargs = {} if episode_length is None else {"max_episode_steps": episode_length}
    env = ogbench.make_env_and_datasets(spec.name, env_only=True, **kwargs)
    env = Float32Observation(env)
    return SparseReward(env) if sparse else env
