"""Validate a dataset file or shard directory and summarise it (``qchunk data inspect``)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qchunk.data.ogbench_data import read_npz
from qchunk.errors import QchunkError
from qchunk.tasks import get_task

_SHARD_NAME = re.compile(r"^(?P<dataset>.+-play-v0)(?:-\d+)?(?:-val)?\.npz$")


@dataclass
class FileSummary:
    """What :func:`inspect_path` finds in one npz file."""

    path: Path
    transitions: int
    """Rows in the file (steps; OGBench makes one transition fewer per episode)."""
    episodes: int
    episode_lengths: tuple[int, int]
    """(shortest, longest) episode in steps."""
    observation_dim: int
    action_dim: int
    action_range: tuple[float, float]
    keys: dict[str, str]
    """key -> "dtype shape"."""
    rewards: dict[int, dict[str, float]] = field(default_factory=dict)
    """task -> reward statistics after OGBench's relabelling (mean, min, max, success fraction)."""
    problems: list[str] = field(default_factory=list)
    checked_against: str | None = None
    """The environment whose spaces the file was checked against (:func:`qchunk.data.check.check_dataset`)."""


def _domain_of(path: Path) -> str | None:
    m = _SHARD_NAME.match(path.name)
    if m:
        try:
            return get_task(m["dataset"]).domain.name
        except QchunkError:
            return None
    return None


def _check_task_name(path: Path, env: str | None) -> str | None:
    """The single task whose environment ``path`` is checked against: ``env`` (a dataset name means its
    task 1; all tasks of a domain share their spaces), else task 1 of the domain its file name names."""
    if env is not None:
        task = get_task(env)
        if task.benchmark == "ogbench" and not task.singletask:
            return f"{task.domain.name}-play-singletask-task1-v0"
        return task.name
    domain = _domain_of(path)
    return None if domain is None else f"{domain}-play-singletask-task1-v0"


@functools.cache
def _env_spaces(task_name: str):
    """(observation_space, action_space) of ``task_name``'s environment, from the task table (the env's own
    spaces: float32 observations, actions in [-1, 1]; data/ does not build environments)."""
    import gymnasium as gym

    task = get_task(task_name)
    return (gym.spaces.Box(-np.inf, np.inf, (task.observation_dim,), np.float32),
            gym.spaces.Box(-1.0, 1.0, (task.action_dim,), np.float32))


def _relabel_stats(domain: str, path: Path) -> dict[int, dict[str, float]]:
    import ogbench
    from ogbench.relabel_utils import relabel_dataset
    from ogbench.utils import load_dataset

    data = load_dataset(str(path), add_info=True)
    stats = {}
    for task in range(1, 6):
        env = ogbench.make_env_and_datasets(f"{domain}-play-singletask-task{task}-v0", env_only=True)
        relabel_dataset(env.spec.id, env, data)
        r = data["rewards"]
        stats[task] = {"mean": float(r.mean()), "min": float(r.min()), "max": float(r.max()),
                       "success_frac": float((data["masks"] == 0).mean())}
        env.close()
    return stats


def summarize_file(path: Path, relabel: bool = True, env: str | None = None) -> FileSummary:
    """Check ``path`` (raises :class:`QchunkError` on fatal problems) and summarise it.

    The file is checked against the environment of ``env`` (a task or dataset name), or, when ``env`` is
    None and the file name names an OGBench dataset, against that domain's: shapes, dtypes, finite values,
    action bounds and episode ends (see :func:`qchunk.data.check.check_dataset`); a mismatch raises.
    """
    from qchunk.data.check import check_dataset

    arrays = read_npz(path)
    check_name = _check_task_name(path, env)
    if check_name is not None:
        check_dataset(arrays, *_env_spaces(check_name), source=str(path), env_name=check_name)
    terms = arrays["terminals"].astype(bool)
    ends = np.flatnonzero(terms)
    lengths = np.diff(np.concatenate([[-1], ends]))
    actions = arrays["actions"]
    s = FileSummary(
        path=path, transitions=len(terms), episodes=len(ends),
        episode_lengths=(int(lengths.min()), int(lengths.max())),
        observation_dim=int(arrays["observations"].shape[1]), action_dim=int(actions.shape[1]),
        action_range=(float(actions.min()), float(actions.max())),
        keys={k: f"{v.dtype} {tuple(v.shape)}" for k, v in arrays.items()},
        checked_against=check_name,
    )
    if s.action_range[0] < -1.0 or s.action_range[1] > 1.0:
        s.problems.append(f"actions leave [-1, 1] (range {s.action_range[0]:.3f}..{s.action_range[1]:.3f}); "
                          "agents sample chunks in [-1, 1]")
    if lengths.min() < 2:
        s.problems.append("an episode has fewer than 2 steps (no transition)")
    domain = _domain_of(path)
    if env is not None and get_task(env).benchmark == "ogbench":
        domain = get_task(env).domain.name  # --env names the domain whose rewards to relabel
    if domain is None:
        s.problems.append("file name does not name a known OGBench dataset; rewards were not relabelled")
    else:
        if "qpos" not in arrays:
            s.problems.append("no 'qpos': OGBench cannot relabel rewards for single-task use")
        elif relabel:
            s.rewards = _relabel_stats(domain, path)
    return s


