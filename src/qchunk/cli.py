"""The `qchunk` command line: a thin layer over the library; the only place that reads `sys.argv`.

Each command is a typed dataclass parsed by tyro (`qchunk COMMAND --help` lists every option). Errors
the user can fix print one line and exit with status 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Annotated

import tyro

from qchunk.errors import QchunkError


@dataclass
class DataOgbenchArgs:
    """Generate an OGBench play dataset locally with OGBench's scripted plan oracles (official protocol)."""

    name: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="NAME")]
    """Dataset (`puzzle-3x3-play-v0`) or single-task name (`puzzle-3x3-play-singletask-task2-v0`)."""
    episodes: int | None = None
    """Training episodes of 1001 steps (validation adds 10%). Default: the official size (1000; 3000 for
    cube-triple)."""
    seed: int = 0
    """Seed; the same seed gives the same files."""
    out: str | None = None
    """Output directory (default OGBench's `~/.ogbench/data`)."""
    workers: int | None = None
    """Worker processes (default: all cores)."""
    episode_steps: int = 1001
    """Steps per episode (1001 is the official protocol; shorter only for tests)."""


@dataclass
class DataInspectArgs:
    """Validate a dataset file (or shard directory) and print a summary with per-task reward statistics."""

    path: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="PATH")]
    """An `.npz` dataset file, a directory of shards, a D4RL-layout `.hdf5` / `.npz` file or `minari:<id>`."""
    relabel: bool = True
    """Relabel rewards for tasks 1..5 and print their statistics (`--no-relabel` is faster)."""
    env: str | None = None
    """Check the data against this task's environment (shapes, dtypes, action bounds, finite values, episode
    ends); default: the task the file name names (an OGBench dataset name), if any."""


def _run_data_ogbench(args: DataOgbenchArgs) -> int:
    from qchunk.datagen.ogbench import generate_ogbench

    train, val = generate_ogbench(args.name, episodes=args.episodes, seed=args.seed, out_dir=args.out,
                                  workers=args.workers, episode_steps=args.episode_steps)
    print(f"wrote {train}\nwrote {val}")
    return 0


def _run_data_inspect(args: DataInspectArgs) -> int:
    from pathlib import Path

    from qchunk.data.inspect import format_summary, inspect_path, summarize_file

    path = Path(args.path).expanduser()
    if not args.relabel and path.is_file():
        summaries = [summarize_file(path, relabel=False, env=args.env)]
    else:
        summaries = inspect_path(path, env=args.env)
    print(format_summary(summaries))
    return 1 if any(s.problems for s in summaries) else 0


@dataclass(frozen=True)
class _Command:
    help: str
    args: str  # "module:Class" of the tyro dataclass
    run: str  # "module:function" taking the parsed args, returning the exit code


COMMANDS: dict[str, _Command] = {
    "train": _Command("offline-to-online training with evaluation, logging, checkpoints and resume",
                      "qchunk.training.cli_args:TrainArgs", "qchunk.training.cli_args:run_train"),
    "quickstart": _Command("the main job: a quick run on an embedded default (no download)",
                           "qchunk.quickstart:QuickstartArgs", "qchunk.quickstart:main"),
    "data ogbench": _Command("generate an OGBench play dataset locally with OGBench's oracles",
                             "qchunk.cli:DataOgbenchArgs", "qchunk.cli:_run_data_ogbench"),
    "data robomimic": _Command("generate a small robomimic lift dataset (official layout) with a scripted policy",
                               "qchunk.datagen.robomimic:DataRobomimicArgs",
                               "qchunk.datagen.robomimic:run"),
    "data collect": _Command("collect a Minari dataset or D4RL-layout file on a gymnasium task (random or a run)",
                             "qchunk.datagen.collect:DataCollectArgs", "qchunk.datagen.collect:run"),
    "data inspect": _Command("validate and summarise a dataset file or shard directory",
                             "qchunk.cli:DataInspectArgs", "qchunk.cli:_run_data_inspect"),
    "bench": _Command("benchmark suites (updates, evaluation, data, seeds, end-to-end; JSON in bench/results) or "
                      "one agent's update speed",
                      "qchunk.bench.update:BenchArgs", "qchunk.bench.update:main"),
    "eval": _Command("re-evaluate a checkpoint of a run (episodes.csv, summary.json, optional MP4 videos)",
                     "qchunk.replay:EvalArgs", "qchunk.replay:run_eval"),
    "analyze trajectories": _Command("plot the end-effector path of online steps (PNG + SVG), runs side by side",
                                     "qchunk.plotting.trajectories:TrajectoriesArgs",
                                     "qchunk.plotting.trajectories:run_trajectories"),
    "sweep": _Command("a grid of runs (agents x envs x seeds, or a --recipe) on Ray, resumable",
                      "qchunk.experiments.sweep:SweepArgs", "qchunk.experiments.sweep:main"),
    "plot": _Command("learning curves with 95% stratified-bootstrap CIs from run or sweep directories",
                     "qchunk.plotting.curves:PlotArgs", "qchunk.plotting.curves:main"),
    "report": _Command("a markdown + HTML report of a sweep: table-1 numbers with CIs, figures, metadata",
                       "qchunk.reporting.report:ReportArgs", "qchunk.reporting.report:main"),
}


def _interrupted() -> type[BaseException]:
    """The trainer's clean-stop exception, without importing JAX for commands that don't train."""
    mod = sys.modules.get("qchunk.training.loop")
    return mod.RunInterrupted if mod is not None else _NeverRaised


class _NeverRaised(Exception):
    pass


def _load(ref: str):
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def _usage() -> str:
    width = max(len(c) for c in COMMANDS)
    rows = "\n".join(f"  qchunk {name:<{width}}  {c.help}" for name, c in COMMANDS.items())
    return (f"usage: qchunk COMMAND [OPTIONS]   (qchunk COMMAND --help for its options)\n\ncommands:\n{rows}\n\n"
            "global flag: --debug shows full tracebacks")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `qchunk` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("QCHUNK_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from qchunk import __version__

        print(f"qchunk {__version__}")
        return 0
    name = " ".join(argv[:2]) if " ".join(argv[:2]) in COMMANDS else argv[0]
    if name not in COMMANDS:
        print(f"error: unknown command {' '.join(argv[:2])!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    cmd = COMMANDS[name]
    rest = argv[len(name.split()):]
    try:
        args_cls = _load(cmd.args)
        args = tyro.cli(args_cls, args=rest, prog=f"qchunk {name}", description=cmd.help)
        return int(_load(cmd.run)(args) or 0)
    except QchunkError as e:
        if debug:  # the traceback too; the exit status stays that of a user error
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return 2
    except _interrupted() as e:
        print(f"interrupted: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
