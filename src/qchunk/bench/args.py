"""``qchunk bench``'s command-line arguments (the agent names and their bench domains come from the agent
registry, :mod:`qchunk.agents.registry`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from qchunk.agents.registry import agent_names, agent_specs

SuiteName = Literal["quick", "all", "update", "eval", "data", "e2e", "seeds", "loop"]


def _domain_help() -> str:
    """The ``--domain`` help, naming the agents registered with a bench domain of their own."""
    special: dict[str, list[str]] = {}
    for spec in agent_specs():
        if spec.bench_domain is not None:
            special.setdefault(spec.bench_domain, []).append(spec.name)
    notes = "".join(f" {' and '.join(names)} need {domain}, where no per-domain value switches part of them off "
                    "(the update suite measures them there)." for domain, names in special.items())
    return ("Domain whose per-domain settings apply (scene, puzzle-3x3, cube-double, cube-triple, cube-quadruple, "
            f"robomimic, the QAM domains).{notes}")


@dataclass
class BenchArgs:
    """Benchmark suites (default: the quick set, JSON under bench/results/), or one agent's update and acting
    speed on a synthetic batch (with --agent / --preset / --json)."""

    agent: Annotated[str | None, tyro.conf.arg(help=(
        f"Agent ({', '.join(agent_names())}). Alone: benchmark this one agent (default qc); with --suite: only "
        "this agent in the update, eval, seeds, loop and e2e suites."))] = None
    """Agent (a registered name; the help lists them)."""
    preset: Literal["paper", "quick", "qam"] | None = None
    """Network/optimisation preset: paper (4x512), quick (2x256) or qam (the QAM protocol, 4x512, for the agents
    it runs). Alone: benchmark one agent (default paper); with --suite update: only this preset."""
    domain: Annotated[str, tyro.conf.arg(help=_domain_help())] = "cube-double"
    """Domain whose per-domain settings apply (the help says which agents need another one)."""
    steps: int = 20
    """Timed updates (after compilation) of the single-agent benchmark."""
    json: Path | None = None
    """Write the single-agent results as JSON to this path (atomically)."""
    observation_dim: int = 37
    """State width of the synthetic batch (cube-double: 37)."""
    action_dim: int = 5
    """Action width of the synthetic batch (OGBench arms: 5)."""
    batch_size: int | None = None
    """Batch size; default: the preset's (256)."""
    act_repeats: int = 20
    """Timed ``sample_actions`` calls for the acting latency."""
    scan: bool = True
    """Also time the ``steps`` updates as one ``update_many`` (lax.scan) call."""
    seed: int = 0
    """Seed of the agents, the synthetic data and the evaluation episodes."""
    suite: SuiteName | None = None
    """Run benchmark suites: quick (the default without --agent/--preset/--json: update at the quick
    preset, eval, data, seeds, at quick sizes; < 5 min on 2 CPU cores), all (every suite at full size,
    e2e included), or one of update, eval, data, seeds, loop, e2e (full size unless --quick)."""
    quick: bool = False
    """Quick sizes for the suite chosen with --suite (the quick set always uses them)."""
    out_dir: Path = Path("bench/results")
    """Where the suites write <suite>.json."""
    dataset_dir: Path = Path("data/bench")
    """Cache of the locally generated OGBench datasets the data and e2e suites use (made when absent)."""
    workers: int | None = None
    """Processes for the parallel evaluation and dataset generation (default: all cores)."""
