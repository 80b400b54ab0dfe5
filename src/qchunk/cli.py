"""The `qchunk` command line: a thin layer over the library; the only place that reads `sys.argv`.

Each command is a typed dataclass parsed by tyro (`qchunk COMMAND --help` lists every option). Errors
the user can fix, option-parsing errors included, print one line (`error: ...`) and exit with status 2;
`--debug` adds the traceback. So does a fault of the machine (an ``OSError``: a full disk, say). SIGINT and
SIGTERM stop a command as Ctrl-C does, exit 130 (see :mod:`qchunk.signals`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib
import os
import signal
import sys
import threading
import traceback
import typing
from dataclasses import dataclass
from typing import Annotated, Any

import tyro

from qchunk.errors import QchunkError, did_you_mean
from qchunk.signals import defer_signals, deliver_deferred


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
    overwrite: bool = False
    """Replace existing dataset files in the output directory (refused by default: they may be official
    downloads)."""


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
                                  workers=args.workers, episode_steps=args.episode_steps, overwrite=args.overwrite)
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
    stops_at_safe_points: bool = False
    """The command reads SIGINT/SIGTERM at safe points itself (:mod:`qchunk.signals`); others get them as
    KeyboardInterrupt once their module is imported."""


COMMANDS: dict[str, _Command] = {
    "train": _Command("offline-to-online training with evaluation, logging, checkpoints and resume",
                      "qchunk.training.cli_args:TrainArgs", "qchunk.training.cli_args:run_train", True),
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
                      "qchunk.bench.args:BenchArgs", "qchunk.bench.command:main"),
    "eval": _Command("re-evaluate a checkpoint of a run (episodes.csv, summary.json, optional MP4 videos)",
                     "qchunk.evaluation.checkpoint_eval:EvalArgs", "qchunk.evaluation.checkpoint_eval:run_eval"),
    "analyze trajectories": _Command("plot the end-effector path of online steps (PNG + SVG), runs side by side",
                                     "qchunk.plotting.trajectories:TrajectoriesArgs",
                                     "qchunk.plotting.trajectories:run_trajectories"),
    "sweep": _Command("a grid of runs (agents x envs x seeds, or a --recipe) on Ray, resumable",
                      "qchunk.experiments.sweep:SweepArgs", "qchunk.experiments.sweep:main", True),
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


def _option_names(cls: type, prefix: str = "") -> dict[str, bool]:
    """The ``--flags`` of tyro dataclass ``cls`` (nested dataclasses included), each mapped to whether it is a
    bare on/off flag (``--x`` / ``--no-x``); only for "did you mean" hints."""
    names: dict[str, bool] = {}
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        tp, meta = hints[f.name], ()
        if typing.get_origin(tp) is Annotated:
            tp, *meta = typing.get_args(tp)
        if tyro.conf.Positional in meta:
            continue
        if dataclasses.is_dataclass(tp):
            names |= _option_names(tp, prefix if tyro.conf.OmitArgPrefixes in meta else f"{prefix}{f.name}.")
            continue
        flag = "--" + f"{prefix}{f.name}".replace("_", "-")
        is_flag = tp is bool or (typing.get_origin(tp) in (typing.Union, type(bool | None))
                                 and set(typing.get_args(tp)) == {bool, type(None)})
        names[flag] = is_flag
        if is_flag:
            names["--no-" + flag[2:]] = True
    return names


def _count_options(cls: type, prefix: str = "") -> dict[str, bool]:
    """The ``--flags`` of ``cls`` that take integers, each mapped to whether it takes several (``tuple[int, ...]``)."""
    out: dict[str, bool] = {}
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        tp, meta = hints[f.name], ()
        if typing.get_origin(tp) is Annotated:
            tp, *meta = typing.get_args(tp)
        if dataclasses.is_dataclass(tp):
            out |= _count_options(tp, prefix if tyro.conf.OmitArgPrefixes in meta else f"{prefix}{f.name}.")
            continue
        args = set(typing.get_args(tp)) - {type(None)}
        flag = "--" + f"{prefix}{f.name}".replace("_", "-")
        if tp is int or args == {int}:
            out[flag] = False
        elif any(typing.get_origin(t) is tuple and typing.get_args(t)[:1] == (int,) for t in (tp, *args)):
            out[flag] = True
    return out


def _with_counts(cls: type, argv: list[str]) -> list[str]:
    """``argv`` with every integer option's value in the one grammar of counts (``1e6``, ``1_000_000``:
    :func:`qchunk.grammar.parse_count`) written as plain digits for tyro; other values are left to tyro."""
    from qchunk.grammar import looks_like_count, parse_count

    flags = _count_options(cls)
    out: list[str] = []
    current, taken = None, 0  # the integer option whose values follow, and how many it has taken
    for token in argv:
        name, eq, value = token.partition("=")
        if token.startswith("--"):
            current, taken = (name if name in flags and not eq else None), 0
            if name in flags and eq and looks_like_count(value):
                token = f"{name}={parse_count(value, name)}"
        elif current is not None and (taken == 0 or flags[current]) and looks_like_count(token):
            token, taken = str(parse_count(token, current)), taken + 1
        else:
            current = None
        out.append(token)
    return out


_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "True or False"}


def _kind(tp: Any) -> str:
    """What a value of type ``tp`` is, in words: ``an integer``, ``integers``, ... (None left out of unions)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        return "a list of " + {int: "integers", float: "numbers"}.get(args[0] if args else None, "values")
    if origin in (typing.Union, type(int | None)):
        return " or ".join(_kind(a) for a in args if a is not type(None))
    return _KINDS.get(tp, getattr(tp, "__name__", str(tp)))


