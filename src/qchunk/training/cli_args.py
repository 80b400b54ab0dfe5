"""The ``qchunk train`` command: :class:`TrainConfig` plus the run directory."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from qchunk.training.config import TrainConfig


@dataclass(frozen=True)
class TrainArgs(TrainConfig):
    """Offline-to-online training. Fields left at None take the preset's value; agent fields override the
    agent preset for the run's domain."""

    run_dir: str | None = None
    """Run directory (default: runs/<env>/<agent>-<preset>/seed<seed>; with --seeds, RUN_DIR/seed<k>)."""
    seeds: str | None = None
    """Train several seeds in this one process, e.g. `0-7` or `0,3,5`: one environment per seed stepped
    together, the agents' updates vmapped over seeds; each seed writes an ordinary run directory. Replaces
    --seed."""


def run_train(args: TrainArgs) -> int:
    from qchunk.training.loop import train

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: getattr(args, k) for k in fields})
    base = Path(args.run_dir) if args.run_dir else Path("runs") / config.env / f"{config.agent}-{config.preset}"
    if args.seeds is None:
        result = train(config, base if args.run_dir else base / f"seed{config.seed}")
        print("\n" + result.summary)
        return 0
    from qchunk.training.multi_seed import parse_seeds, train_seeds

    seeds = parse_seeds(args.seeds)
    results = train_seeds(config, seeds, [base / f"seed{s}" for s in seeds])
    for seed, result in zip(seeds, results, strict=True):
        print(f"\nseed {seed}: {result.summary}")
    return 0
