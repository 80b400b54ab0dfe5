"""Named sweeps that reproduce the paper's studies (``qchunk sweep --recipe NAME``).

Each recipe is a grid (agents x envs x variants x seeds) plus fixed settings. ``--agents``, ``--envs``,
``--seeds`` and ``--set`` given with a recipe replace the recipe's own values, so
``qchunk sweep --recipe paper-main --envs cube-double --seeds 0`` runs a slice of table 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qchunk.agents.registry import agent_spec, agent_specs
from qchunk.errors import QchunkError, did_you_mean
from qchunk.experiments.grid import Variant
from qchunk.tasks import DOMAINS

#: The paper's OGBench domains, in the order of its table 1.
PAPER_DOMAINS = ("puzzle-3x3", "scene", "cube-double", "cube-triple", "cube-quadruple")
#: The QAM paper's ten OGBench domains (Li & Levine 2026, its reproduction script): the five above, puzzle-4x4
#: and the four navigate mazes.
QAM_DOMAINS = (*PAPER_DOMAINS, "puzzle-4x4", "antmaze-large", "antmaze-giant", "humanoidmaze-medium",
               "humanoidmaze-large")


def qam_main_agents() -> tuple[str, ...]:
    """The QAM paper's main methods that qchunk has: every registered agent with a QAM release curve on the
    manipulation domains (FQL and RLPD are there ``qc-fql`` and ``rlpd-ac``, on chunks; ``--preset qam`` runs
    every method on single actions on the mazes, where they are FQL's and RLPD's h=1 settings)."""
    return tuple(s.name for s in agent_specs() if s.qam_curve is not None and "play" in s.qam_datasets)


#: :func:`qam_main_agents` when the recipes were built (at import).
QAM_MAIN_AGENTS = qam_main_agents()
_QAM_MAIN_METHODS = ", ".join(agent_spec(name).qam_curve or name for name in QAM_MAIN_AGENTS)


def tasks(domain: str, numbers: tuple[int, ...] = (1, 2, 3, 4, 5)) -> tuple[str, ...]:
    """Single-task names of ``domain``: ``tasks("cube-triple", (3,))`` is
    ``("cube-triple-play-singletask-task3-v0",)`` (``navigate`` for the mazes)."""
    return tuple(DOMAINS[domain].task_name(t) for t in numbers)


@dataclass(frozen=True)
class Recipe:
    """A named grid of runs."""

    name: str
    description: str
    """One line for ``--help``-style listings."""
    agents: tuple[str, ...]
    envs: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Fixed settings of every run (``--set`` overrides them)."""
    variants: tuple[Variant, ...] = (Variant(""),)
    """Named setting combinations crossed with the agents (one plain variant by default)."""
    notes: str = ""
    """What the recipe reproduces and how to read it (printed by ``--dry-run``)."""
    blocked: str | None = None
    """Set when the recipe needs a trainer feature qchunk lacks: the sweep refuses to run it (``--dry-run``
    still shows the grid) and says why."""


_CHUNK_SIZES = (1, 5, 10, 25, 50)
_ENSEMBLE_UTD = tuple((k, u) for k in (2, 10) for u in (1, 5))

RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe(
        "paper-main",
        "table 1: 8 methods on the 5 OGBench domains x 5 tasks, 4 seeds, 1M offline + 1M online steps",
        agents=("qc", "qc-fql", "bfn", "bfn-n", "fql", "fql-n", "rlpd", "rlpd-ac"),
        envs=tuple(env for d in PAPER_DOMAINS for env in tasks(d)),
        settings={"preset": "paper"},
        notes="800 runs (8 agents x 25 tasks x 4 seeds). rlpd and rlpd-ac are online-only (0 offline steps; the "
              "plots start their curves where the offline phase ends). cube-quadruple trains on the sharded "
              "100M dataset: point --dataset-dir at the directory holding its shards. Each run took the authors "
              "4-7 h on one RTX A5000: on a cluster use --gpus-per-run 0.25-0.5."),
    Recipe(
        "qam-main",
        f"the QAM paper's main grid: {_QAM_MAIN_METHODS} on its 10 OGBench domains x 5 tasks, "
        "12 seeds, 1M offline + 0.5M online steps (--preset qam)",
        agents=QAM_MAIN_AGENTS,
        envs=tuple(env for d in QAM_DOMAINS for env in tasks(d)),
        seeds=tuple(range(12)),
        settings={"preset": "qam"},
        notes=f"{len(QAM_MAIN_AGENTS) * 50 * 12} runs ({len(QAM_MAIN_AGENTS)} agents x 50 tasks x 12 seeds, the "
              "release's seed count), each with the per-domain "
              "values of the QAM reproduction script (docs/successors.md). FQL and RLPD are qc-fql and rlpd-ac: "
              "chunks of 5 on the manipulation domains, single actions on the navigate mazes (the protocol's "
              "h=1 there; `qchunk plot --reference qam` overlays the release's FQL/RLPD on the manipulation "
              "domains only, where the names match). rlpd-ac is online-only (0 offline steps, 0.5M online). "
              "cube-quadruple and puzzle-4x4 read their 100M shards from <dataset-dir>/<domain>-play-100m-v0; "
              "the navigate datasets need OGBench's official files in --dataset-dir. The release's methods "
              "without a registered qchunk agent (qchunk.agents.registry) are not run."),
    Recipe(
        "successors-cpu",
        "CPU-scale learning evidence for the successors: QAM, QAM-E, FEdit and DSRL next to QC-FQL on the main "
        "job's task and data (puzzle-3x3 task1, dense reward, quick preset, 20K offline + 20K online), 2 seeds",
        agents=("qam", "qam-e", "fedit", "dsrl", "qc-fql"),
        envs=tasks("puzzle-3x3", (1,)),
        seeds=(0, 1),
        settings={"preset": "quick", "sparse": False, "offline_steps": 20_000, "online_steps": 20_000,
                  "eval_every": 10_000, "eval_episodes": 50},
        notes="10 runs, the README main job's budget for each: point --dataset-dir at the main job's "
              "data/quickstart (100 locally generated puzzle-3x3-play episodes). The successors update about "
              "10x slower than qc-fql at the quick preset (bench/results/update.json): on 2 CPU cores a 2-seed "
              "QAM run (vmapped) trained at 4.9 steps/s, so the grid would take about 9 h there (estimated from "
              "the measured rates). "
              "Plot with `qchunk plot DIR`."),
    Recipe(
        "robomimic",
        "the robomimic tasks (lift, can, square; multi-human, low-dim): 8 methods, 5 seeds, 1M offline + 1M online",
        agents=("qc", "qc-fql", "bfn", "bfn-n", "fql", "fql-n", "rlpd", "rlpd-ac"),
        envs=("lift-mh-low_dim", "can-mh-low_dim", "square-mh-low_dim"),
        seeds=(0, 1, 2, 3, 4),
        settings={"preset": "paper"},
        notes="120 runs (8 agents x 3 tasks x 5 seeds, the paper's seed count for robomimic). --dataset-dir is the "
              "robomimic data directory holding <task>/mh/low_dim_v15.hdf5."),
    Recipe(
        "chunk-size",
        "QC-FQL with chunk size h in {1, 5, 10, 25, 50} on cube-triple (h=1 is FQL's setting with QC-FQL's alpha)",
        agents=("qc-fql",),
        envs=tasks("cube-triple"),
        settings={"preset": "paper"},
        variants=tuple(Variant(f"h{h}", {"horizon": h}) for h in _CHUNK_SIZES),
        notes="100 runs (5 chunk sizes x 5 tasks x 4 seeds). The paper finds larger h helps up to 10-25 and "
              "h=50 fails. Plot with `qchunk plot DIR` (curves are labelled by h)."),
    Recipe(
        "ensemble-utd",
        "critic ensemble size K in {2, 10} x update-to-data ratio UTD in {1, 5}, QC vs BFN on cube-triple task3",
        agents=("qc", "bfn"),
        envs=tasks("cube-triple", (3,)),
        settings={"preset": "paper"},
        variants=tuple(Variant(f"K{k}-UTD{u}", {"num_critics": k, "utd": u}) for k, u in _ENSEMBLE_UTD),
        notes="32 runs (2 agents x 4 settings x 4 seeds). UTD applies online (gradient updates per environment "
              "step); K is the critic ensemble size (mean-aggregated, as the paper)."),
    Recipe(
        "data-collection",
        "stage 1 of the data-quality study: pretrain QC and FQL 1M steps on cube-triple, collect 1M online steps "
        "with each",
        agents=("qc", "fql"),
        envs=tasks("cube-triple", (3,)),
        settings={"preset": "paper"},
        notes="8 runs. Each run's final checkpoint holds the 1M transitions it collected (the newest rows of its "
              "replay buffer). Stage 2 (`--recipe data-collection-offline`) "
              "retrains offline on the offline data plus each collector's transitions and compares."),
    Recipe(
        "data-collection-offline",
        "stage 2 of the data-quality study: train QC and FQL offline on the offline data + the transitions "
        "collected by QC or by FQL in stage 1",
        agents=("qc", "fql"),
        envs=tasks("cube-triple", (3,)),
        settings={"preset": "paper", "offline_steps": 1_000_000, "online_steps": 0},
        variants=(Variant("data-qc", {"extra_data": "../data-collection/{env}/qc/seed{seed}"}),
                  Variant("data-fql", {"extra_data": "../data-collection/{env}/fql/seed{seed}"})),
        notes="16 runs (2 learners x 2 collectors x 4 seeds); run `--recipe data-collection` first, with --out "
              "DIR/data-collection, then this one with --out DIR/data-collection-offline: each run reads the "
              "offline dataset plus the transitions the stage-1 run of the same env and seed collected "
              "(TrainConfig.extra_data; relative paths are relative to this sweep's --out)."),
)}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; one-line QchunkError naming the recipes otherwise."""
    if name not in RECIPES:
        raise QchunkError(f"unknown recipe {name!r}{did_you_mean(name, RECIPES)}; recipes: {', '.join(RECIPES)}")
    return RECIPES[name]
