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
    """Run directory (default: runs/<env>/<agent>-<preset>/seed<seed>)."""


def run_train(args: TrainArgs) -> int:
    from qchunk.training.loop import train

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: getattr(args, k) for k in fields})
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / config.env / f"{config.agent}-{config.preset}" \
        / f"seed{config.seed}"
    result = train(config, run_dir)
    print("\n" + result.summary)
    return 0
