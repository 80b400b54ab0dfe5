"""The ``e2e`` suite: wall-clock of a fixed small training protocol, and where the time goes.

The protocol: ``qc-fql`` at the quick preset on ``puzzle-3x3-play-singletask-task2-v0`` with the sparse
reward, 20K offline gradient steps then 20K online environment steps, evaluating 50 episodes every 10K
steps of each phase (4 evaluations: the trainer evaluates at the end of every phase, so an
``eval_every`` cannot give 3). The offline data is a 100-episode OGBench ``play`` set generated locally
with OGBench's oracles (:func:`qchunk.bench.data_bench.ensure_ogbench_dataset`, cached under the
dataset directory; its generation time is reported apart). The run goes to a temporary directory
unless one is given.

``wall_s`` is the whole :func:`qchunk.training.train` call. ``time_share`` splits it, from the run's
``train.csv`` (per-window ``steps_per_s`` and ``sample_frac``) and ``eval.csv`` (``eval_seconds``), into

* ``update``: (offline steps + online updates) x the median offline update time per step;
* ``sampling``: chunk sampling, offline and online (median per-step sampling time of each phase);
* ``env``: online environment steps (stepping, acting, buffer writes) x the median time per step of the
  online windows before updates start;
* ``eval``: the evaluations' own time (without the pool's start-up);
* ``other``: the rest: compilation, the evaluation pool's start-up, data loading, checkpoints, logging.

These are estimates from per-window medians (labelled as such in the JSON), not a profile.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class E2ESettings:
    """The protocol of the ``e2e`` suite."""

    agent: str = "qc-fql"
    """Agent (an RLPD agent trains online only: its offline steps are 0)."""
    task: str = "puzzle-3x3-play-singletask-task2-v0"
    """Single-task environment."""
    sparse: bool = True
    """The paper's sparse reward."""
    preset: str = "quick"
    """Agent preset."""
    dataset_episodes: int = 100
    """Episodes of the generated offline dataset."""
    dataset_episode_steps: int = 1001
    """Steps per generated episode."""
    offline_steps: int = 20_000
    """Offline gradient steps."""
    online_steps: int = 20_000
    """Online environment steps."""
    eval_every: int = 10_000
    """Evaluate every this many steps of each phase (and at each phase's end)."""
    eval_episodes: int = 50
    """Episodes per evaluation."""
    log_every: int = 500
    """train.csv window (the time shares are computed from these windows)."""
    start_training: int = 5000
    """Online steps before online updates begin."""
    episode_length: int | None = None
    """Time limit (None: the task's)."""
    seed: int = 0
    """Seed of the dataset and the run."""
    sample_on: str = "host"
    """Where offline batches are gathered (``qchunk train --sample-on``)."""
    agent_overrides: dict[str, Any] = field(default_factory=dict)
    """Agent fields to override (tests use tiny networks)."""


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def time_share(train_rows: list[dict[str, str]], eval_rows: list[dict[str, str]], wall_s: float, offline_steps: int,
               online_steps: int, online_updates: int, start_training: int) -> dict[str, Any]:
    """The estimated split of ``wall_s`` described in the module docstring (seconds and shares)."""
    def rows(phase: str, pred=lambda r: True) -> list[tuple[float, float]]:
        out = []
        for r in train_rows:
            if r.get("phase") == phase and pred(r) and float(r.get("steps_per_s") or 0) > 0:
                out.append((1.0 / float(r["steps_per_s"]), float(r.get("sample_frac") or 0.0)))
        return out

    offline = rows("offline")
    before = rows("online", lambda r: int(float(r["env_steps"])) <= start_training)
    after = rows("online", lambda r: int(float(r["env_steps"])) > start_training)
    update_per_step = _median([t * (1 - f) for t, f in offline])
    seconds = {
        "update": (offline_steps + online_updates) * update_per_step,
        "sampling": offline_steps * _median([t * f for t, f in offline])
        + online_updates * _median([t * f for t, f in after]),
        "env": online_steps * _median([t for t, _ in before]),
        "eval": sum(float(r.get("eval_seconds") or 0.0) for r in eval_rows),
    }
    seconds["other"] = max(wall_s - sum(seconds.values()), 0.0)
    return {"seconds": seconds, "share": {k: v / wall_s for k, v in seconds.items()}}


