"""The built-in tasks: every OGBench and robomimic name the papers use, as entries for the registry, and the
message for a name that is none of them."""

from __future__ import annotations

import json
import os
import re
from typing import Any

from qchunk.errors import QchunkError, did_you_mean, require
from qchunk.tasks.domains import (
    DOMAINS,
    OGBENCH_REWARD,
    ROBOMIMIC_REWARD,
    ROBOMIMIC_TASKS,
    SPARSE_REWARD,
    OGBenchDomain,
)
from qchunk.tasks.spec import Task


def _ogbench_task(name: str, domain: OGBenchDomain, task: int | None, singletask: bool) -> Task:
    reward = f"{OGBENCH_REWARD}; by default {SPARSE_REWARD}" if domain.sparse else OGBENCH_REWARD
    return Task(name, "ogbench", domain, task, singletask, domain.episode_length, domain.sparse,
                domain.observation_dim, domain.action_dim, reward)


def builtin_tasks() -> list[Task]:
    """Every built-in task, as the registry holds them: for each OGBench domain its dataset name
    (``puzzle-3x3-play-v0``: data, no environment), its default task (``puzzle-3x3-play-singletask-v0``)
    and tasks 1..5; then the robomimic tasks (``lift-mh-low_dim`` ...)."""
    tasks = []
    for d in DOMAINS.values():
        tasks += [_ogbench_task(d.dataset, d, None, False), _ogbench_task(d.task_name(), d, None, True)]
        tasks += [_ogbench_task(d.task_name(t), d, t, True) for t in range(1, 6)]
    for d in ROBOMIMIC_TASKS.values():
        tasks.append(Task(d.task_name, "robomimic", d, None, True, d.episode_length, d.sparse, d.observation_dim,
                          d.action_dim, ROBOMIMIC_REWARD))
    return tasks


_TASK_NUMBER = re.compile(r"-singletask-task(?P<task>\d+)-v0$")


def unknown_task(name: str, known: list[str]) -> QchunkError:
    """The error for a name that is no task: an OGBench task number out of 1..5, or an unknown name (with a
    suggestion among ``known`` and the list of the supported families)."""
    m = _TASK_NUMBER.search(name)
    if m and name[:m.start()] + "-singletask-v0" in known:
        return QchunkError(f"task number {int(m['task'])} in {name!r} is out of range; OGBench tasks are 1..5")
    tasks = ", ".join(d.task_name().replace("-v0", "-task[1-5]-v0") for d in DOMAINS.values())
    return QchunkError(f"unknown OGBench task or dataset {name!r}{did_you_mean(name, known)}; supported: {tasks} "
                       f"(or the dataset names {', '.join(d.dataset for d in DOMAINS.values())}), and the "
                       f"robomimic tasks {', '.join(ROBOMIMIC_TASKS)}; or gym:<gymnasium id>, minari:<dataset id>, "
                       "or a task registered with qchunk.tasks.register")


def parse_robomimic_env_args(raw: Any, where: str | os.PathLike) -> dict[str, Any]:
    """robomimic's environment metadata (a dataset's ``data.attrs["env_args"]``, JSON text or bytes) as a
    dict with ``env_name`` (robosuite env, e.g. ``"Lift"``), ``type`` (1 = robosuite), ``env_version`` and
    ``env_kwargs`` (the ``robosuite.make`` keyword arguments). QchunkError naming ``where`` if it is not."""
    require(raw is not None, f"{where}: data.attrs['env_args'] is missing; not a robomimic dataset")
    try:
        env_args = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (ValueError, UnicodeDecodeError):
        raise QchunkError(f"{where}: data.attrs['env_args'] is not valid JSON; the file is corrupt") from None
    require(isinstance(env_args, dict) and isinstance(env_args.get("env_name"), str)
            and isinstance(env_args.get("env_kwargs"), dict),
            f"{where}: data.attrs['env_args'] needs 'env_name' and 'env_kwargs'; not a robomimic dataset")
    return env_args