def _expected(argument: Any) -> str:
    return _kind(argument.field.type_stripped)


def _given(argv: list[str], flags: tuple[str, ...]) -> str | None:
    """The value the user wrote after the last of ``flags`` in ``argv`` (``--x V`` or ``--x=V``), if any."""
    for i in range(len(argv) - 1, -1, -1):
        token = argv[i]
        if token in flags and i + 1 < len(argv):
            return argv[i + 1]
        if "=" in token and token.split("=", 1)[0] in flags:
            return token.split("=", 1)[1]
    return None


def _unrecognized(tokens: list[str], argv: list[str], cls: type, prog: str) -> str:
    options = _option_names(cls)
    for token in tokens:
        name, has_value, _ = token.partition("=")
        if name in options and has_value:
            return f"{name} takes no value (got {token!r}); write {name} on its own"
        if token.startswith("-"):
            close = difflib.get_close_matches(token.lstrip("-"), [o[2:] for o in options], n=1)
            hint = f" (did you mean '--{close[0]}'?)" if close else ""
            return f"unknown option {token}{hint}; see {prog} --help"
    token = tokens[0]
    before = argv[argv.index(token) - 1] if token in argv and argv.index(token) > 0 else ""
    before = next((a.split("=", 1)[0] for a in argv if a.startswith("--") and a.endswith(f"={token}")), before)
    if options.get(before):
        plain = before.removeprefix("--no-").removeprefix("--")
        return f"{before} is an on/off flag and takes no value (got {token!r}): write --{plain} or --no-{plain}"
    return f"unexpected argument {token!r}; see {prog} --help"


