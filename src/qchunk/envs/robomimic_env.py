"""robomimic tasks (lift, can, square) as gymnasium environments, built with robosuite directly.

:class:`RobomimicEnv` makes the robosuite environment a dataset's ``env_args`` describe (copied, never
modified), as robomimic does, but without the ``robomimic`` package:

- keys a headless CPU machine cannot honour are dropped (on-screen/offscreen renderer, GPU device, camera
  observations); ``ignore_done=True`` and ``use_object_obs=True`` as robomimic forces them;
- a controller config in the flat format of robosuite <= 1.4 (``{"type": "OSC_POSE", "damping": ...,
  "control_delta": true}``) is converted to robosuite 1.5's composite format;
- observations are concat(robot0_eef_pos, robot0_eef_quat, robot0_gripper_qpos, object) as float32
  (:data:`qchunk.tasks.ROBOMIMIC_OBS_KEYS`, the layout the dataset loader uses too);
- the paper's reward: -1 per step until success, 0 at success; the episode terminates at success and is
  truncated at the time limit (the authors' horizons: lift 300, can 300, square 400); ``info["success"]``;
- ``reset(seed=s)`` fixes the episode's initial state (object placement, object size, robot joint noise):
  robosuite draws them from NumPy's global generator, so the env swaps its own generator in around each
  reset and leaves the caller's global state untouched;
- ``render()`` (with ``render_mode="rgb_array"``) draws a camera offscreen through MuJoCo's renderer (EGL
  works without a GPU).

When no dataset file is given, the env uses the official file's ``env_args`` if it is in the default
location, else :func:`default_env_args` (the v1.5 datasets' robosuite settings: Panda, OSC_POSE delta
control at 20 Hz, sparse reward).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Iterator
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from qchunk.errors import QchunkError, did_you_mean, require
from qchunk.tasks import ROBOMIMIC_OBS_KEYS, ROBOMIMIC_TASKS, RobomimicDomain, Task, as_task, parse_robomimic_env_args

#: ``env_kwargs`` keys that need a display, a GPU or camera rendering; dropped before ``robosuite.make``.
DROPPED_KEYS = ("has_renderer", "has_offscreen_renderer", "render_camera", "render_gpu_device_id", "renderer",
                "renderer_config", "use_camera_obs", "camera_names", "camera_heights", "camera_widths",
                "camera_depths", "camera_segmentations")
#: Set as robomimic sets them: no renderer, no camera observations, no robosuite-side episode end.
FORCED_KWARGS = {"has_renderer": False, "has_offscreen_renderer": False, "use_camera_obs": False,
                 "ignore_done": True, "use_object_obs": True}
#: ``env_args["type"]`` of robosuite environments in robomimic's metadata.
ROBOSUITE_TYPE = 1
#: Arm controllers of robosuite 1.4's flat controller configs.
_PART_CONTROLLERS = ("OSC_POSE", "OSC_POSITION", "IK_POSE", "JOINT_VELOCITY", "JOINT_POSITION", "JOINT_TORQUE")
#: robosuite 1.4 names of the controller parameters robosuite 1.5 renamed.
_RENAMED = {"damping": "damping_ratio", "damping_limits": "damping_ratio_limits"}


class _QuietImport(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def import_robosuite():
    """Import robosuite without its import-time warnings (no private macros file, no robosuite_models,
    no mink), and keep its INFO messages (one per environment) off the console.

    Raises:
        QchunkError: robosuite is not installed (the message names the extra to install).
    """
    logger = logging.getLogger("robosuite_logs")
    quiet = _QuietImport()
    logger.addFilter(quiet)
    try:
        import robosuite
    except ImportError as e:
        raise QchunkError(f"robomimic tasks need robosuite ({e}); install the extra: pip install 'qchunk[robomimic]'"
                          ) from None
    finally:
        logger.removeFilter(quiet)
    logger.setLevel(logging.WARNING)
    return robosuite


def default_env_args(task: str) -> dict[str, Any]:
    """The ``env_args`` of a v1.5 robomimic dataset of ``task`` (``"lift"``, ``"can"``, ``"square"``) in
    robomimic 0.5's format; what :mod:`qchunk.datagen.robomimic` writes.

    Panda arm with its default robosuite 1.5 composite controller (OSC_POSE, delta end-effector commands in
    [-1, 1] scaled to 5 cm and 0.5 rad, gripper GRIP), 20 Hz control, sparse reward (1 at success).
    """
    robosuite = import_robosuite()
    from robosuite.controllers.composite.composite_controller_factory import load_composite_controller_config

    domain = _robomimic_task(f"{task}-mh-low_dim").domain
    return {
        "env_name": domain.env_name,
        "env_version": robosuite.__version__,
        "type": ROBOSUITE_TYPE,
        "env_kwargs": {
            "has_renderer": False, "has_offscreen_renderer": False, "ignore_done": True, "use_object_obs": True,
            "use_camera_obs": False, "camera_depths": False, "control_freq": 20, "reward_shaping": False,
            "reward_scale": 1.0, "robots": ["Panda"],
            "controller_configs": load_composite_controller_config(robot="Panda"),
        },
    }


def convert_controller_configs(config: dict[str, Any], robot: str) -> dict[str, Any]:
    """A copy of ``config`` in robosuite 1.5's composite format.

    A flat robosuite <= 1.4 arm config (``{"type": "OSC_POSE", ...}``) gets 1.5's parameter names
    (``damping`` -> ``damping_ratio``, ``damping_limits`` -> ``damping_ratio_limits``, ``control_delta`` ->
    ``input_type``) and is placed on every arm of ``robot`` with a ``GRIP`` gripper, on top of the robot's
    default composite config (robosuite's own conversion). A composite config is returned unchanged.
    """
    config = copy.deepcopy(config)
    if "body_parts" in config or config.get("type") not in _PART_CONTROLLERS:
        return config
    import_robosuite()
    from robosuite.controllers.composite.composite_controller_factory import refactor_composite_controller_config
    from robosuite.robots import REGISTERED_ROBOTS

    for old, new in _RENAMED.items():
        if old in config:
            config.setdefault(new, config.pop(old))
    if "control_delta" in config:
        config.setdefault("input_type", "delta" if config.pop("control_delta") else "absolute")
    arms = list(getattr(REGISTERED_ROBOTS[robot](), "arms", None) or ["right"]) if robot in REGISTERED_ROBOTS \
        else ["right"]
    return refactor_composite_controller_config(config, robot, arms)


def robosuite_kwargs(env_args: dict[str, Any]) -> dict[str, Any]:
    """The ``robosuite.make`` keyword arguments for ``env_args`` (a copy): :data:`DROPPED_KEYS` removed,
    :data:`FORCED_KWARGS` set, the controller config converted by :func:`convert_controller_configs`."""
    require(env_args.get("type", ROBOSUITE_TYPE) == ROBOSUITE_TYPE,
            f"env_args type {env_args.get('type')!r} is not a robosuite environment (type {ROBOSUITE_TYPE})")
    kwargs = {k: v for k, v in copy.deepcopy(env_args.get("env_kwargs", {})).items() if k not in DROPPED_KEYS}
    kwargs.update(FORCED_KWARGS)
    robots = kwargs.get("robots", ["Panda"])
    robot = robots[0] if isinstance(robots, list | tuple) else robots
    if isinstance(kwargs.get("controller_configs"), dict):
        kwargs["controller_configs"] = convert_controller_configs(kwargs["controller_configs"], robot)
    return kwargs


@contextlib.contextmanager
def _global_numpy_rng(state: tuple) -> Iterator[list]:
    """Run the body with NumPy's global generator in ``state``; yields a list that receives the state the
    body left behind; the caller's global state is restored afterwards."""
    # robosuite draws from the legacy global generator, so this is the one place we touch it
    saved = np.random.get_state()  # noqa: NPY002
    np.random.set_state(state)  # noqa: NPY002
    out: list = []
    try:
        yield out
    finally:
        out.append(np.random.get_state())  # noqa: NPY002
        np.random.set_state(saved)  # noqa: NPY002


class RobomimicEnv(gym.Env):
    """A robomimic task with the paper's reward and the dataset's observation layout.

    Args:
        task: a robomimic task, e.g. ``get_task("lift-mh-low_dim")`` (or its name).
        env_args: robomimic's environment metadata (``data.attrs["env_args"]`` of a dataset); default
            :func:`default_env_args`. Copied, never modified.
        episode_length: time limit in steps (default the task's: lift 300, can 300, square 400).
        render_mode: ``"rgb_array"`` enables :meth:`render`.
        render_size: ``(height, width)`` of rendered frames.
        camera: robosuite camera to render (``"agentview"``, ``"frontview"``, ``"robot0_eye_in_hand"`` ...).

    Spaces: observations ``(19,)`` (lift) or ``(23,)`` (can, square) float32; actions ``(7,)`` in [-1, 1]
    (delta end-effector position and orientation, gripper).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        task: Task | str,
        env_args: dict[str, Any] | None = None,
        episode_length: int | None = None,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (256, 256),
        camera: str = "agentview",
    ):
        self.task = _robomimic_task(task)
        self.domain: RobomimicDomain = self.task.domain  # type: ignore[assignment]
        require(render_mode in (None, "rgb_array"), f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.env_args = copy.deepcopy(env_args) if env_args is not None else default_env_args(self.domain.task)
        require(self.env_args.get("env_name") == self.domain.env_name,
                f"env_args describe robosuite's {self.env_args.get('env_name')!r}, but {self.task.name} is "
                f"{self.domain.env_name!r}")
        self.episode_length = int(episode_length if episode_length is not None else self.domain.episode_length)
        require(self.episode_length >= 1, f"episode_length must be >= 1, got {self.episode_length}")
        self.render_mode, self.render_size, self.camera = render_mode, tuple(render_size), camera
        robosuite = import_robosuite()
        kwargs = robosuite_kwargs(self.env_args)
        # construction draws object sizes from NumPy's global generator: make it deterministic and private
        with _global_numpy_rng(np.random.RandomState(0).get_state()):
            self._env = robosuite.make(self.domain.env_name, **kwargs)
        self._rng_state: tuple | None = None
        self._renderer = None
        self._renderer_model = None
        self._t = 0
        self.obs_dict: dict[str, np.ndarray] = {}
        """The latest raw robosuite observation dict (every observable, float64)."""
        action_dim = int(self._env.action_spec[0].shape[0])
        require(action_dim == self.domain.action_dim,
                f"{self.task.name}: the environment takes {action_dim}-dim actions, expected {self.domain.action_dim}")
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.domain.observation_dim,), np.float32)

    @property
    def robosuite_env(self):
        """The wrapped robosuite environment."""
        return self._env

    def observation(self, obs_dict: dict[str, np.ndarray]) -> np.ndarray:
        """concat(robot0_eef_pos, robot0_eef_quat, robot0_gripper_qpos, object-state) as float32 ``(obs_dim,)``."""
        parts = [obs_dict["object-state" if k == "object" else k] for k in ROBOMIMIC_OBS_KEYS]
        obs = np.concatenate([np.ravel(p) for p in parts]).astype(np.float32)
        if obs.shape != self.observation_space.shape:
            raise QchunkError(f"{self.domain.task_name}: the environment's observation has {obs.size} dims, expected "
                              f"{self.observation_space.shape[0]}; the dataset's env_args describe another setup")
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode; ``seed`` fixes its initial state (later unseeded resets continue that stream)."""
        super().reset(seed=seed)
        if seed is not None or self._rng_state is None:
            self._rng_state = np.random.RandomState(seed).get_state()
        with _global_numpy_rng(self._rng_state) as after:
            self.obs_dict = self._env.reset()
        self._rng_state = after[0]
        self._t = 0
        return self.observation(self.obs_dict), {"success": False}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """One control step (20 Hz). Returns ``(obs, reward, terminated, truncated, info)`` with reward
        -1 or 0, ``terminated`` at success, ``truncated`` at the time limit and ``info["success"]``."""
        action = np.clip(np.asarray(action, np.float64).reshape(self.action_space.shape), -1.0, 1.0)
        self.obs_dict, _, _, _ = self._env.step(action)
        self._t += 1
        success = bool(self._env._check_success())
        truncated = not success and self._t >= self.episode_length
        return self.observation(self.obs_dict), 0.0 if success else -1.0, success, truncated, {"success": success}

    def set_state(self, state: np.ndarray) -> np.ndarray:
        """Put the simulator in a dataset's flattened MuJoCo state (``states[t]`` of a demo) and return the
        observation there, ``(obs_dim,)`` float32."""
        sim = self._env.sim
        sim.set_state_from_flattened(np.asarray(state, np.float64))
        sim.forward()
        self.obs_dict = self._env._get_observations(force_update=True)
        return self.observation(self.obs_dict)

    def render(self) -> np.ndarray | None:
        """The current frame of :attr:`camera`, ``(height, width, 3)`` uint8 (``render_mode="rgb_array"``)."""
        if self.render_mode != "rgb_array":
            return None
        import mujoco

        model, data = self._env.sim.model._model, self._env.sim.data._data
        if self._renderer is None or self._renderer_model is not model:  # a hard reset rebuilds the model
            if self._renderer is not None:
                self._renderer.close()
            height, width = self.render_size
            try:
                self._renderer = mujoco.Renderer(model, height=height, width=width)
            except Exception as e:  # no OpenGL backend (MUJOCO_GL=disable, no libEGL)
                raise QchunkError(f"offscreen rendering is unavailable ({type(e).__name__}: {e}); install libEGL "
                                  "(Debian: libegl1) and set MUJOCO_GL=egl") from None
            self._renderer_model = model
        self._renderer.update_scene(data, camera=self.camera)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        if getattr(self, "_env", None) is not None:
            self._env.close()
            self._env = None


def read_env_args(path: str | os.PathLike) -> dict[str, Any]:
    """The environment metadata ``data.attrs["env_args"]`` of a robomimic hdf5 file (see
    :func:`qchunk.tasks.parse_robomimic_env_args`); QchunkError when the file is unreadable or has none."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            require("data" in f, f"{path}: no 'data' group; not a robomimic dataset")
            raw = f["data"].attrs.get("env_args")
    except OSError as e:
        raise QchunkError(f"{path}: not a readable hdf5 file ({e}); the file is truncated or corrupt, "
                          "download or generate it again") from None
    return parse_robomimic_env_args(raw, path)


def make_robomimic_env(
    task: Task | str,
    episode_length: int | None = None,
    dataset_dir: str | os.PathLike | None = None,
    render_mode: str | None = None,
) -> RobomimicEnv:
    """The environment of robomimic ``task`` built from its dataset's ``env_args``.

    The dataset is ``task.dataset_path(dataset_dir)``, ``{dataset_dir}/{task}/mh/low_dim_v15.hdf5`` (default
    directory ``~/.robomimic``); when that file does not exist, :func:`default_env_args` (the official v1.5
    settings) are used.
    """
    task = _robomimic_task(task)
    path = task.dataset_path(dataset_dir)
    env_args = read_env_args(path) if path.is_file() else None
    return RobomimicEnv(task, env_args=env_args, episode_length=episode_length, render_mode=render_mode)


def _robomimic_task(task: Task | str) -> Task:
    task = as_task(task)
    require(task.benchmark == "robomimic",
            f"{task.name!r} is not a robomimic task{did_you_mean(task.name, ROBOMIMIC_TASKS)}; choose one of "
            f"{', '.join(ROBOMIMIC_TASKS)}")
    return task
