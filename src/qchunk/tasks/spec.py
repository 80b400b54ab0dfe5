"""The task value: :class:`Task` (what the loaders and environment factories need to know about a task) and
:class:`ActionScale` (the one map between an environment's action box and the agents' [-1, 1])."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from qchunk.errors import QchunkError, require
from qchunk.tasks.domains import OGBENCH_DATASET_DIR, ROBOMIMIC_DATASET_DIR, OGBenchDomain, OpenDomain, RobomimicDomain


@dataclass(frozen=True)
class ActionScale:
    """The affine map between an environment's action box ``[low, high]`` and the agents' ``[-1, 1]``.

    The one rescaling of qchunk: the environment wrapper (:class:`qchunk.envs.rescale.UnitActions`) maps the
    agent's actions through :meth:`from_unit`, and the dataset loaders map stored actions through
    :meth:`to_unit`, so data and environment agree. ``low`` and ``high`` are finite with ``high > low``.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]

    @classmethod
    def of_bounds(cls, low, high, where: str) -> ActionScale | None:
        """The scale of bounds ``low``/``high`` (arrays of shape ``(A,)``), or None when they are [-1, 1].

        Raises:
            QchunkError: a bound is infinite or NaN (unbounded actions cannot be mapped onto [-1, 1]), or
                ``high <= low``.
        """
        lo, hi = np.asarray(low, np.float64).reshape(-1), np.asarray(high, np.float64).reshape(-1)
        require(bool(np.isfinite(lo).all() and np.isfinite(hi).all()),
                f"{where}: the action space is unbounded (low {lo.min():.4g}, high {hi.max():.4g}); qchunk's "
                "policies emit actions in [-1, 1] and need finite bounds: register the task with an env factory "
                "that clips or rescales the actions into a bounded Box")
        require(bool((hi > lo).all()), f"{where}: the action space has high <= low in some dimension")
        if np.all(lo == -1.0) and np.all(hi == 1.0):
            return None
        return cls(tuple(float(x) for x in lo), tuple(float(x) for x in hi))

    def to_unit(self, actions: np.ndarray) -> np.ndarray:
        """Raw actions ``(..., A)`` in ``[low, high]`` -> ``(..., A)`` in ``[-1, 1]`` (float32)."""
        lo, hi = np.asarray(self.low), np.asarray(self.high)
        return (2.0 * (np.asarray(actions, np.float64) - lo) / (hi - lo) - 1.0).astype(np.float32)

    def from_unit(self, actions: np.ndarray) -> np.ndarray:
        """Agent actions ``(..., A)`` in ``[-1, 1]`` -> ``(..., A)`` in ``[low, high]`` (float32, clipped)."""
        lo, hi = np.asarray(self.low), np.asarray(self.high)
        unit = np.clip(np.asarray(actions, np.float64), -1.0, 1.0)
        return (lo + (unit + 1.0) * 0.5 * (hi - lo)).astype(np.float32)


