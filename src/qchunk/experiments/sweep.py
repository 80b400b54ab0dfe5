"""``qchunk sweep``: a grid of independent training runs on Ray, resumable, with a live status table.

Each run is one Ray task (``num_cpus=--cpus-per-run``, ``num_gpus=--gpus-per-run``, a fresh worker process
per run) that calls :func:`qchunk.training.train` on ``OUT/<env>/<agent>[-<variant>]/seed<k>``: a run
directory holding ``result.json`` with ``"finished": true`` is skipped before anything starts, one holding
``config.json`` without it continues from its newest checkpoint, and an empty one starts fresh. Before
any of that, a run directory holding a run made with other settings stops the sweep (exit 2; see
:func:`check_settings_on_disk`), and only then is ``OUT/sweep.json`` written. Ray is a private local instance on
this machine's cores by default, started even where a Ray cluster already runs (``RAY_ADDRESS`` or ``ray
start`` are not joined); ``--ray-address`` joins an existing cluster instead, with that cluster's CPUs
and GPUs (the run directories must then be on a filesystem every node sees).

Ctrl-C (or SIGTERM) asks every running run to stop: it finishes its current online episode, saves a
checkpoint and returns; queued runs are cancelled. A second Ctrl-C stops the runs at once (they continue
from their previous checkpoint). Running the same command again resumes the sweep.
"""

from __future__ import annotations

import _thread
import contextlib
import csv
import dataclasses
import datetime as _dt
import io
import json
import logging
import math
import os
import shutil
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import tyro

from qchunk.errors import QchunkError
from qchunk.experiments.grid import (
    RunSpec,
    Variant,
    expand_grid,
    format_value,
    parse_axes,
    parse_envs,
    parse_names,
    parse_seeds,
    parse_settings,
    variants_from_axes,
)
from qchunk.experiments.recipes import RECIPES, Recipe, get_recipe
from qchunk.fileio import atomic_write_json, atomic_write_text
from qchunk.signals import deliver_deferred
from qchunk.training.run_dir import CONFIG_FILE, EVAL_CSV, TRAIN_CSV, RunDir

#: Name of the marker a run's task writes into its run directory when it starts (host, pid, resources).
TASK_MARKER = "sweep-task.json"
#: Where a run that failed with an unexpected exception leaves its traceback.
ERROR_FILE = "sweep-error.txt"
#: The sweep's manifest in the sweep directory: the grid and how it was launched.
MANIFEST = "sweep.json"

_Repeatable = Annotated[tuple[tuple[str, ...], ...], tyro.conf.UseAppendAction]


@dataclass
class SweepArgs:
    """Run a grid of training runs (agents x envs x seeds) on Ray; finished runs are skipped, interrupted
    ones resume from their checkpoints."""

    agents: Annotated[_Repeatable, tyro.conf.arg(metavar="AGENT")] = ()
    """Agents, e.g. `qc,qc-fql,bfn` or `qc qc-fql`. With --recipe: replaces the recipe's agents."""
    envs: Annotated[_Repeatable, tyro.conf.arg(metavar="ENV")] = ()
    """OGBench single-task names; comma lists, shell brace patterns (`cube-double-play-singletask-task{1..5}-v0`)
    and bare domain names (`cube-double`: tasks 1..5) all work. With --recipe: replaces the recipe's envs."""
    seeds: Annotated[_Repeatable, tyro.conf.arg(metavar="SEEDS")] = ()
    """Seeds: `0-3`, `0..3`, `0,2` or `0 1 2` (default 0-3, the paper's 4 seeds; a recipe's own otherwise)."""
    recipe: str | None = None
    """A named study: paper-main, qam-main, successors-cpu, robomimic, chunk-size, ensemble-utd,
    data-collection, data-collection-offline (`--dry-run` shows one)."""
    set: Annotated[_Repeatable, tyro.conf.arg(metavar="KEY=VALUE")] = ()
    """Any TrainConfig field or agent field for every run, e.g. `--set preset=quick --set offline_steps=20000
    --set actor_hidden_dims=256,256`."""
    vary: Annotated[_Repeatable, tyro.conf.arg(metavar="KEY=V1,V2")] = ()
    """Add a grid axis over a setting, e.g. `--vary horizon=5,10` (tuple fields separate values with `;`)."""
    out: str | None = None
    """Sweep directory (default runs/sweeps/<recipe>, or runs/sweeps/sweep without a recipe)."""
    dataset_dir: str | None = None
    """Directory of the OGBench dataset files for every run (default `~/.ogbench/data`)."""
    ray_address: str | None = None
    """Join an existing Ray cluster: `auto` (the one `RAY_ADDRESS` or `ray start` on this machine names),
    `HOST:6379` or `ray://HOST:10001`; its own CPUs and GPUs are used. Default: start a private local Ray
    instance on this machine's cores, even where a cluster already runs."""
    cpus_per_run: float = 1.0
    """CPUs reserved per run (its evaluation uses that many worker processes, at least 1)."""
    gpus_per_run: float = 0.0
    """GPUs reserved per run; fractions share a GPU (0.25: four runs per GPU, each limited to its share of
    GPU memory). 0 keeps runs on the CPU."""
    local_cpus: int | None = None
    """CPUs of the private local Ray instance (default: all cores of this machine); not with --ray-address."""
    dry_run: bool = False
    """Print the grid (and each run's state) without running anything."""
    refresh: float = 5.0
    """Seconds between updates of the live status table."""