def run_e2e(settings: E2ESettings, dataset_dir: str | os.PathLike, workers: int | None = None,
            run_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run the protocol (generating the dataset if needed) and return the results document body."""
    from qchunk.agents import agent_config
    from qchunk.bench.data_bench import ensure_ogbench_dataset
    from qchunk.tasks import get_task
    from qchunk.training import TrainConfig, train
    from qchunk.training.config import AgentOverrides
    from qchunk.training.run_dir import EVAL_CSV, TRAIN_CSV, RunDir

    s = settings
    online_only = not agent_config(s.agent, s.preset).pretrains_offline
    offline_steps = 0 if online_only else s.offline_steps
    directory, generated_s = ensure_ogbench_dataset(get_task(s.task), dataset_dir, s.dataset_episodes, s.seed,
                                                    s.dataset_episode_steps, workers)
    agent_fields = {k: v for k, v in s.agent_overrides.items() if k != "batch_size"}  # batch_size: a run setting
    cfg = TrainConfig(agent=s.agent, env=s.task, sparse=s.sparse, preset=s.preset, offline_steps=offline_steps,
                      online_steps=s.online_steps, eval_every=s.eval_every, eval_episodes=s.eval_episodes,
                      episode_length=s.episode_length, start_training=s.start_training, seed=s.seed,
                      dataset_dir=str(directory), log_every=s.log_every, eval_workers=workers, progress=False,
                      batch_size=int(s.agent_overrides.get("batch_size", 256)), sample_on=s.sample_on,
                      overrides=AgentOverrides(**agent_fields))
    tmp = None
    if run_dir is None:
        tmp = tempfile.mkdtemp(prefix="qchunk-bench-e2e-")
        run_dir = Path(tmp) / "run"
    run_dir = Path(run_dir)
    try:
        print(f"[bench] e2e: training {s.agent} into {run_dir}", flush=True)
        t0 = time.perf_counter()
        result = train(cfg, run_dir)
        wall_s = time.perf_counter() - t0
        train_rows, eval_rows = RunDir(run_dir).rows(TRAIN_CSV), RunDir(run_dir).rows(EVAL_CSV)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    online_updates = max(s.online_steps - s.start_training + 1, 0)  # one per step from start_training on (UTD 1)
    share = time_share(train_rows, eval_rows, wall_s, offline_steps, s.online_steps, online_updates,
                       s.start_training)

    def phase_stat(phase: str, key: str) -> float | None:
        vals = [float(r[key]) for r in train_rows if r.get("phase") == phase and r.get(key)]
        return statistics.median(vals) if vals else None

    return {
        "agent": s.agent,
        "preset": s.preset,
        "env": s.task,
        "sparse": s.sparse,
        "sample_on": s.sample_on,
        "dataset": str(directory),
        "dataset_generated_s": generated_s,
        "offline_steps": offline_steps,
        "online_steps": s.online_steps,
        "eval_every": s.eval_every,
        "eval_episodes": s.eval_episodes,
        "evaluations": len(eval_rows),
        "wall_s": wall_s,
        "offline_updates_per_s": result.offline_updates_per_s,
        "online_steps_per_s": result.online_steps_per_s,
        "median_steps_per_s": {"offline": phase_stat("offline", "steps_per_s"),
                               "online": phase_stat("online", "steps_per_s")},
        "median_sample_frac": {"offline": phase_stat("offline", "sample_frac"),
                               "online": phase_stat("online", "sample_frac")},
        "eval_seconds": [float(r["eval_seconds"]) for r in eval_rows if r.get("eval_seconds")],
        "success": [float(r["success"]) for r in eval_rows],
        "time_share": share["share"],
        "time_seconds": share["seconds"],
        "time_share_method": "estimated from train.csv per-window medians and eval.csv eval_seconds "
                             "(see qchunk.bench.e2e)",
    }
