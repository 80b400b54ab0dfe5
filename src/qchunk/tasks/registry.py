"""The registry of tasks and the one parser of task names: :func:`get_task`, :func:`register`.

The registry holds every named task: the built-in OGBench and robomimic tasks (entered at import) and the
tasks registered from Python. Two open families take any id: ``gym:<gymnasium id>`` and ``minari:<dataset
id>``. Modules named in the environment variable ``QCHUNK_TASKS`` (comma-separated, e.g.
``QCHUNK_TASKS=my_tasks``) are imported before the first look-up, so that tasks they register exist in
every process: ``qchunk`` commands, evaluation workers and Ray sweep workers (which inherit the variable).
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from qchunk.errors import QchunkError, require
from qchunk.tasks.builtin import builtin_tasks, unknown_task
from qchunk.tasks.domains import DEFAULT_OPEN_DOMAIN
from qchunk.tasks.open import FAMILIES, make_raw_gym, open_task
from qchunk.tasks.spec import Task

#: Environment variable naming modules that register tasks (imported before the first look-up).
TASK_MODULES_ENV = "QCHUNK_TASKS"

_BUILTIN: dict[str, Task] = {t.name: t for t in builtin_tasks()}
_REGISTERED: dict[str, Task] = {}
_plugins_loaded = False


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for module in filter(None, (m.strip() for m in os.environ.get(TASK_MODULES_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except (Exception, SystemExit) as e:  # any failure of the user's module at import, not only ImportError
            _plugins_loaded = False
            fix = "put it on PYTHONPATH or fix the variable" if isinstance(e, ImportError) else "fix the module"
            text = " ".join(str(e).split())[:200]
            raise QchunkError(f"{TASK_MODULES_ENV}={os.environ[TASK_MODULES_ENV]!r}: cannot import {module!r} "
                              f"({type(e).__name__}: {text}); {fix}") from None


@functools.cache
def get_task(name: str) -> Task:
    """The :class:`Task` of a name (cached: the same object for the same name): a registry entry (a built-in
    OGBench single-task name such as ``puzzle-3x3-play-singletask-task2-v0``, an OGBench dataset name such
    as ``puzzle-3x3-play-v0``, a robomimic task name such as ``lift-mh-low_dim``, or a task registered with
    :func:`register`), ``gym:<gymnasium id>`` (e.g. ``gym:Hopper-v5``) or ``minari:<Minari dataset id>``
    (the environment the local dataset recorded).

    Raises:
        QchunkError: an unknown name (the message suggests the closest and lists the supported names), an
            OGBench task number not in 1..5, an unknown gymnasium id or Minari dataset, a missing extra, or
            spaces qchunk cannot use.
    """
    if not isinstance(name, str):
        raise TypeError(f"a task name must be a str, got {type(name).__name__}")
    _load_plugins()
    task = _REGISTERED.get(name) or _BUILTIN.get(name)
    if task is not None:
        return task
    prefix, sep, _ = name.partition(":")
    if sep and f"{prefix}:" in FAMILIES:
        return FAMILIES[f"{prefix}:"](name)
    raise unknown_task(name, task_names())


def as_task(task: str | Task) -> Task:
    """``task`` itself if it is a :class:`Task`, else :func:`get_task` of the name (for callers that still
    pass names)."""
    return task if isinstance(task, Task) else get_task(task)


def register(name: str, env: Callable[[], Any] | str, *, dataset: str | None = None,
             episode_length: int | None = None, reward: Callable[[np.ndarray], np.ndarray] | None = None,
             reward_doc: str | None = None, success: str | Callable[[dict], bool] | None = "success",
             domain: str = DEFAULT_OPEN_DOMAIN, sparse: bool = False, ref_scores: tuple[float, float] | None = None,
             replace: bool = False) -> Task:
    """Register a task under ``name`` so that every command and :func:`get_task` know it; returns its Task.

    Args:
        name: the task's name (no ``:``; not a built-in name).
        env: ``() -> gymnasium.Env`` building the raw environment (a module-level function, so that it
            pickles into evaluation worker processes), or a gymnasium id. It is built once here to read its
            spaces: a flat ``Box`` observation and a bounded ``Box`` action space (bounds other than [-1, 1]
            are rescaled for the agents, see :class:`ActionScale`).
        dataset: the default offline dataset (``"minari:<id>"``, ``.npz`` or ``.hdf5`` file); ``--dataset``
            overrides it.
        episode_length: evaluation time limit (default: the env's ``spec.max_episode_steps``, else 1000).
        reward: ``rewards (N,) -> rewards (N,)`` applied to the env's and the dataset's rewards alike.
        reward_doc: what the reward is, for messages and summaries.
        success: the success signal (see :attr:`Task.success`).
        domain: the domain whose per-domain agent presets (alpha, N) the task inherits.
        sparse: default of ``--sparse``.
        ref_scores: (random, expert) returns for the normalised score.
        replace: replace an earlier registration of ``name`` (otherwise that is an error).

    Raises:
        QchunkError: a bad name, a name taken, or spaces qchunk cannot use.
    """
    require(isinstance(name, str) and name and ":" not in name and name == name.strip(),
            f"task name {name!r} must be a non-empty string without ':' (gym: and minari: are reserved)")
    require(name not in _BUILTIN, f"{name!r} is a built-in task; register yours under another name")
    require(replace or name not in _REGISTERED, f"task {name!r} is already registered; pass replace=True")
    raw = make_raw_gym(env, name) if isinstance(env, str) else env()
    try:
        length = episode_length or getattr(getattr(raw, "spec", None), "max_episode_steps", None) or 1000
        task = open_task(name, "registered", raw.observation_space, raw.action_space, length, domain=domain,
                         sparse=sparse, reward=reward_doc or ("a registered transform of the environment's reward"
                                                              if reward else "the environment's reward"),
                         env_id=env if isinstance(env, str) else None,
                         env_factory=None if isinstance(env, str) else env, source=dataset, success=success,
                         reward_transform=reward, ref_scores=ref_scores)
    finally:
        raw.close()
    _REGISTERED[name] = task
    get_task.cache_clear()
    return task


def unregister(name: str) -> None:
    """Forget a task registered with :func:`register` (no error when it is not registered)."""
    _REGISTERED.pop(name, None)
    get_task.cache_clear()


def task_names() -> list[str]:
    """Every named entry of the registry: the built-in OGBench tasks and dataset names, the robomimic tasks and
    the registered tasks (the open families ``gym:<id>`` and ``minari:<id>`` take any id)."""
    _load_plugins()
    return [*_BUILTIN, *_REGISTERED]