# ---------------------------------------------------------------------------------------------- plan
@dataclass
class SweepPlan:
    """The runs of a sweep and where they go."""

    name: str
    out: Path
    runs: list[RunSpec]
    recipe: Recipe | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def plan_sweep(args: SweepArgs) -> SweepPlan:
    """Turn the command-line arguments (and recipe) into the list of runs. Raises QchunkError on bad input."""
    recipe = get_recipe(args.recipe) if args.recipe else None
    agents = parse_names(args.agents) or (list(recipe.agents) if recipe else [])
    envs = parse_envs(args.envs) if args.envs else (list(recipe.envs) if recipe else [])
    seeds = parse_seeds(args.seeds) if args.seeds else (list(recipe.seeds) if recipe else [0, 1, 2, 3])
    if not agents:
        raise QchunkError("no agents: pass --agents (e.g. --agents qc,qc-fql) or a --recipe "
                          f"({', '.join(RECIPES)})")
    if not envs:
        raise QchunkError("no environments: pass --envs (e.g. --envs cube-double-play-singletask-task2-v0) or a "
                          "--recipe")
    settings = {**(recipe.settings if recipe else {}), **parse_settings(args.set)}
    if args.dataset_dir is not None:
        settings["dataset_dir"] = args.dataset_dir
    if isinstance(settings.get("dataset_dir"), str) and not settings["dataset_dir"].startswith("~"):
        settings["dataset_dir"] = os.path.abspath(settings["dataset_dir"])  # workers may have another cwd
    axes = parse_axes(args.vary)
    variants: Sequence[Variant] = recipe.variants if recipe else [Variant("")]
    if axes:
        extra = variants_from_axes(axes)
        variants = [Variant("-".join(p for p in (v.name, e.name) if p), {**v.settings, **e.settings})
                    for v in variants for e in extra]
    for value, flag in ((args.cpus_per_run, "--cpus-per-run"), (args.gpus_per_run, "--gpus-per-run")):
        if not (math.isfinite(value) and value >= 0):
            raise QchunkError(f"{flag} must be a number >= 0, got {value}")
    if args.cpus_per_run <= 0:
        raise QchunkError("--cpus-per-run must be > 0")
    if args.refresh <= 0:
        raise QchunkError("--refresh must be > 0")
    if args.local_cpus is not None and args.local_cpus < 1:
        raise QchunkError(f"--local-cpus must be >= 1, got {args.local_cpus}")
    name = recipe.name if recipe else "sweep"
    out = Path(args.out if args.out else Path("runs") / "sweeps" / name).expanduser().absolute()
    # extra_data templates name other sweeps' runs relative to this sweep's directory
    variants = [Variant(v.name, {**v.settings, "extra_data": os.path.normpath(out / v.settings["extra_data"])})
                if isinstance(v.settings.get("extra_data"), str) and not os.path.isabs(v.settings["extra_data"])
                else v for v in variants]
    if isinstance(settings.get("extra_data"), str) and not os.path.isabs(settings["extra_data"]):
        settings["extra_data"] = os.path.abspath(os.path.expanduser(settings["extra_data"]))
    runs = expand_grid(envs, agents, seeds, settings, variants)
    return SweepPlan(name, out, runs, recipe, settings)


def available_agents() -> tuple[str, ...] | None:
    """Agent names this qchunk can build (None if it cannot tell)."""
    try:
        from qchunk import agents
    except ImportError:  # pragma: no cover - broken install
        return None
    return tuple(getattr(agents, "AGENT_NAMES", ())) or None


