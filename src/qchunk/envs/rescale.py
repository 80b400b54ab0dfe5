"""The one action-rescaling wrapper: agents act in [-1, 1], environments with other bounds get their own.

The map is :class:`qchunk.tasks.ActionScale` (``low + (u + 1) / 2 * (high - low)``); the dataset loaders
apply its inverse to stored actions, so the data and the environment agree on what an action in [-1, 1]
means.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from qchunk.tasks import ActionScale


class UnitActions(gym.ActionWrapper):
    """Present ``env``'s bounded Box action space as ``[-1, 1]^A`` (float32) and map each action ``(A,)``
    onto the raw bounds with ``scale.from_unit`` (actions outside [-1, 1] are clipped first)."""

    def __init__(self, env: gym.Env, scale: ActionScale):
        super().__init__(env)
        self.scale = scale
        self.action_space = gym.spaces.Box(-1.0, 1.0, env.action_space.shape, np.float32)

    def action(self, action):
        return self.scale.from_unit(action).astype(self.env.action_space.dtype, copy=False)
