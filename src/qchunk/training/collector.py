"""``Collector``: one online environment, its chunk executor and the replay buffer it fills."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qchunk.data.dataset import ReplayBuffer
from qchunk.envs import ChunkExecutor


def episode_seed(seed: int, episode: int) -> int:
    """Reset seed of online episode ``episode`` of a run with ``seed`` (so a resume replays it exactly)."""
    return int(np.random.SeedSequence([seed, 0x0E1, episode]).generate_state(1)[0])


@dataclass(frozen=True)
class StepStats:
    """What one environment step reports to the loop."""

    reward: float
    terminated: bool
    """The task ended (success): the transition's mask is 0."""
    truncated: bool
    """The time limit cut the episode: it ends, but the mask stays 1."""
    ee_pos: np.ndarray | None
    """End-effector position of the state the step acted on (from the env's ``info``), if it has one."""
    gripper_contact: bool | None
    episode_start: bool
    """The step acted on the first state of an episode."""

    @property
    def episode_over(self) -> bool:
        return self.terminated or self.truncated


class Collector:
    """Steps ``env`` with chunks executed open-loop and adds every transition to ``buffer``.

    The policy (``act(observation) -> (H, A)``) is queried only when the queue of planned actions is empty;
    the queue is cleared at every episode end. Episode ``i`` is reset with ``episode_seed(seed, i)``.
    """

    def __init__(self, env, buffer: ReplayBuffer, seed: int, episode: int):
        self.env, self.buffer, self.seed = env, buffer, seed
        self.executor = ChunkExecutor()
        self.reset(episode)

    def reset(self, episode: int) -> None:
        """Start online episode ``episode``."""
        self.executor.reset()
        self.obs, self.info = self.env.reset(seed=episode_seed(self.seed, episode))
        self.episode_start = True

    def step(self, act: Callable[[np.ndarray], np.ndarray]) -> StepStats:
        """One environment step; the caller resets (:meth:`reset`) after a step whose episode is over."""
        if self.executor.pending == 0:
            self.executor.push(np.asarray(act(self.obs)))
        action = self.executor.pop()
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        done = bool(terminated or truncated)
        # a time-limit truncation ends the episode but is not a termination: the mask stays 1
        self.buffer.add(self.obs, action, reward, done, 0.0 if terminated else 1.0, next_obs)
        stats = StepStats(float(reward), bool(terminated), bool(truncated), self.info.get("ee_pos"),
                          self.info.get("gripper_contact"), self.episode_start)
        self.obs, self.info, self.episode_start = next_obs, info, False
        if done:
            self.executor.reset()
        return stats

    def close(self) -> None:
        self.env.close()