def validate_runs(plan: SweepPlan, check_data: bool) -> None:
    """Check every run's configuration (and, with ``check_data``, that its dataset exists) before starting.

    Raises:
        QchunkError: naming the first bad run.
    """
    known = available_agents()
    if known is not None:
        missing = sorted({r.agent for r in plan.runs} - set(known))
        if missing:
            raise QchunkError(f"agent {missing[0]!r} is not available in this qchunk (agents: {', '.join(known)}); "
                              "drop it with --agents")
    seen: set[Any] = set()
    for spec in plan.runs:
        try:
            cfg = spec.config(resume=True, progress=False).resolved()
            key = (cfg.agent, cfg.preset, cfg.env, repr(sorted(cfg.agent_overrides().items())))
            if key not in seen:
                seen.add(key)
                _check_agent_settings(cfg)
            if check_data and "-play-" in cfg.env and (cfg.env.split("-play-")[0], cfg.dataset_dir) not in seen:
                seen.add((cfg.env.split("-play-")[0], cfg.dataset_dir))  # OGBench: one file set per domain
                from qchunk.data.ogbench_data import dataset_files

                dataset_files(cfg.task, cfg.dataset_dir)
        except QchunkError as e:
            raise QchunkError(f"{spec.rel_dir}: {e}") from None


def _check_agent_settings(cfg) -> None:
    from qchunk.agents import AGENT_NAMES, agent_config

    if cfg.agent in AGENT_NAMES:
        agent_config(cfg.agent, cfg.preset, cfg.task.domain.name, **cfg.agent_overrides())


# ------------------------------------------------------------------------------- settings on disk
def _show(value: Any) -> str:
    """A setting's value as ``--set`` would take it (``32,32``, ``none``, ``true``)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(_show(v) for v in value)
    return str(value)


def _flat_settings(train: dict[str, Any]) -> dict[str, Any]:
    """A ``TrainConfig.to_dict()`` with the agent overrides lifted to the top (as ``--set`` names them), in
    JSON form (tuples as lists) so that a config read back from disk compares equal to a planned one."""
    train = json.loads(json.dumps(train))
    flat = {k: v for k, v in train.items() if k != "overrides"}
    for k, v in (train.get("overrides") or {}).items():
        flat[f"overrides.{k}" if k in flat else k] = v
    return flat


def setting_differences(on_disk: dict[str, Any], planned: dict[str, Any], free: Iterable[str] = ()) -> list[str]:
    """``"offline_steps: 100 on disk, 300 now"`` for every setting in which two ``TrainConfig.to_dict()``
    differ, except the ``free`` fields (those that may change on resume)."""
    old, new = _flat_settings(on_disk), _flat_settings(planned)
    free = set(free)
    return [f"{k}: {_show(old.get(k))} on disk, {_show(new.get(k))} now" for k in sorted(set(old) | set(new))
            if k not in free and old.get(k) != new.get(k)]


def settings_conflicts(plan: SweepPlan) -> dict[Path, list[str]]:
    """The planned runs whose directory already holds a run made with other settings.

    Compares each run's resolved :class:`~qchunk.training.TrainConfig` with the ``"train"`` section of its
    ``config.json`` (fields in :data:`qchunk.training.RESUME_FREE_FIELDS` may differ). Reads files only.

    Returns:
        ``{run_dir: ["offline_steps: 100 on disk, 300 now", ...]}`` for each conflicting run (empty: none).

    Raises:
        QchunkError: a planned run directory is a file or holds a ``config.json`` that cannot be read.
    """
    from qchunk.training import RESUME_FREE_FIELDS, RunDir

    conflicts: dict[Path, list[str]] = {}
    for spec in plan.runs:
        run = RunDir(plan.out / spec.rel_dir)
        if run.path.exists() and not run.path.is_dir():
            raise QchunkError(f"{run.path} is a file where the sweep puts a run directory; move it away or choose "
                              "another --out")
        if not run.holds_run():
            continue
        try:
            on_disk = run.read().train.to_dict()
        except QchunkError:
            raise QchunkError(f"{run.file(CONFIG_FILE)} is unreadable, so the sweep cannot tell which settings "
                              "made that run; move that run directory away or choose another --out") from None
        planned = spec.config(resume=True, progress=False).resolved().to_dict()
        diff = setting_differences(on_disk, planned, RESUME_FREE_FIELDS)
        if diff:
            conflicts[run.path] = diff
    return conflicts


def check_settings_on_disk(plan: SweepPlan, conflicts: dict[Path, list[str]] | None = None, stream=None) -> None:
    """Refuse a sweep whose run directories hold runs made with other settings: one line per such run on
    ``stream`` (default stderr), then a one-line QchunkError. Nothing is written.

    ``conflicts``: the result of :func:`settings_conflicts` when already computed."""
    conflicts = settings_conflicts(plan) if conflicts is None else conflicts
    if not conflicts:
        return
    stream = stream or sys.stderr
    for path, diff in conflicts.items():
        print(f"{path}: made with other settings ({'; '.join(diff)})", file=stream)
    n = len(conflicts)
    raise QchunkError(f"{n} run{'s' if n > 1 else ''} in {plan.out} {'were' if n > 1 else 'was'} made with other "
                      "settings than this sweep's; sweep with the settings they were made with, or choose another "
                      "--out")


# --------------------------------------------------------------------------------------- run states
def run_state(run_dir: Path) -> str:
    """``finished`` (result.json says so), ``interrupted`` (config.json but not finished) or ``new``."""
    run = RunDir(run_dir)
    if run.is_finished():
        return "finished"
    return "interrupted" if run.holds_run() else "new"


def _last_csv_row(path: Path) -> dict[str, str] | None:
    """The header and last line of a CSV file (reads only its ends)."""
    try:
        with open(path, "rb") as f:
            header = f.readline().decode()
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 8192))
            tail = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return None
    if not header or not tail or tail[-1].strip() == header.strip():
        return None
    rows = list(csv.DictReader(io.StringIO(header + tail[-1] + "\n")))
    return rows[0] if rows else None


@dataclass
class RunStatus:
    """What the live table shows for one run."""

    spec: RunSpec
    run_dir: Path
    total_steps: int
    state: str = "queued"
    """queued, running, finished, skipped (finished before), interrupted, cancelled or failed."""
    message: str = ""
    step: int = 0
    phase: str = ""
    success: float | None = None
    offline_success: float | None = None
    submitted: float = 0.0
    """When its task was submitted (time.time())."""

    def refresh(self) -> None:
        """Read the run's progress from its eval.csv / train.csv."""
        ev = _last_csv_row(RunDir(self.run_dir).file(EVAL_CSV))
        if ev is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.success = float(ev["success"])
                self.phase = ev["phase"]
                self.step = max(self.step, int(ev["step"]))
        tr = _last_csv_row(RunDir(self.run_dir).file(TRAIN_CSV))
        if tr is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.step = max(self.step, int(tr["step"]))
                self.phase = self.phase if ev is not None and int(ev["step"]) >= int(tr["step"]) else tr["phase"]


