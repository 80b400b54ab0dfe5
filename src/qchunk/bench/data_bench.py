"""The ``data`` suite: loading an OGBench file, chunk-sampling throughput, replay-buffer memory.

* ``load``: an OGBench ``play`` dataset generated locally with OGBench's oracles
  (:func:`ensure_ogbench_dataset`, cached) is read with :func:`qchunk.data.ogbench_data.read_npz`
  (decompression and checks) and loaded with :func:`~qchunk.data.load_ogbench` (also makes the task's env
  and relabels the rewards: what a training run pays).
* ``sampling``: :meth:`~qchunk.data.Dataset.sample_chunks` batches of 256 at h = 1, 5, 25 on that dataset,
  batches per second over ``sample_batches`` calls (one numpy generator, seeded).
* ``memory``: a :class:`~qchunk.data.ReplayBuffer` of 1M and 10M transitions at cube-double sizes
  (obs 37, action 5), each filled and sampled in its own fresh process (:mod:`qchunk.bench.memprobe`), so
  every peak resident set is separate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qchunk.errors import QchunkError
from qchunk.tasks import Task, get_task


@dataclass(frozen=True)
class DataSettings:
    """What the ``data`` suite measures."""

    task: str = "puzzle-3x3-play-singletask-task2-v0"
    """Single-task whose dataset is generated, loaded and sampled."""
    episodes: int = 100
    """Episodes of the generated dataset (1001 steps each)."""
    episode_steps: int = 1001
    """Steps per generated episode (1001: the official protocol)."""
    horizons: tuple[int, ...] = (1, 5, 25)
    """Chunk lengths h of the sampling measurement."""
    batch_size: int = 256
    """Chunks per sampled batch."""
    sample_batches: int = 1000
    """Timed batches per horizon."""
    capacities: tuple[int, ...] = (1_000_000, 10_000_000)
    """Replay-buffer sizes whose memory is measured."""
    observation_dim: int = 37
    """State width of the buffers (cube-double)."""
    action_dim: int = 5
    """Action width of the buffers."""
    buffer_batches: int = 200
    """Batches (256 x h=5) sampled from each buffer."""
    seed: int = 0
    """Seed of the dataset and the samplers."""

    @classmethod
    def quick(cls, **changes: Any) -> DataSettings:
        """The quick set's size: a 10-episode dataset, fewer timed batches."""
        return cls(**{"episodes": 10, "sample_batches": 200, "buffer_batches": 100, **changes})

    @classmethod
    def full(cls, **changes: Any) -> DataSettings:
        """Full size: the 100-episode dataset of the e2e suite (shared cache)."""
        return cls(**changes)


def ensure_ogbench_dataset(task: Task, dataset_dir: str | os.PathLike, episodes: int, seed: int = 0,
                           episode_steps: int = 1001, workers: int | None = None) -> tuple[Path, float | None]:
    """The directory holding ``task``'s generated dataset, made with :func:`qchunk.datagen.ogbench.generate_ogbench`
    if absent; returns it and the generation seconds (None when it was cached).

    Each size has its own subdirectory, ``<dataset_dir>/<dataset>-<episodes>x<episode_steps>-seed<seed>/``,
    so a cached file is always the one asked for.
    """
    from qchunk.datagen.ogbench import generate_ogbench

    dataset = task.dataset
    directory = Path(dataset_dir).expanduser() / f"{dataset}-{episodes}x{episode_steps}-seed{seed}"
    if (directory / f"{dataset}.npz").is_file() and (directory / f"{dataset}-val.npz").is_file():
        return directory, None
    print(f"[bench] generating {episodes} episodes of {dataset} with OGBench's oracles into {directory}", flush=True)
    t0 = time.perf_counter()
    generate_ogbench(task, episodes=episodes, seed=seed, out_dir=directory, workers=workers,  # its own cache
                     episode_steps=episode_steps, progress=False, overwrite=True)
    return directory, time.perf_counter() - t0


def measure_buffer_memory(capacity: int, observation_dim: int, action_dim: int, batches: int,
                          seed: int = 0) -> dict[str, Any]:
    """Run :mod:`qchunk.bench.memprobe` in a fresh Python process; returns its measurements."""
    cmd = [sys.executable, "-m", "qchunk.bench.memprobe", str(capacity), str(observation_dim), str(action_dim),
           str(batches), str(seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise QchunkError(f"the memory probe for a {capacity:,}-transition buffer failed: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_data(settings: DataSettings, dataset_dir: str | os.PathLike, workers: int | None = None) -> dict[str, Any]:
    """Measure loading, sampling and buffer memory as described in the module docstring."""
    from qchunk.data import load_ogbench
    from qchunk.data.ogbench_data import read_npz

    s = settings
    task = get_task(s.task)
    directory, generated_s = ensure_ogbench_dataset(task, dataset_dir, s.episodes, s.seed, s.episode_steps,
                                                    workers)
    path = task.dataset_path(directory)
    t0 = time.perf_counter()
    read_npz(path)
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    dataset = load_ogbench(task, dataset_path=path, sparse=True)
    load_s = time.perf_counter() - t0
    load = {
        "path": str(path),
        "transitions": dataset.size,
        "file_mb": path.stat().st_size / 2**20,
        "generated_s": generated_s,
        "read_npz_s": read_s,
        "load_ogbench_s": load_s,
        "transitions_per_s": dataset.size / load_s,
    }

    rng = np.random.default_rng(s.seed)
    sampling = []
    for h in s.horizons:
        dataset.sample_chunks(s.batch_size, h, 0.99, rng)
        t0 = time.perf_counter()
        for _ in range(s.sample_batches):
            dataset.sample_chunks(s.batch_size, h, 0.99, rng)
        dt = time.perf_counter() - t0
        sampling.append({"source": f"dataset ({dataset.size:,})", "horizon": h, "batch_size": s.batch_size,
                         "batches": s.sample_batches, "batches_per_s": s.sample_batches / dt,
                         "ms_per_batch": 1e3 * dt / s.sample_batches})
    del dataset

    memory = [measure_buffer_memory(c, s.observation_dim, s.action_dim, s.buffer_batches, s.seed)
              for c in s.capacities]
    for row in memory:
        if row.get("batches_per_s") is not None:
            sampling.append({"source": f"replay buffer ({row['capacity']:,})", "horizon": 5, "batch_size": 256,
                             "batches": s.buffer_batches, "batches_per_s": row["batches_per_s"],
                             "ms_per_batch": 1e3 / row["batches_per_s"]})
    return {"task": s.task, "load": load, "sampling": sampling, "memory": memory,
            "buffer_dims": {"observation_dim": s.observation_dim, "action_dim": s.action_dim}}
