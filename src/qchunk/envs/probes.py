"""Exploration probes: the end-effector position and gripper contact of an arm, read from the simulator
and reported in ``info`` by the :class:`ExplorationProbes` wrapper, so training sees only the gymnasium
step tuple.

Positions are world coordinates in metres. OGBench (all manipulation domains): the ``ur5e/robotiq/pinch``
site, which OGBench reports as ``info['proprio/effector_pos']`` (the observation's ``obs[12:15]`` is a
scaled and shifted copy). robosuite (robomimic tasks): the first robot's end-effector site.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

#: Name of OGBench's end-effector site (all manipulation domains: cube, scene, puzzle).
OGBENCH_EFFECTOR_SITE = "ur5e/robotiq/pinch"
#: Body whose external contact force OGBench reports as ``proprio/gripper_contact``.
OGBENCH_CONTACT_BODY = "ur5e/robotiq/right_pad"


def _mujoco_env(env: Any) -> Any | None:
    """The innermost env of a wrapper chain that holds MuJoCo ``model`` and ``data`` (OGBench)."""
    inner = getattr(env, "unwrapped", env)
    return inner if hasattr(inner, "model") and hasattr(inner, "data") else None


def _robosuite_env(env: Any) -> Any | None:
    """A robosuite environment somewhere in the wrapper chain (``robots`` and ``sim`` attributes)."""
    seen = set()
    stack = [env]
    while stack:
        obj = stack.pop()
        if obj is None or id(obj) in seen or len(seen) > 16:
            continue
        seen.add(id(obj))
        if hasattr(obj, "robots") and hasattr(obj, "sim"):
            return obj
        stack.extend(getattr(obj, name, None) for name in ("env", "_env", "unwrapped"))
    return None


def _first(part: Any) -> Any:
    """robosuite 1.5 keys per-arm parts by arm (``{"right": ...}``); older versions hold one value."""
    return part.get("right", next(iter(part.values()))) if isinstance(part, dict) else part


def end_effector_position(env: Any) -> np.ndarray | None:
    """World position of the end effector of ``env``'s arm, through any gymnasium wrappers.

    Returns:
        ``(3,)`` float64 array (a copy), in metres, or None when the env has no arm.
    """
    inner = _mujoco_env(env)
    if inner is not None:
        try:
            return np.array(inner.data.site(OGBENCH_EFFECTOR_SITE).xpos, np.float64)
        except (KeyError, AttributeError, TypeError):
            pass
    rs = _robosuite_env(env)
    if rs is not None:
        try:
            return np.array(rs.sim.data.site_xpos[_first(rs.robots[0].eef_site_id)], np.float64)
        except (AttributeError, IndexError, KeyError, StopIteration, TypeError):
            return None
    return None


def gripper_contact(env: Any) -> bool | None:
    """Whether the gripper touches anything, or None when the env does not expose it.

    OGBench: the right finger pad feels an external (contact) force, i.e. OGBench's
    ``proprio/gripper_contact`` is positive. robosuite: any gripper geom is in contact.
    """
    inner = _mujoco_env(env)
    if inner is not None:
        try:
            return bool(np.linalg.norm(inner.data.body(OGBENCH_CONTACT_BODY).cfrc_ext) > 0.0)
        except (KeyError, AttributeError, TypeError):
            pass
    rs = _robosuite_env(env)
    if rs is not None:
        try:
            return bool(rs.check_contact(_first(rs.robots[0].gripper)))
        except (AttributeError, IndexError, KeyError, StopIteration, TypeError):
            return None
    return None


class ExplorationProbes(gym.Wrapper):
    """Adds the arm's state to the ``info`` of ``reset`` and ``step`` (describing the state just returned):

    - ``info["ee_pos"]``: ``(3,)`` float64 end-effector world position in metres
      (:func:`end_effector_position`);
    - ``info["gripper_contact"]``: bool (:func:`gripper_contact`).

    Each key is present only when the env exposes it (OGBench manipulation and robomimic envs do).
    Observations, rewards and episode ends are unchanged.
    """

    def _probe(self, info: dict) -> dict:
        info = dict(info)
        pos = end_effector_position(self.env)
        if pos is not None:
            info["ee_pos"] = pos
        contact = gripper_contact(self.env)
        if contact is not None:
            info["gripper_contact"] = contact
        return info

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, self._probe(info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._probe(info)