def _short_env(env: str) -> str:
    """``cube-double-play-singletask-task2-v0`` -> ``cube-double t2``."""
    head, _, rest = env.partition("-play-singletask-")
    return f"{head} t{rest.removeprefix('task').removesuffix('-v0')}" if rest.startswith("task") else env


def _steps(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    if n >= 10_000:
        return f"{n / 1e3:.0f}K"
    return str(n)


def format_table(statuses: Sequence[RunStatus], max_rows: int | None = None) -> str:
    """The status table: one row per run (``max_rows``: keep running/failed rows first, then summarise)."""
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.state] = counts.get(s.state, 0) + 1
    order = ("running", "queued", "finished", "skipped", "interrupted", "cancelled", "failed")
    head = " | ".join(f"{counts[k]} {k}" for k in order if k in counts)
    rows = list(statuses)
    hidden = 0
    if max_rows is not None and len(rows) > max_rows:
        priority = {"running": 0, "failed": 1, "interrupted": 2, "finished": 3, "queued": 4, "cancelled": 5,
                    "skipped": 6}
        keep = sorted(rows, key=lambda s: priority.get(s.state, 9))[:max_rows]
        hidden = len(rows) - len(keep)
        rows = [s for s in rows if s in keep]
    table = [("run", "state", "progress", "phase", "success")]
    for s in rows:
        pct = "-" if s.success is None else f"{100 * s.success:.0f}%"
        if s.offline_success is not None and s.state in ("finished", "skipped"):
            pct = f"{100 * s.offline_success:.0f}% -> {pct}"
        prog = f"{_steps(s.step)}/{_steps(s.total_steps)}" if s.step else f"-/{_steps(s.total_steps)}"
        state = s.state + (f": {s.message}" if s.message and s.state in ("failed", "interrupted") else "")
        table.append((f"{_short_env(s.spec.env)} {s.spec.label} seed{s.spec.seed}", state, prog, s.phase or "-", pct))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    lines = [head]
    for r in table:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    if hidden:
        lines.append(f"... and {hidden} more runs")
    return "\n".join(lines)