def _describe(event: Any, argv: list[str], cls: type, prog: str) -> str:
    """One line for one of tyro's parse-failure events (``tyro._errors``): the option and what was wrong."""
    from tyro import _errors as te

    argument = getattr(event, "argument", None)
    flag = None
    if argument is not None:
        flag = argument.lowered.name_or_flags[0] if not argument.is_positional() else argument.lowered.metavar
    if isinstance(event, te.InvalidChoice):
        return (f"{flag}: {event.value!r} is not a choice{did_you_mean(event.value, event.choices)}; choose one of: "
                f"{', '.join(c for c in event.choices if c != 'None')}")
    if isinstance(event, te.BadValue):
        if event.offending_value is None:
            return f"{flag} needs a value ({_expected(argument)})"
        return f"{flag} cannot be set on the command line (got {event.offending_value!r})"
    if isinstance(event, te.InstantiationFailure) and argument is not None:
        value = _given(argv, tuple(argument.lowered.name_or_flags))
        if value is None:
            return f"{flag}: {event.message.splitlines()[-1].lstrip('- ')}"
        return f"{flag}: {value!r} is not {_expected(argument)}"
    if isinstance(event, te.UnrecognizedArgs):
        return _unrecognized(event.tokens, argv, cls, prog)
    if isinstance(event, te.MissingArgs):
        missing = [a.arg.lowered.metavar if a.arg.is_positional() else a.arg.lowered.name_or_flags[0]
                   for a in event.missing_arguments]
        return f"{prog} needs {', '.join(missing)}; see {prog} --help"
    if isinstance(event, te.MutexConflict):
        return f"{event.first_token} and {event.second_token} conflict: give one"
    return f"cannot parse the options of {prog} ({type(event).__name__}); see {prog} --help"


def parse_args(cls: type, argv: list[str], prog: str, description: str | None = None) -> Any:
    """``tyro.cli(cls, args=argv)`` with every parse failure raised as a one-line :class:`QchunkError` (the option
    and what was wrong, a "did you mean" where one is close) instead of tyro's boxed message; ``--help``
    prints the full help and exits 0 as usual."""
    if "-h" in argv or "--help" in argv:
        return tyro.cli(cls, args=argv, prog=prog, description=description)
    try:
        from tyro import _errors as te  # private hook of the pinned tyro (requirements/constraints.txt)
    except ImportError:  # pragma: no cover - another tyro: its own messages, silenced to one line below
        te = None

    def hook(event: Any) -> None:
        raise QchunkError(_describe(event, argv, cls, prog))

    argv = _with_counts(cls, argv)
    try:
        with te.on_parse_error(hook) if te is not None else contextlib.nullcontext():
            return tyro.cli(cls, args=argv, prog=prog, description=description, console_outputs=False)
    except SystemExit as e:
        if e.code in (0, None):
            raise
        raise QchunkError(f"cannot parse the options of {prog}; see {prog} --help") from None


def _unknown_command(words: list[str]) -> str:
    groups = {c.split()[0]: [n for n in COMMANDS if n.startswith(c.split()[0] + " ")] for c in COMMANDS if " " in c}
    if words[0] in groups:
        subs = groups[words[0]]
        if len(words) < 2 or words[1].startswith("-"):
            return f"qchunk {words[0]} needs a subcommand: {', '.join(subs)}"
        return (f"unknown command {' '.join(words[:2])!r}{did_you_mean(' '.join(words[:2]), subs)}; "
                f"choose one of: {', '.join(subs)}")
    return (f"unknown command {words[0]!r}{did_you_mean(words[0], [*COMMANDS, *groups])}; commands: "
            f"{', '.join(COMMANDS)} (qchunk --help describes them)")


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
        print(f"error: {_unknown_command(argv)}", file=sys.stderr)
        return 2
    cmd = COMMANDS[name]
    rest = argv[len(name.split()):]
    old_handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    defer_signals()  # a signal raised inside the import of a C extension can crash the process
    try:
        args_cls = _load(cmd.args)
        args = parse_args(args_cls, rest, prog=f"qchunk {name}", description=cmd.help)
        run = _load(cmd.run)
        if not cmd.stops_at_safe_points:
            deliver_deferred()
        return int(run(args) or 0)
    except QchunkError as e:
        if debug:  # the traceback too; the exit status stays that of a user error
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the machine, not the code: a full disk, a lost mount, a permission
        if debug:
            traceback.print_exc()
        print(f"error: {e.filename}: {e.strerror or e}" if e.filename else f"error: {e.strerror or e}",
              file=sys.stderr)
        return 2
    except _interrupted() as e:
        _ignore_signals()
        print(f"interrupted: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        _ignore_signals()
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)


def _ignore_signals() -> None:
    """The command has stopped and says so: further SIGINT/SIGTERM must not cut that line into a traceback."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
