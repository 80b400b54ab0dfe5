"""The ``loop`` suite: the offline phase of ``qchunk train`` against the update's own rate, in one process.

Per variant of the training loop (``scan_block`` 1, the loop of one update per dispatch, and the scanned
blocks; ``sample_on`` host or device), an offline-only ``train`` run on a locally generated OGBench
``puzzle-3x3-play`` set (the main job's task and reward), and ``bench``'s per-step update rate of the same agent
on a synthetic batch of the same sizes (:func:`qchunk.bench.update.bench_agent`). They are timed in interleaved
rounds (every variant and the bench once per round), so that a shared machine's load falls on all of them alike;
the medians over rounds are reported.

``offline_updates_per_s`` of a run is the median ``steps_per_s`` of its ``train.csv`` windows after the first
(which holds the compilation), so evaluation and checkpoints are not in it; ``ratio_to_bench`` is that over
the per-step rate of the same round (1.0: the loop adds nothing to the update; the ``lax.scan`` rate,
``bench_scan_updates_per_s``, is the ceiling).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LoopSettings:
    """What the ``loop`` suite measures."""

    agents: tuple[str, ...] = ("qc-fql",)
    """Agents (offline-pretraining ones)."""
    preset: str = "quick"
    """Agent preset."""
    task: str = "puzzle-3x3-play-singletask-task1-v0"
    """The main job's task (dense reward)."""
    dataset_episodes: int = 100
    """Episodes of the generated offline dataset (the main job's 100)."""
    offline_steps: int = 2000
    """Offline steps of each timed run."""
    windows: int = 4
    """train.csv windows per run (log_every = offline_steps / windows)."""
    rounds: int = 3
    """Interleaved rounds."""
    variants: tuple[tuple[int, str], ...] = ((1, "host"), (50, "host"), (50, "device"))
    """(scan_block, sample_on) of the timed runs."""
    bench_steps: int = 30
    """Timed per-step updates of the bench rate per round."""
    seed: int = 0
    """Seed of the dataset and the runs."""
    agent_overrides: dict[str, Any] = field(default_factory=dict)
    """Agent fields to override (tests use tiny networks)."""

    @classmethod
    def quick(cls, agent: str | None = None, **changes: Any) -> LoopSettings:
        """The quick set's size: the data suite's 10-episode dataset, shorter runs, two rounds."""
        return cls(**{"agents": (agent,) if agent else ("qc-fql",), "dataset_episodes": 10, "offline_steps": 1000,
                      "rounds": 2, **changes})

    @classmethod
    def full(cls, agent: str | None = None, **changes: Any) -> LoopSettings:
        """Full size: qc-fql and qam at the quick preset."""
        return cls(**{"agents": (agent,) if agent else ("qc-fql", "qam"), **changes})


def _offline_rate(run_dir: Path) -> float:
    from qchunk.training.run_dir import TRAIN_CSV, RunDir

    rows = RunDir(run_dir).rows(TRAIN_CSV)
    rates = [float(r["steps_per_s"]) for r in rows[1:]] or [float(r["steps_per_s"]) for r in rows]
    return statistics.median(rates)


def run_loop(settings: LoopSettings, dataset_dir: str | os.PathLike, workers: int | None = None) -> dict[str, Any]:
    """Time the variants and the bench rate in interleaved rounds; returns the results document body."""
    import numpy as np

    from qchunk.bench.data_bench import ensure_ogbench_dataset
    from qchunk.bench.update import bench_agent
    from qchunk.tasks import get_task
    from qchunk.training import TrainConfig, train
    from qchunk.training.config import AgentOverrides

    s = settings
    task = get_task(s.task)
    directory, generated_s = ensure_ogbench_dataset(task, dataset_dir, s.dataset_episodes, s.seed, workers=workers)
    with np.load(directory / f"{task.dataset}.npz") as z:
        obs_dim, act_dim = int(z["observations"].shape[1]), int(z["actions"].shape[1])
    fields = {k: v for k, v in s.agent_overrides.items() if k != "batch_size"}
    batch_size = int(s.agent_overrides.get("batch_size", 256))
    log_every = max(1, s.offline_steps // s.windows)
    tmp = Path(tempfile.mkdtemp(prefix="qchunk-bench-loop-"))
    rows = []
    try:
        for agent in s.agents:
            bench, scan, runs = [], [], {v: [] for v in s.variants}
            for r in range(s.rounds):
                b = bench_agent(agent, s.preset, task.domain.name, steps=s.bench_steps, act_repeats=1, scan=True,
                                seed=s.seed, observation_dim=obs_dim, action_dim=act_dim, batch_size=batch_size,
                                **fields)
                bench.append(b["updates_per_s"])
                scan.append(b["scan_updates_per_s"])
                for variant in s.variants:
                    block, sample_on = variant
                    run_dir = tmp / f"{agent}-{block}-{sample_on}-{r}"
                    cfg = TrainConfig(agent=agent, env=s.task, preset=s.preset, sparse=False,
                                      dataset_dir=str(directory), offline_steps=s.offline_steps, online_steps=0,
                                      eval_every=s.offline_steps, eval_episodes=1, log_every=log_every,
                                      checkpoint_every=s.offline_steps, eval_workers=1, progress=False,
                                      tensorboard=False, seed=s.seed, batch_size=batch_size, scan_block=block,
                                      sample_on=sample_on, overrides=AgentOverrides(**fields))
                    print(f"[bench] loop: {agent} scan_block={block} sample_on={sample_on} round {r + 1}", flush=True)
                    train(cfg, run_dir)
                    runs[variant].append(_offline_rate(run_dir))
                    shutil.rmtree(run_dir, ignore_errors=True)
            per_step = statistics.median(bench)
            for (block, sample_on), rates in runs.items():
                ratios = [x / y for x, y in zip(rates, bench, strict=True)]
                rows.append({"agent": agent, "scan_block": block, "sample_on": sample_on,
                             "offline_updates_per_s": statistics.median(rates),
                             "bench_updates_per_s": per_step, "bench_scan_updates_per_s": statistics.median(scan),
                             "ratio_to_bench": statistics.median(ratios), "rounds": rates})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"preset": s.preset, "env": s.task, "sparse": False, "dataset": str(directory),
            "dataset_generated_s": generated_s, "offline_steps": s.offline_steps, "log_every": log_every,
            "rounds": s.rounds, "batch_size": batch_size, "rows": rows,
            "note": "ratio_to_bench: the offline phase's updates/s over bench's per-step rate, same round "
                    "(scan_block 1 = one update per dispatch, the loop before scanned blocks)"}