class _Display:
    """Redraws the table in place on a terminal; elsewhere prints one line per state change."""

    def __init__(self, statuses: list[RunStatus], stream=None):
        self.statuses = statuses
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self._drawn = 0
        self._last_summary = time.monotonic()

    def event(self, status: RunStatus, text: str) -> None:
        if not self.tty:
            stamp = _dt.datetime.now().strftime("%H:%M:%S")
            print(f"[{stamp}] {_short_env(status.spec.env)} {status.spec.label} seed{status.spec.seed}: {text}",
                  file=self.stream, flush=True)

    def update(self, force: bool = False) -> None:
        if self.tty:
            height = shutil.get_terminal_size((120, 40)).lines
            text = format_table(self.statuses, max_rows=max(5, height - 4))
            clear = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
            self.stream.write(clear + text + "\n")
            self.stream.flush()
            self._drawn = text.count("\n") + 1
        elif force or time.monotonic() - self._last_summary > 60:
            self._last_summary = time.monotonic()
            print(format_table(self.statuses, max_rows=0).splitlines()[0], file=self.stream, flush=True)

    def final(self) -> None:
        if self.tty:
            self.update()
        else:
            print(format_table(self.statuses, max_rows=60), file=self.stream, flush=True)


# ----------------------------------------------------------------------------------------- the task
class _CancelRelay:
    """Delivers a Ray cancellation to :func:`train` however early it arrives.

    Ray cancels a running task by raising SIGINT's handler in it. Before ``train()`` has installed its own
    handler (imports, data loading, building the agent) a plain KeyboardInterrupt could be swallowed by a
    library, or land in the middle of an import. So, from the task's start, SIGINT only sets a flag here; a
    watcher thread hands one SIGINT to ``train()``'s handler as soon as it is in place, and ``train()`` then
    finishes the episode, saves a checkpoint and stops.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._done = threading.Event()
        self._old = None
        self._active = threading.current_thread() is threading.main_thread()

    def _handle(self, signum, frame) -> None:
        self.requested.set()

    def __enter__(self) -> _CancelRelay:
        if self._active:
            self._old = signal.signal(signal.SIGINT, self._handle)
            threading.Thread(target=self._watch, name="qchunk-cancel-relay", daemon=True).start()
        return self

    def _watch(self) -> None:
        while not self._done.is_set():
            if self.requested.is_set() and signal.getsignal(signal.SIGINT) not in (self._handle, None):
                # train()'s handler is installed: hand the request over. Not os.kill: Ray workers block SIGINT at
                # the OS level; interrupt_main calls the Python handler directly, as Ray's own cancel does.
                _thread.interrupt_main(signal.SIGINT)
                return
            self._done.wait(0.1)

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._active:
            signal.signal(signal.SIGINT, self._old)


def run_one(config: dict[str, Any], run_dir: str, env_vars: dict[str, str], cpus: float, gpus: float) -> dict:
    """Body of one run's Ray task: ``train(config, run_dir)``; never raises (the outcome is returned).

    Returns ``{"state": "finished" | "interrupted" | "failed", ...}``. A Ray cancellation arrives as SIGINT,
    which :func:`train` turns into "finish the episode, save a checkpoint, stop" (see :class:`_CancelRelay`).
    """
    for k, v in env_vars.items():
        os.environ.setdefault(k, v)  # before JAX is imported in this fresh worker
    path = Path(run_dir)
    with _CancelRelay() as relay:
        try:
            path.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path / TASK_MARKER, {
                "host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), "cpus": cpus,
                "gpus": gpus, "cpu_count": os.cpu_count(),
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")})
            from qchunk.training import RunInterrupted, train
            from qchunk.training.config import config_from_dict
        except OSError as e:
            return {"state": "failed", "message": f"cannot write to {path}: {e.strerror}"}
        if relay.requested.is_set():
            return {"state": "interrupted", "message": "stopped before training began"}
        # resume only a run that exists: --resume refuses a directory holding other files (the marker above)
        config = {**config, "resume": RunDir(path).holds_run()}
        try:
            result = train(config_from_dict(config), path)
        except RunInterrupted as e:
            return {"state": "interrupted", "message": "checkpoint saved" if e.saved else "resumes from its "
                    "last checkpoint"}
        except KeyboardInterrupt:  # without a main thread to relay through
            return {"state": "interrupted", "message": "stopped"}
        except QchunkError as e:
            return {"state": "failed", "message": str(e)}
        except Exception as e:
            with contextlib.suppress(OSError):
                atomic_write_text(path / ERROR_FILE, traceback.format_exc())
            return {"state": "failed", "message": f"{type(e).__name__}: {e} (traceback in {path / ERROR_FILE})"}
    return {"state": "finished", "final_success": result.final_success, "offline_success": result.offline_success}


def _worker_env(gpus_per_run: float) -> dict[str, str]:
    if gpus_per_run <= 0:
        return {"JAX_PLATFORMS": "cpu"}
    if gpus_per_run < 1:
        # JAX preallocates 75% of a GPU by default; runs sharing one GPU each take their share instead
        return {"XLA_PYTHON_CLIENT_MEM_FRACTION": f"{math.floor(90 * gpus_per_run) / 100:.2f}"}
    return {}


# ---------------------------------------------------------------------------------------------- ray
@contextlib.contextmanager
def ray_session(address: str | None, local_cpus: int | None) -> Iterator[Any]:
    """Join the cluster at ``address`` or start a private local Ray instance; shut down what this call started.

    Without ``address`` the instance is always a new one of this process (``address="local"``): a cluster
    that ``RAY_ADDRESS`` or ``ray start`` names is not joined (joining it with ``num_cpus`` is an error in
    Ray). Ray's notice about its token authentication is not shown (it concerns Ray, not the sweep).
    """
    import ray

    if ray.is_initialized():
        yield ray
        return
    quiet = dict(log_to_driver=False, logging_level=logging.WARNING)
    try:
        with _ray_token_notice_hidden():
            if address:
                _use_token_if_available()
                ray.init(address=address, **quiet)
            else:
                ray.init(address="local", num_cpus=local_cpus or os.cpu_count() or 1, include_dashboard=False,
                         object_store_memory=200 * 1024**2, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise QchunkError(f"could not start or reach {where}: {str(e).splitlines()[0] if str(e) else e}") from None
    if address:
        total = ray.cluster_resources()
        print(f"joined the Ray cluster at {address} ({total.get('CPU', 0):g} CPU, {total.get('GPU', 0):g} GPU); "
              "runs use its resources (without --ray-address a private local instance is started)",
              file=sys.stderr, flush=True)
    try:
        yield ray
    finally:
        ray.shutdown()


def _use_token_if_available() -> None:
    """Before joining a cluster: send this user's Ray token (``~/.ray/auth_token``, ``RAY_AUTH_TOKEN``) when
    ``RAY_AUTH_MODE`` is unset, as Ray itself does only for a cluster it finds without an address. A
    ``ray start`` head authenticates by token by default, and a cluster without authentication accepts one."""
    with contextlib.suppress(ImportError, AttributeError):  # a Ray without token authentication
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )

        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


@contextlib.contextmanager
def _ray_token_notice_hidden() -> Iterator[None]:
    """Hide the WARNING Ray's ``ray.init`` logs about token authentication (enabled by default for a new
    local instance since Ray 2.5x; errors still show)."""
    log = logging.getLogger("ray._private.authentication")
    old = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(old)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _check_resources(ray, cpus: float, gpus: float, local: bool) -> None:
    total = ray.cluster_resources()
    have_cpu, have_gpu = total.get("CPU", 0.0), total.get("GPU", 0.0)
    if cpus > have_cpu or gpus > have_gpu:
        msg = (f"a run needs {cpus:g} CPU and {gpus:g} GPU but the Ray cluster has {have_cpu:g} CPU and "
               f"{have_gpu:g} GPU")
        if local:
            raise QchunkError(msg + "; lower --cpus-per-run/--gpus-per-run or use --ray-address")
        print(f"warning: {msg}; runs wait until the cluster grows", file=sys.stderr)


def execute(plan: SweepPlan, *, ray_address: str | None = None, cpus_per_run: float = 1.0,
            gpus_per_run: float = 0.0, local_cpus: int | None = None, refresh: float = 5.0, stream=None) -> int:
    """Run the plan's unfinished runs on Ray and show their progress.

    Returns:
        0 when every run finished, 1 when some failed, 130 when interrupted (Ctrl-C / SIGTERM).
    """
    stream = stream or sys.stdout
    statuses = []
    for spec in plan.runs:
        cfg = spec.config(resume=True, progress=False).resolved()
        st = RunStatus(spec, plan.out / spec.rel_dir, cfg.offline_steps + cfg.online_steps)
        if run_state(st.run_dir) == "finished":
            st.state = "skipped"
            _fill_result(st)
        statuses.append(st)
    todo = [s for s in statuses if s.state != "skipped"]
    skipped = len(statuses) - len(todo)
    print(f"sweep {plan.name}: {len(statuses)} runs in {plan.out} ({skipped} already finished, {len(todo)} to run"
          + (f" of which {sum(run_state(s.run_dir) == 'interrupted' for s in todo)} resume" if todo else "") + ")",
          file=stream, flush=True)
    if not todo:
        print(format_table(statuses, max_rows=60), file=stream)
        return 0
    display = _Display(statuses, stream)
    eval_workers = max(1, int(cpus_per_run))
    env_vars = _worker_env(gpus_per_run)
    # ray.init installs its own SIGTERM handler (exit 1 with a stack dump): SIGTERM must stop the sweep as
    # Ctrl-C does, so ours goes in once Ray has started (until then the CLI defers signals: qchunk.signals)
    with ray_session(ray_address, local_cpus) as ray, _sigterm_as_interrupt():
        _check_resources(ray, cpus_per_run, gpus_per_run, local=ray_address is None)
        # max_calls=1: a fresh worker process per run (JAX releases its GPU memory only when the process exits);
        # max_retries: a crashed worker or lost node restarts the run, which resumes from its checkpoint
        task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_calls=1, max_retries=2,
                          retry_exceptions=False)(run_one)
        pending: dict[Any, RunStatus] = {}
        try:
            deliver_deferred()  # a signal the CLI held through the imports and Ray's start stops the sweep here
            for st in todo:
                st.submitted = time.time()
                extra = {"resume": True, "progress": False}
                if "eval_workers" not in st.spec.settings:
                    extra["eval_workers"] = eval_workers
                cfg = st.spec.config(**extra)
                pending[task.remote(cfg.to_dict(), str(st.run_dir), env_vars, cpus_per_run, gpus_per_run)] = st
            display.update(force=True)
            _wait_all(ray, pending, display, refresh)
        except KeyboardInterrupt:
            return _stop(ray, pending, display, stream)
    display.final()
    failed = [s for s in statuses if s.state == "failed"]
    for s in failed:
        print(f"failed: {s.run_dir}: {s.message}", file=sys.stderr)
    return 1 if failed else 0


def _fill_result(st: RunStatus) -> None:
    res = RunDir(st.run_dir).read_result()
    if res is not None:
        st.success, st.offline_success = res.get("final_success"), res.get("offline_success")
    st.refresh()


def _collect(ray, ref, st: RunStatus, display: _Display) -> None:
    try:
        out = ray.get(ref)
    except Exception as e:  # worker crashed, cancelled, node lost
        name = type(e).__name__
        if "Cancelled" in name:
            started = st.state == "running" or _started(st)
            st.state, st.message = ("interrupted", "stopped") if started else ("cancelled", "")
        else:
            st.state, st.message = "failed", f"{name}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
    else:
        st.state, st.message = out["state"], out.get("message", "")
        if st.state == "finished":
            st.offline_success = out.get("offline_success")
    st.refresh()
    if st.state == "finished":
        _fill_result(st)
        off = "-" if st.offline_success is None else f"{100 * st.offline_success:.0f}%"
        fin = "-" if st.success is None else f"{100 * st.success:.0f}%"
        display.event(st, f"finished (success {off} after offline, {fin} at the end)")
    else:
        display.event(st, st.state + (f": {st.message}" if st.message else ""))


def _started(st: RunStatus) -> bool:
    """Whether the run's task has started since it was submitted (its marker is newer)."""
    try:
        return (st.run_dir / TASK_MARKER).stat().st_mtime >= st.submitted - 1
    except OSError:
        return False


