"""The ``qchunk train`` command: :class:`TrainConfig` plus the run directory, seeds and ``--dry-run``."""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from qchunk.errors import require
from qchunk.training.config import TrainConfig


@dataclass(frozen=True)
class TrainArgs(TrainConfig):
    """Offline-to-online training. Fields left at None take the preset's value; agent fields override the
    agent preset for the run's domain."""

    seed: int | None = None  # type: ignore[assignment]
    """Seed of everything (network init, sampling, environments; default 0). Not together with --seeds."""
    run_dir: str | None = None
    """Run directory (default: runs/<env>/<agent>-<preset>/seed<seed>; with --seeds, RUN_DIR/seed<k>). New, empty or
    a qchunk run (files of the user's are refused); one process at a time (locked)."""
    seeds: str | None = None
    """Train several seeds in this one process, e.g. `0-7` or `0,3,5`: one environment per seed stepped
    together, the agents' updates vmapped over seeds; each seed writes an ordinary run directory. Not
    together with --seed."""
    dry_run: bool = False
    """Print the fully resolved run and agent config as JSON and exit; nothing is written or trained."""


def config_warnings(cfg: TrainConfig) -> list[str]:
    """What looks wrong in resolved ``cfg`` but can run (refusals are :meth:`TrainConfig.resolved`'s): one
    line each, for the CLI to print as ``warning: ...``."""
    out = []
    if 0 < cfg.online_steps < cfg.start_training:
        out.append(f"--start-training {cfg.start_training:,} > --online-steps {cfg.online_steps:,}: the online phase "
                   "collects data but makes no gradient update (lower --start-training)")
    if cfg.buffer_size is not None and cfg.buffer_size < cfg.batch_size:
        out.append(f"--buffer-size {cfg.buffer_size:,} is smaller than a batch (--batch-size {cfg.batch_size}): every "
                   "batch repeats transitions")
    if cfg.sample_on == "device" and cfg.offline_steps == 0:
        out.append("--sample-on device gathers offline batches only and this run has no offline steps: every batch "
                   "is sampled on the host")
    return out


def run_train(args: TrainArgs) -> int:
    from qchunk.agents import agent_config
    from qchunk.grammar import parse_seeds
    from qchunk.training.loop import train, train_seeds

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    require(args.seeds is None or args.seed is None,
            "--seed and --seeds conflict: give one (--seeds 0-3 trains seeds 0..3)")
    config = TrainConfig(**{k: getattr(args, k) for k in fields if k != "seed"}, seed=args.seed or 0)
    seeds = parse_seeds(args.seeds) if args.seeds is not None else [config.seed]
    base = Path(args.run_dir) if args.run_dir else Path("runs") / config.env_name / f"{config.agent}-{config.preset}"
    cfg = config.resolved()  # every refusal before any work
    for line in config_warnings(cfg):
        print(f"warning: {line}", file=sys.stderr)
    if args.dry_run:
        acfg = agent_config(cfg.agent, cfg.preset, cfg.task.domain.name, **cfg.agent_overrides())
        print(json.dumps({"train": cfg.to_dict(), "agent": dataclasses.asdict(acfg), "seeds": seeds,
                          "run_dirs": [str(base if args.run_dir and args.seeds is None else base / f"seed{s}")
                                       for s in seeds]}, indent=2, sort_keys=True))
        return 0
    if args.seeds is None:
        result = train(config, base if args.run_dir else base / f"seed{config.seed}")
        print("\n" + result.summary)
        return 0
    results = train_seeds(config, seeds, [base / f"seed{s}" for s in seeds])
    for seed, result in zip(seeds, results, strict=True):
        print(f"\nseed {seed}: {result.summary}")
    return 0
