"""The README's main job: a quick offline-to-online run on an embedded default, no download needed.

1. Generate a small OGBench play dataset with OGBench's own scripted oracles into ``data/quickstart``
   (once; later runs reuse it).
2. Show what the chunk sampler feeds the agent.
3. Train: offline pre-training, then online fine-tuning with open-loop chunk execution, evaluating as it
   goes, into ``runs/quickstart``. Running it again continues an interrupted run or, if it finished,
   prints its summary (``--fresh`` starts over).
4. Draw the learning curve (the ``qchunk plot`` figure, offline phase shaded) into ``<run>/plots/``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qchunk.dir_lock import hold
from qchunk.errors import QchunkError


@dataclass
class QuickstartArgs:
    """A quick offline-to-online run on a locally generated OGBench dataset (the README's main command)."""

    task: str = "puzzle-3x3-play-singletask-task1-v0"
    """OGBench single-task name."""
    agent: str = "qc-fql"
    """Agent (see `qchunk train --help`)."""
    sparse: bool = False
    """Sparse reward (the paper's choice for puzzle). The demo uses puzzle's dense reward (minus the buttons
    not yet in their goal state), which learns within a CPU budget."""
    episodes: int = 100
    """Training episodes of 1001 steps to generate if the dataset is not there yet."""
    offline_steps: int = 20_000
    """Offline gradient steps."""
    online_steps: int = 20_000
    """Online environment steps."""
    eval_every: int = 10_000
    """Evaluate every this many steps of each phase (and at each phase's end)."""
    eval_episodes: int = 50
    """Episodes per evaluation."""
    dataset_dir: str = "data/quickstart"
    """Where the generated dataset lives (kept apart from `~/.ogbench/data` so it never shadows official files)."""
    run_dir: str = "runs/quickstart"
    """Run directory."""
    seed: int = 0
    """Seed of generation and training."""
    workers: int | None = None
    """Processes for dataset generation and evaluation (default: all cores)."""
    fresh: bool = False
    """Delete an existing quickstart run and start over."""
    progress: bool = True
    """Show progress bars."""


def _ensure_dataset(args: QuickstartArgs) -> None:
    from qchunk.data.ogbench_data import read_npz
    from qchunk.datagen.ogbench import generate_ogbench

    task = quickstart_config(args).task
    path = task.dataset_path(args.dataset_dir)
    if path.is_file():
        try:
            n = len(read_npz(path)["terminals"])
            print(f"[quickstart] reusing {path} ({n:,} steps)")
            return
        except QchunkError as e:  # qchunk writes atomically: a file it cannot read is not one it wrote
            raise QchunkError(f"{e}; quickstart does not replace it: delete it to generate the dataset again, or "
                              "choose another --dataset-dir") from None
    val = path.with_name(f"{task.dataset}-val.npz")
    if val.is_file():  # generation writes the validation file first: an interrupted one leaves it alone
        print(f"[quickstart] replacing {val}, a validation file without its training file (an interrupted "
              "generation)")
    print(f"[quickstart] generating {args.episodes} episodes of {task.dataset} with OGBench's plan oracles into "
          f"{args.dataset_dir}")
    generate_ogbench(task, episodes=args.episodes, seed=args.seed, out_dir=args.dataset_dir,
                     workers=args.workers, progress=args.progress, overwrite=val.is_file())


def _describe_batches(config, agent_horizon: int, discount: float) -> None:
    from qchunk.data.ogbench_data import load_ogbench

    ds = load_ogbench(config.task, config.dataset_dir, sparse=config.resolved().sparse)
    b = ds.sample_chunks(256, agent_horizon, discount, np.random.default_rng(config.seed))
    print(f"[quickstart] {ds.size:,} transitions; a batch holds {b['actions'].shape[0]} chunks of "
          f"{agent_horizon} actions (actions {tuple(b['actions'].shape)}, rewards {tuple(b['rewards'].shape)}); "
          f"{100 * (b['valid'][:, -1] == 0).mean():.1f}% cross an episode end, "
          f"{100 * (b['masks'][:, -1] == 0).mean():.1f}% reach the goal")


def quickstart_config(args: QuickstartArgs):
    """The :class:`~qchunk.training.TrainConfig` of the quickstart run."""
    from qchunk.training import TrainConfig

    return TrainConfig(agent=args.agent, env=args.task, sparse=args.sparse, preset="quick",
                       offline_steps=args.offline_steps,
                       online_steps=args.online_steps, eval_every=args.eval_every, eval_episodes=args.eval_episodes,
                       dataset_dir=args.dataset_dir, seed=args.seed, eval_workers=args.workers,
                       progress=args.progress)


def main(args: QuickstartArgs) -> int:
    """Generate (if needed), then train or continue the quickstart run; print its summary."""
    from qchunk.agents import agent_config
    from qchunk.training import RunDir, train

    config = quickstart_config(args)
    config.resolved()  # bad arguments fail before any work
    if args.episodes < 1:
        raise QchunkError(f"--episodes must be >= 1, got {args.episodes}")
    RunDir(args.run_dir).check_owned()  # a directory of the user's files: refused before any work
    _ensure_dataset(args)
    acfg = agent_config(config.agent, "quick", config.task.domain.name)
    _describe_batches(config, acfg.horizon, acfg.discount)
    run_dir = Path(args.run_dir)
    with hold(run_dir):  # kept from the erase of --fresh to the end of training (train takes it again)
        if args.fresh:
            RunDir(run_dir).erase()
        resume = RunDir(run_dir).holds_run()
        if resume:
            print(f"[quickstart] continuing the run in {run_dir} (--fresh starts over)")
        print(f"[quickstart] training {config.agent} on {config.env}: {config.offline_steps:,} offline steps, then "
              f"{config.online_steps:,} online steps; evaluation every {config.eval_every:,} steps "
              f"({config.eval_episodes} episodes)")
        result = train(dataclasses.replace(config, resume=resume), run_dir)
    print("\n" + result.summary)
    _plot(run_dir)
    return 0


def _plot(run_dir: Path) -> None:
    """The learning curve of the run, as ``qchunk plot RUN_DIR`` draws it (it prints the paths it wrote)."""
    from qchunk.plotting.curves import PlotArgs
    from qchunk.plotting.curves import main as plot

    print("[quickstart] the learning curve (qchunk plot):")
    plot(PlotArgs(paths=(str(run_dir),), resamples=1000))
