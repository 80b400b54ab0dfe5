"""Environments: construction from a :class:`qchunk.tasks.Task` (OGBench and robomimic), the exploration
probes wrapper, open-loop chunk execution."""

import ctypes.util
import os
import warnings

# MuJoCo picks its OpenGL backend at import. EGL renders offscreen without a display (CPU or GPU); without
# libEGL rendering is disabled, which training and evaluation never need. An explicit MUJOCO_GL wins.
if "MUJOCO_GL" not in os.environ:
    os.environ["MUJOCO_GL"] = "egl" if ctypes.util.find_library("EGL") else "disable"
# OGBench builds float64 Box spaces (its action_space property, on every reset); gymnasium warns each time.
warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32.*", category=UserWarning)

from qchunk.envs.chunk_executor import ChunkExecutor  # noqa: E402 - after MUJOCO_GL is set
from qchunk.envs.make import make_env  # noqa: E402
from qchunk.envs.probes import ExplorationProbes, end_effector_position, gripper_contact  # noqa: E402

__all__ = ["ChunkExecutor", "ExplorationProbes", "end_effector_position", "gripper_contact", "make_env"]
