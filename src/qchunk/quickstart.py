"""The README's main job: generate a small OGBench play dataset locally and exercise the chunk sampler.

No download is needed: the dataset is made with OGBench's own scripted oracles into ``data/quickstart``
(reused on later runs), loaded for a single task with the paper's sparse reward, and sampled in chunks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qchunk.data.dataset import Dataset
from qchunk.envs.registry import parse_task
from qchunk.errors import QchunkError


@dataclass
class QuickstartArgs:
    """Generate a small OGBench dataset (if not there yet), load it for one task and sample chunk batches."""

    task: str = "puzzle-3x3-play-singletask-task2-v0"
    """OGBench single-task name."""
    episodes: int = 20
    """Training episodes to generate (1001 steps each) if the dataset is not there yet."""
    dataset_dir: str = "data/quickstart"
    """Where the generated dataset lives (kept apart from `~/.ogbench/data` so it never shadows the official
    files)."""
    seed: int = 0
    """Seed for generation and sampling."""
    workers: int | None = None
    """Generation worker processes (default: all cores)."""
    horizon: int = 5
    """Chunk length h."""
    batch_size: int = 256
    """Chunks per batch."""
    discount: float = 0.99
    """Discount gamma."""


def _load_or_generate(args: QuickstartArgs) -> Dataset:
    from qchunk.data.generate import generate_ogbench
    from qchunk.data.ogbench_data import load_ogbench

    spec = parse_task(args.task)
    path = Path(args.dataset_dir) / f"{spec.dataset}.npz"
    if path.is_file():
        try:
            ds = load_ogbench(args.task, args.dataset_dir, sparse=spec.domain.sparse)
            print(f"[quickstart] reusing {path} ({ds.size:,} transitions)")
            return ds
        except QchunkError as e:
            print(f"[quickstart] {e}; generating it again")
    print(f"[quickstart] generating {args.episodes} episodes of {spec.dataset} with OGBench's plan oracles "
          f"into {args.dataset_dir}")
    generate_ogbench(spec.dataset, episodes=args.episodes, seed=args.seed, out_dir=args.dataset_dir,
                     workers=args.workers)
    return load_ogbench(args.task, args.dataset_dir, sparse=spec.domain.sparse)


def main(args: QuickstartArgs) -> int:
    """Run the quickstart and print a summary of the chunked batches; returns the exit code."""
    spec = parse_task(args.task)
    t0 = time.perf_counter()
    ds = _load_or_generate(args)
    rng = np.random.default_rng(args.seed)
    batch = ds.sample_chunks(args.batch_size, args.horizon, args.discount, rng)
    n = 200
    t1 = time.perf_counter()
    for _ in range(n):
        ds.sample_chunks(args.batch_size, args.horizon, args.discount, rng)
    rate = n / (time.perf_counter() - t1)
    lengths = ds.episode_lengths()
    print(f"\ndataset  {ds.source}: {ds.size:,} transitions, {len(lengths)} episodes of {lengths.max()} "
          f"transitions, obs dim {ds.observation_dim}, action dim {ds.action_dim}")
    print(f"task     {args.task} ({'sparse' if spec.domain.sparse else 'dense'} reward): "
          f"success (mask 0) in {100 * (ds.arrays()['masks'] == 0).mean():.2f}% of transitions")
    print(f"batch    h={args.horizon}, B={args.batch_size}, gamma={args.discount}:")
    for k, v in batch.items():
        print(f"  {k:<18} {v.dtype} {tuple(v.shape)}  mean {v.mean():+.3f}")
    print(f"  windows crossing an episode end: {100 * (batch['valid'][:, -1] == 0).mean():.1f}%; "
          f"with a termination: {100 * (batch['masks'][:, -1] == 0).mean():.1f}%")
    print(f"sampling {rate:,.0f} batches/s ({args.batch_size}x{args.horizon} chunks); "
          f"total {time.perf_counter() - t0:.1f}s")
    return 0