def _wait_all(ray, pending: dict, display: _Display, refresh: float) -> None:
    last = time.monotonic()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=min(refresh, 1.0))
        for ref in ready:
            _collect(ray, ref, pending.pop(ref), display)
        if ready or time.monotonic() - last >= refresh:
            last = time.monotonic()
            for st in pending.values():
                if st.state == "queued" and _started(st):
                    st.state = "running"
                    display.event(st, "started")
                if st.state == "running":
                    st.refresh()
            display.update()


def _stop(ray, pending: dict, display: _Display, stream) -> int:
    print(f"\ninterrupted: asking {len(pending)} runs to save a checkpoint and stop (Ctrl-C again to stop them "
          "at once)", file=sys.stderr, flush=True)
    for ref in pending:
        with contextlib.suppress(Exception):
            ray.cancel(ref)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                _collect(ray, ref, pending.pop(ref), display)
    except KeyboardInterrupt:
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        for st in pending.values():
            st.state, st.message = "interrupted", "stopped at once; resumes from its previous checkpoint"
    display.final()
    print("sweep interrupted; run the same command again to resume it", file=sys.stderr)
    return 130


# ----------------------------------------------------------------------------------------- manifest
def write_manifest(plan: SweepPlan, args: SweepArgs | None) -> None:
    """Record the grid in ``OUT/sweep.json``, atomically, so that it describes every run directory on disk.

    The run list is merged: entries of earlier invocations are kept (a sweep that adds runs), the planned
    runs are (re)described, and a run directory under ``OUT`` that neither lists (``sweep.json`` lost or
    damaged) is described from its ``config.json``. Call it only after :func:`check_settings_on_disk`.
    """
    path = plan.out / MANIFEST
    old: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        old = json.loads(path.read_text())
    old = old if isinstance(old, dict) else {}
    runs = {r["dir"]: r for r in old.get("runs", []) if isinstance(r, dict) and "dir" in r}
    runs.update({str(r.rel_dir): r.to_dict() for r in plan.runs})
    for rel, entry in _runs_on_disk(plan.out).items():
        runs.setdefault(rel, entry)
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    atomic_write_json(path, {
        "name": plan.name, "recipe": plan.recipe.name if plan.recipe else None,
        "created": old.get("created", now), "updated": now,
        "args": dataclasses.asdict(args) if args is not None else old.get("args"),
        "runs": list(runs.values())})


