"""The observation wrapper every environment gets: float32 observations, as the agents and datasets use."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class Float32Observation(gym.ObservationWrapper):
    """Cast observations ``(obs_dim,)`` to float32 (OGBench returns float64; agents and datasets use float32)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32),
                                                dtype=np.float32)

    def observation(self, observation):
        return np.asarray(observation, np.float32)
