"""Environments of open tasks: ``gym:<id>``, ``minari:<id>`` (the env spec the dataset recorded) and tasks
registered with :func:`qchunk.tasks.register`.

The stack, inside out: the raw env (with the task's time limit) -> float32 observations -> the task's
reward transform -> the success signal in ``info["success"]`` -> :class:`~qchunk.envs.rescale.UnitActions`
when the action bounds are not [-1, 1].
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from qchunk.envs.observations import Float32Observation
from qchunk.envs.rescale import UnitActions
from qchunk.errors import QchunkError, require
from qchunk.tasks import Task


class TaskReward(gym.RewardWrapper):
    """The task's ``reward_transform`` (written for arrays ``(N,) -> (N,)``) applied to each step's reward."""

    def __init__(self, env: gym.Env, transform):
        super().__init__(env)
        self.transform = transform

    def reward(self, reward):
        return float(np.asarray(self.transform(np.asarray([reward], np.float64))).reshape(-1)[0])


class SuccessSignal(gym.Wrapper):
    """``info["success"]`` from the task's success signal: another ``info`` key, or a callable ``info -> bool``.

    The default signal (the key ``"success"``) needs no wrapper: the env's own ``info["success"]`` is read
    where present; an env that never reports it has no success rate (evaluation reports the return).
    """

    def __init__(self, env: gym.Env, signal):
        super().__init__(env)
        self.signal = signal

    def _with_success(self, info: dict) -> dict:
        if callable(self.signal):
            return {**info, "success": bool(self.signal(info))}
        if self.signal in info:
            return {**info, "success": bool(info[self.signal])}
        return info

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, self._with_success(info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._with_success(info)


class NoSuccess(gym.Wrapper):
    """Drop ``info["success"]`` (a task registered with ``success=None`` reports no success rate)."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, {k: v for k, v in info.items() if k != "success"}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {k: v for k, v in info.items() if k != "success"}


def raw_env(task: Task, episode_length: int | None = None, render_mode: str | None = None) -> gym.Env:
    """The open task's raw environment (its own action units and reward, ``truncated`` at ``episode_length``,
    default the task's): what ``qchunk data collect`` records, so stored data is in the env's own units."""
    episode_length = int(episode_length or task.episode_length)
    kwargs = {"render_mode": render_mode} if render_mode is not None else {}
    try:
        if task.benchmark == "gym" or (task.benchmark == "registered" and task.env_factory is None):
            return gym.make(task.env_id, max_episode_steps=episode_length, **kwargs)
        if task.benchmark == "minari":
            spec = gym.envs.registration.EnvSpec.from_json(task.env_id)
            return gym.make(spec, max_episode_steps=episode_length, **kwargs)
    except (gym.error.Error, ImportError) as e:
        raise QchunkError(f"{task.name}: cannot build the environment ({' '.join(str(e).split())[:200]}); "
                          "pip install 'gymnasium[mujoco]' for the MuJoCo tasks") from None
    env = task.env_factory()
    return gym.wrappers.TimeLimit(env, max_episode_steps=episode_length)


def make_open_env(task: Task, episode_length: int | None = None, render_mode: str | None = None) -> gym.Env:
    """The environment of an open task (``task.benchmark`` in gym, minari, registered), its actions in
    [-1, 1], float32 observations, ``truncated`` at ``episode_length`` (default: the task's)."""
    env = raw_env(task, episode_length, render_mode)
    require(tuple(env.observation_space.shape) == (task.observation_dim,)
            and tuple(env.action_space.shape) == (task.action_dim,),
            f"{task.name}: the environment's spaces {env.observation_space.shape}/{env.action_space.shape} changed "
            f"since the task was registered ({task.observation_dim},)/({task.action_dim},)")
    env = Float32Observation(env)
    if task.reward_transform is not None:
        env = TaskReward(env, task.reward_transform)
    if task.success is None:
        env = NoSuccess(env)
    elif task.success != "success":
        env = SuccessSignal(env, task.success)
    scale = task.action_scale
    return UnitActions(env, scale) if scale is not None else env