def _runs_on_disk(out: Path) -> dict[str, dict[str, Any]]:
    """Manifest entries for the run directories under ``out``, read from their ``config.json``."""
    from qchunk.training import RESUME_FREE_FIELDS, find_runs
    from qchunk.training.config import TrainConfig

    entries = {}
    for run in find_runs(out):
        try:
            cfg = run.read().train
        except QchunkError:
            continue
        rel = run.path.relative_to(out)
        have = _flat_settings(cfg.to_dict())
        default = _flat_settings(TrainConfig(agent=cfg.agent, env=cfg.env, seed=cfg.seed).to_dict())
        agent, label = have["agent"], rel.parent.name
        entries[str(rel)] = {
            "dir": str(rel), "env": have["env"], "agent": agent, "seed": have["seed"],
            "variant": label.removeprefix(f"{agent}-") if label != agent else "",
            "settings": {k: v for k, v in have.items()
                         if k not in RESUME_FREE_FIELDS | {"agent", "env", "seed"} and v != default.get(k)}}
    return entries


def format_plan(plan: SweepPlan, conflicts: Iterable[Path] = ()) -> str:
    """The grid as text: one line per env and agent/variant with its seeds and their states (``conflicts``:
    run directories holding runs made with other settings, shown as such)."""
    conflicts = set(conflicts)
    lines = [f"sweep {plan.name}: {len(plan.runs)} runs into {plan.out}"]
    if plan.recipe:
        lines.append(f"recipe {plan.recipe.name}: {plan.recipe.description}")
        if plan.recipe.notes:
            lines.append(f"notes: {plan.recipe.notes}")
        if plan.recipe.blocked:
            lines.append(f"NOT RUNNABLE YET: needs {plan.recipe.blocked}")
    if plan.settings:
        lines.append("settings: " + " ".join(f"{k}={format_value(v)}" for k, v in plan.settings.items()))
    groups: dict[tuple[str, str], list[RunSpec]] = {}
    for r in plan.runs:
        groups.setdefault((r.env, r.label), []).append(r)
    w_env = max(len(e) for e, _ in groups)
    w_lab = max(len(lab) for _, lab in groups)
    for (env, label), runs in groups.items():
        states = ["other settings" if plan.out / r.rel_dir in conflicts else run_state(plan.out / r.rel_dir)
                  for r in runs]
        summary = ", ".join(f"{states.count(s)} {s}" for s in ("new", "interrupted", "finished", "other settings")
                            if s in states)
        variant = runs[0].settings
        extra = " ".join(f"{k}={format_value(variant[k])}" for k in variant if k not in plan.settings)
        lines.append(f"  {env:<{w_env}}  {label:<{w_lab}}  seeds {','.join(str(r.seed) for r in runs)}  "
                     f"({summary}){'  ' + extra if extra else ''}")
    return "\n".join(lines)


