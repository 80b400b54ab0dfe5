"""Making the environment of a :class:`~qchunk.tasks.Task`: OGBench single-task envs with the paper's reward
transform, robomimic tasks (see :mod:`qchunk.envs.robomimic_env`) and open tasks (``gym:<id>``,
``minari:<id>``, registered tasks; see :mod:`qchunk.envs.open_env`)."""

from __future__ import annotations

import os

import gymnasium as gym

from qchunk.envs.observations import Float32Observation
from qchunk.envs.probes import ExplorationProbes
from qchunk.errors import require
from qchunk.tasks import Task, as_task


class SparseReward(gym.RewardWrapper):
    """The paper's sparse transform of OGBench's single-task reward: r' = -1 if r != 0 else 0."""

    def reward(self, reward):
        return -1.0 if reward != 0 else 0.0


def make_env(
    task: Task | str,
    sparse: bool = False,
    episode_length: int | None = None,
    *,
    dataset_dir: str | os.PathLike | None = None,
    render_mode: str | None = None,
    render_size: tuple[int, int] | None = None,
    probes: bool = False,
) -> gym.Env:
    """A single-task environment with the evaluation time limit of its domain.

    Args:
        task: a single task, e.g. ``get_task("puzzle-3x3-play-singletask-task2-v0")`` or
            ``get_task("lift-mh-low_dim")`` (a name is accepted too and looked up with :func:`~qchunk.tasks.get_task`).
        sparse: apply :class:`SparseReward` (on robomimic's -1/0 rewards it changes nothing).
        episode_length: time limit in steps (default: the task's own, e.g. 500 for puzzle-3x3, 300 for lift).
        dataset_dir: robomimic only: the directory whose ``{task}/mh/low_dim_v15.hdf5`` describes the
            environment (default ``~/.robomimic``; without a file there, the official v1.5 settings).
        render_mode: ``"rgb_array"``: ``env.render()`` returns ``(height, width, 3)`` uint8 frames (offscreen).
        render_size: ``(height, width)`` of rendered frames (default: the env's own, 200x200 for OGBench).
        probes: wrap in :class:`~qchunk.envs.probes.ExplorationProbes` (``info["ee_pos"]``,
            ``info["gripper_contact"]`` after every reset and step).

    The env's ``step`` reports ``terminated`` at task success (the single-task envs end there) and
    ``truncated`` at the time limit; ``info["success"]`` says whether the task is solved (open tasks: when
    their success signal says so; see :attr:`qchunk.tasks.Task.success`). Observations are float32; actions
    are in [-1, 1] (open tasks with other bounds are rescaled by :class:`~qchunk.envs.rescale.UnitActions`).
    """
    task = as_task(task).require_singletask()
    if task.benchmark == "robomimic":
        env = _robomimic(task, episode_length, dataset_dir, render_mode, render_size)
    elif task.benchmark == "ogbench":
        env = _ogbench(task, episode_length, render_mode, render_size)
    else:
        from qchunk.envs.open_env import make_open_env

        env = make_open_env(task, episode_length, render_mode)
    if sparse:
        env = SparseReward(env)
    return ExplorationProbes(env) if probes else env


def _robomimic(task: Task, episode_length, dataset_dir, render_mode, render_size) -> gym.Env:
    from qchunk.envs.robomimic_env import make_robomimic_env

    env = make_robomimic_env(task, episode_length=episode_length, dataset_dir=dataset_dir, render_mode=render_mode)
    if render_size is not None:
        env.render_size = tuple(render_size)
    return env


def _ogbench(task: Task, episode_length, render_mode, render_size) -> gym.Env:
    import ogbench

    kwargs = {} if episode_length is None else {"max_episode_steps": episode_length}
    require(render_mode in (None, "rgb_array"), f"render_mode must be None or 'rgb_array', got {render_mode!r}")
    if render_mode is not None and render_size is not None:
        kwargs.update(height=int(render_size[0]), width=int(render_size[1]))
    env = ogbench.make_env_and_datasets(task.name, env_only=True, **kwargs)
    if render_mode is not None:  # OGBench renders on demand; declare it so gymnasium's render checks accept it
        inner = env.unwrapped
        inner.metadata = {**inner.metadata, "render_modes": [render_mode],
                          "render_fps": round(1.0 / inner.control_timestep())}
        inner.render_mode = render_mode
    return Float32Observation(env)