def summarize_source(source: str, env: str | None = None) -> FileSummary:
    """Load ``source`` (``minari:<id>`` or a D4RL-layout ``.npz`` / ``.hdf5``) exactly as training does for
    task ``env`` (default: the Minari dataset's own environment; a file without ``env`` is checked for its
    layout only) and summarise it. The load runs :func:`qchunk.data.check.check_dataset` against the task's
    raw spaces; a mismatch raises."""
    from qchunk.data.open_data import load_source, raw_transitions, source_kind

    kind = source_kind(source)
    task = get_task(env if env is not None else source) if env is not None or kind == "minari" else None
    if task is not None:
        data = load_source(task, source).arrays()
        raw = raw_transitions(source)["actions"]
    else:
        data = raw_transitions(source)
        raw = data["actions"]
    ends = np.flatnonzero(data["terminals"])
    lengths = np.diff(np.concatenate([[-1], ends]))
    n = len(data["terminals"])
    s = FileSummary(path=Path(source), transitions=n + len(ends), episodes=len(ends),
                    episode_lengths=(int(lengths.min()) + 1, int(lengths.max()) + 1),
                    observation_dim=int(data["observations"].shape[1]), action_dim=int(data["actions"].shape[1]),
                    action_range=(float(raw.min()), float(raw.max())),
                    keys={k: f"{v.dtype} {tuple(v.shape)}" for k, v in data.items()},
                    checked_against=task.name if task is not None else None)
    s.rewards = {0: {"mean": float(data["rewards"].mean()), "min": float(data["rewards"].min()),
                     "max": float(data["rewards"].max()), "success_frac": float((data["masks"] == 0).mean())}}
    if task is None:
        s.problems.append("not checked against an environment; give --env gym:<id> (or the task it was made for)")
    return s


def inspect_path(path: str | Path, env: str | None = None) -> list[FileSummary]:
    """Summaries of a dataset file (plus its ``-val`` file if present) or of every shard in a directory.

    Rewards are relabelled for tasks 1..5 of the file's domain (for a shard directory: the first shard).
    Each file is checked against ``env``'s environment (or the one its name infers), as :func:`summarize_file`.
    A ``minari:<id>`` source, an ``.hdf5`` file, an ``.npz`` in the D4RL layout (``qchunk data collect``
    output) and any file for an open task (``env`` is ``gym:<id>``, ``minari:<id>`` or registered) are read
    as training reads them (:func:`summarize_source`).
    """
    text = str(path)
    open_task = env is not None and get_task(env).benchmark not in ("ogbench", "robomimic")
    if text.startswith("minari:") or text.lower().endswith((".hdf5", ".h5")) or open_task or _is_d4rl_npz(text):
        return [summarize_source(text if text.startswith("minari:") else str(Path(text).expanduser()), env)]
    path = Path(path).expanduser()
    if path.is_dir():
        shards = sorted(p for p in path.glob("*.npz") if not p.name.endswith("-val.npz"))
        if not shards:
            raise QchunkError(f"{path} holds no .npz dataset files")
        return [summarize_file(p, relabel=i == 0, env=env) for i, p in enumerate(shards)]
    if not path.exists():
        raise QchunkError(f"{path} does not exist; give a dataset .npz file or a shard directory")
    out = [summarize_file(path, env=env)]
    val = path.with_name(path.name.replace(".npz", "-val.npz"))
    if not path.name.endswith("-val.npz"):
        if val.is_file():
            out.append(summarize_file(val, relabel=False, env=env))
        elif _domain_of(path) is not None:
            out[0].problems.append(f"no validation file {val.name} beside it")
    return out


def _is_d4rl_npz(text: str) -> bool:
    """An ``.npz`` in the D4RL layout (``qchunk data collect`` writes one): it stores rewards or timeouts,
    which OGBench's layout never does."""
    from qchunk.data.columns import READ_ERRORS

    path = Path(text).expanduser()
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as f:
            return bool({"rewards", "timeouts"} & set(f.files))
    except READ_ERRORS:
        return False  # unreadable: the reader below says so in one line


def format_summary(summaries: list[FileSummary]) -> str:
    """Human-readable text of :func:`inspect_path`'s result."""
    lines = []
    for s in summaries:
        lines.append(f"{s.path}")
        lines.append(f"  steps {s.transitions:,} in {s.episodes:,} episodes "
                     f"(length {s.episode_lengths[0]}..{s.episode_lengths[1]}); "
                     f"{s.transitions - s.episodes:,} transitions")
        lines.append(f"  observation dim {s.observation_dim}, action dim {s.action_dim}, "
                     f"action range [{s.action_range[0]:.3f}, {s.action_range[1]:.3f}]")
        lines.append("  keys: " + ", ".join(f"{k} ({v})" for k, v in s.keys.items()))
        for task, r in s.rewards.items():
            ends = "success" if task else "terminated"  # task 0: an open source's own rewards and terminations
            lines.append(f"  {f'task{task}' if task else 'rewards'}: reward mean {r['mean']:.3f} (min {r['min']:.0f}, "
                         f"max {r['max']:.0f}), {ends} in {100 * r['success_frac']:.2f}% of transitions")
        if s.checked_against is not None:
            lines.append(f"  checked against {s.checked_against}: shapes, dtypes, finite values, action bounds, "
                         "episode ends")
        lines.extend(f"  problem: {p}" for p in s.problems)
        if not s.problems:
            lines.append("  ok")
    if len(summaries) > 1:
        lines.append(f"total: {sum(s.transitions for s in summaries):,} steps in "
                     f"{sum(s.episodes for s in summaries):,} episodes over {len(summaries)} files")
    return "\n".join(lines)


__all__ = ["FileSummary", "format_summary", "inspect_path", "summarize_file", "summarize_source"]