def main(args: SweepArgs) -> int:
    """``qchunk sweep``: plan, validate, then run (or print with ``--dry-run``)."""
    if args.ray_address is not None and args.local_cpus is not None:
        raise QchunkError("--local-cpus sizes the private local Ray instance; drop it with --ray-address "
                          "(the cluster's own CPUs are used)")
    plan = plan_sweep(args)
    if args.dry_run:
        if not (plan.recipe is not None and plan.recipe.blocked):
            validate_runs(plan, check_data=False)  # names and settings as the real sweep checks them
        conflicts = settings_conflicts(plan)
        print(format_plan(plan, conflicts))
        check_settings_on_disk(plan, conflicts)
        return 0
    if plan.recipe is not None and plan.recipe.blocked:
        raise QchunkError(f"recipe {plan.recipe.name} needs {plan.recipe.blocked}; --dry-run shows its grid")
    validate_runs(plan, check_data=args.ray_address is None)
    check_settings_on_disk(plan)  # before anything is written: sweep.json must keep describing the runs
    plan.out.mkdir(parents=True, exist_ok=True)
    write_manifest(plan, args)
    return execute(plan, ray_address=args.ray_address, cpus_per_run=args.cpus_per_run,
                   gpus_per_run=args.gpus_per_run, local_cpus=args.local_cpus, refresh=args.refresh)