@dataclass(frozen=True)
class Task:
    """A parsed task name: everything the data loaders and environment factories need to know about it.

    Made by :func:`get_task` only; hashable and picklable (it travels to evaluation worker processes).
    """

    name: str
    """The name as given, e.g. ``"puzzle-3x3-play-singletask-task2-v0"`` or ``"lift-mh-low_dim"``."""
    benchmark: Literal["ogbench", "robomimic", "gym", "minari", "registered"]
    """Which loader and environment the task belongs to (``gym``: ``gym:<id>``; ``minari``: ``minari:<id>``;
    ``registered``: :func:`register`)."""
    domain: OGBenchDomain | RobomimicDomain | OpenDomain
    """The table entry; ``domain.name`` is the key of the per-domain agent presets."""
    task: int | None
    """OGBench task number 1..5; ``None`` for the env's default task, a dataset name or a robomimic task."""
    singletask: bool
    """An environment can be made for it (False for an OGBench dataset name such as ``puzzle-3x3-play-v0``)."""
    episode_length: int
    """Evaluation time limit in steps (e.g. 500 for puzzle-3x3, 300 for lift)."""
    sparse: bool
    """The paper's default for the sparse reward transform (sparse for scene and puzzle-3x3)."""
    observation_dim: int
    """Size of the flat float32 observation."""
    action_dim: int
    """Size of the action, each entry in [-1, 1]."""
    reward: str
    """What the reward is (the transform applied to the benchmark's own reward)."""
    # Open tasks (gymnasium ids, Minari datasets, tasks registered from Python); the defaults fit the built-ins.
    env_id: str | None = None
    """``gym``: the gymnasium id (``"Hopper-v5"``); ``minari``: the dataset's recorded env spec (JSON)."""
    env_factory: Callable[[], Any] | None = None
    """``registered``: ``() -> gymnasium.Env`` building the raw environment (module-level, so that it pickles
    into evaluation worker processes)."""
    source: str | None = None
    """The offline dataset when ``--dataset`` is not given (``"minari:<id>"`` or a file path), or None."""
    action_low: tuple[float, ...] | None = None
    """The raw environment's lower action bounds when they are not -1 (see :attr:`action_scale`)."""
    action_high: tuple[float, ...] | None = None
    """The raw environment's upper action bounds when they are not 1."""
    success: str | Callable[[dict], bool] | None = "success"
    """The success signal: an ``info`` key read at episode ends (default ``"success"``: the episode counts
    as solved when ``info["success"]`` is true; an env that never reports the key has no success rate),
    a callable ``info -> bool``, or None (no success rate: evaluation reports the return)."""
    reward_transform: Callable[[np.ndarray], np.ndarray] | None = None
    """``rewards (N,) -> rewards (N,)`` applied to the environment's and the dataset's rewards alike."""
    ref_scores: tuple[float, float] | None = None
    """(random, expert) reference returns; evaluation then reports ``normalized_score`` =
    (return - random) / (expert - random) (Minari's and D4RL's normalisation, 0 random, 1 expert)."""

    @property
    def action_scale(self) -> ActionScale | None:
        """The map between the raw environment's action box and the agents' [-1, 1] (None: the bounds are
        already [-1, 1])."""
        if self.action_low is None or self.action_high is None:
            return None
        return ActionScale(self.action_low, self.action_high)

    def normalized_score(self, episode_return: float) -> float | None:
        """``(episode_return - random) / (expert - random)`` with :attr:`ref_scores`, or None without them."""
        if self.ref_scores is None:
            return None
        lo, hi = self.ref_scores
        return (float(episode_return) - lo) / (hi - lo)

    @property
    def dataset(self) -> str:
        """The dataset file stem (OGBench, e.g. ``"puzzle-3x3-play-v0"``) or relative path (robomimic, e.g.
        ``"lift/mh/low_dim_v15.hdf5"``)."""
        return self.domain.dataset

    def dataset_dir(self, dataset_dir: str | os.PathLike | None = None) -> Path:
        """``dataset_dir`` with ``~`` expanded, or the benchmark's default (``~/.ogbench/data``, ``~/.robomimic``)."""
        default = ROBOMIMIC_DATASET_DIR if self.benchmark == "robomimic" else OGBENCH_DATASET_DIR
        return Path(os.path.expanduser(str(dataset_dir if dataset_dir is not None else default)))

    def dataset_path(self, dataset_dir: str | os.PathLike | None = None) -> Path:
        """The (training) dataset file in ``dataset_dir`` (default: the benchmark's directory):
        ``<dir>/<dataset>.npz`` for OGBench, ``<dir>/<task>/mh/low_dim_v15.hdf5`` for robomimic."""
        root = self.dataset_dir(dataset_dir)
        return root / self.dataset if self.benchmark == "robomimic" else root / f"{self.dataset}.npz"

    def validation_path(self, dataset_dir: str | os.PathLike | None = None) -> Path:
        """OGBench's validation file ``<dir>/<dataset>-val.npz`` (robomimic: the dataset file, whose
        ``mask/valid`` names the validation demos)."""
        if self.benchmark == "robomimic":
            return self.dataset_path(dataset_dir)
        return self.dataset_dir(dataset_dir) / f"{self.dataset}-val.npz"

    def require_singletask(self, needs: str = "environments need") -> Task:
        """``self`` if it names a single task; otherwise the QchunkError saying that ``needs`` (e.g.
        ``"training needs"``) a single-task name, with an example."""
        if not self.singletask:  # only OGBench dataset names (robomimic names are single tasks)
            raise QchunkError(f"{self.name!r} is a dataset name; {needs} a single-task name such as "
                              f"{self.domain.task_name(2)}")
        return self
