"""What a sweep runs: ``qchunk sweep``'s arguments, the planned grid of runs, its checks before anything starts
and its text form for ``--dry-run``."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import tyro

from qchunk.errors import QchunkError, did_you_mean
from qchunk.experiments.grid import (
    RunSpec,
    Variant,
    expand_grid,
    format_value,
    parse_axes,
    parse_envs,
    parse_settings,
    variants_from_axes,
)
from qchunk.experiments.recipes import RECIPES, Recipe, get_recipe
from qchunk.experiments.status_table import run_state
from qchunk.grammar import parse_names, parse_seeds

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
            raise QchunkError(f"--agents: unknown agent {missing[0]!r}{did_you_mean(missing[0], known)}; choose "
                              f"from: {', '.join(known)}")
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

