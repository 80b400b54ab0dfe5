"""The ``seeds`` suite: many seeds' updates in one jitted call, as the multi-seed training loop makes them.

S agents built with seeds ``seed .. seed+S-1`` are stacked into one pytree (:func:`stack_agents`) and
updated together by the training loop's kernel (:func:`seed_kernel`: ``jax.vmap`` or ``lax.map`` over the
seeds, S = 1 the plain update), each on its own synthetic batch. Reported per S and mode: ``updates_per_s``
(all seeds together: S over the median step time), ``ratio_to_1`` (that over the S=1 value, None when S=1 is
not measured: S means perfect scaling, 1 means no gain over running the seeds one after another) and
``compile_s``; ``auto_mode`` is the mode ``--seed-axis auto`` picks on this backend and ``auto_min_ratio_to_1``
its worst ratio. A vmapped agent k follows the updates agent k would make alone (tested to float tolerance).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class SeedsSettings:
    """What the ``seeds`` suite measures."""

    agent: str = "qc-fql"
    """Agent (the quickstart's)."""
    preset: str = "quick"
    """Agent preset."""
    domain: str = "cube-double"
    """Domain of the agent's strengths; the batch has cube-double sizes."""
    seeds: tuple[int, ...] = (1, 2, 4, 8)
    """Numbers of stacked agents S."""
    steps: int = 20
    """Timed updates per S and mode (after compilation)."""
    rounds: int = 4
    """Interleaved rounds the timed updates are split into (every case runs once per round)."""
    modes: tuple[str, ...] = ("vmap", "map")
    """How the seed axis is mapped for S > 1 (see :func:`qchunk.training.seeds.over_seeds`)."""
    observation_dim: int = 37
    """State width of the synthetic batches."""
    action_dim: int = 5
    """Action width of the synthetic batches."""
    seed: int = 0
    """Seed of agent 0 (agent k uses seed + k) and of batch 0."""
    agent_overrides: dict[str, Any] = field(default_factory=dict)
    """Agent fields to override (tests use tiny networks)."""

    @classmethod
    def quick(cls, agent: str | None = None, **changes: Any) -> SeedsSettings:
        """The quick set's size: fewer timed steps."""
        return cls(agent=agent or "qc-fql", **{"steps": 8, **changes})

    @classmethod
    def full(cls, agent: str | None = None, **changes: Any) -> SeedsSettings:
        """Full size."""
        return cls(agent=agent or "qc-fql", **changes)


def stack_agents(agents: list[Any]) -> Any:
    """One agent pytree whose every array has a leading axis over ``agents`` (same config required)."""
    return jax.tree_util.tree_map(lambda *x: jnp.stack(x), *agents)


def unstack_agent(stacked: Any, k: int) -> Any:
    """Agent ``k`` of a :func:`stack_agents` pytree."""
    return jax.tree_util.tree_map(lambda x: x[k], stacked)


@jax.jit
def vmapped_update(agents: Any, batches: dict[str, jax.Array]) -> tuple[Any, dict[str, jax.Array]]:
    """One update of every stacked agent on its own batch (``batches[key]`` has a leading axis S); metrics
    come back per agent, shape ``(S,)``."""
    return jax.vmap(lambda agent, batch: agent.update(batch))(agents, batches)


def stacked_inputs(settings: SeedsSettings, num_seeds: int) -> tuple[Any, dict[str, jax.Array]]:
    """S agents with seeds ``seed + k`` and S synthetic batches (batch seed ``seed + k``), stacked."""
    from qchunk.agents import make_agent
    from qchunk.bench.update import DEFAULT_BATCH_SIZE, synthetic_batch

    s = settings
    overrides = dict(s.agent_overrides)
    batch_size = int(overrides.pop("batch_size", DEFAULT_BATCH_SIZE))
    agents = [make_agent(s.agent, s.observation_dim, s.action_dim, s.preset, s.domain, seed=s.seed + k,
                         **overrides) for k in range(num_seeds)]
    cfg = agents[0].config
    batches = [synthetic_batch(batch_size, cfg.horizon, s.observation_dim, s.action_dim, cfg.discount,
                               seed=s.seed + k) for k in range(num_seeds)]
    stacked_batch = {key: jnp.stack([jnp.asarray(b[key]) for b in batches]) for key in batches[0]}
    return stack_agents(agents), stacked_batch


def seed_kernel(num_seeds: int, mode: str):
    """The training loop's update of ``num_seeds`` stacked agents (:func:`qchunk.training.seeds.over_seeds`) as
    ``(agents, batches) -> (agents, info)``."""
    from qchunk.training.seeds import over_seeds

    kernel = over_seeds(lambda agent, batch, _: agent.update(batch), num_seeds, mode)
    return lambda agents, batches: kernel(agents, batches, None)


def run_seeds(settings: SeedsSettings) -> dict[str, Any]:
    """Time the update of every S of ``settings.seeds`` under every mode of ``settings.modes``; returns the
    results document body. The cases are timed in interleaved rounds (a few steps of each case per round, the
    median round kept), so that a shared machine's load falls on all of them alike."""
    from qchunk.training.seeds import resolve_seed_axis

    cases = [(s, "plain" if s == 1 else m) for s in settings.seeds for m in (settings.modes if s > 1 else ("",))]
    state, compile_s, times = {}, {}, {c: [] for c in cases}
    for case in cases:
        num_seeds, mode = case
        kernel = seed_kernel(num_seeds, "vmap" if mode == "plain" else mode)
        agents, batches = stacked_inputs(settings, num_seeds)
        t0 = time.perf_counter()
        agents, info = kernel(agents, batches)
        jax.block_until_ready((agents, info))
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        agents, info = kernel(agents, batches)
        jax.block_until_ready((agents, info))
        compile_s[case] = max(first - (time.perf_counter() - t0), 0.0)
        state[case] = [kernel, agents, batches, info]
    per_round = max(1, settings.steps // settings.rounds)
    for _ in range(settings.rounds):
        for case in cases:
            kernel, agents, batches, info = state[case]
            t0 = time.perf_counter()
            for _ in range(per_round):
                agents, info = kernel(agents, batches)
            jax.block_until_ready((agents, info))
            times[case].append((time.perf_counter() - t0) / per_round)
            state[case][1], state[case][3] = agents, info
    rows = []
    for case in cases:
        num_seeds, mode = case
        step_s = statistics.median(times[case])
        info = state[case][3]
        rows.append({"seeds": num_seeds, "mode": mode, "updates_per_s": num_seeds / step_s,
                     "per_seed_updates_per_s": 1 / step_s, "step_ms_median": 1e3 * step_s,
                     "compile_s": compile_s[case],
                     "metrics_finite": bool(all(jnp.isfinite(v).all() for v in info.values()))})
    base = next((r["updates_per_s"] for r in rows if r["seeds"] == 1), None)
    for row in rows:
        row["ratio_to_1"] = None if base is None else row["updates_per_s"] / base
    auto = resolve_seed_axis("auto")
    auto_rows = [r for r in rows if r["mode"] == auto and r["ratio_to_1"] is not None]
    from qchunk.agents import agent_config
    from qchunk.bench.update import DEFAULT_BATCH_SIZE

    overrides = dict(settings.agent_overrides)
    batch_size = int(overrides.pop("batch_size", DEFAULT_BATCH_SIZE))
    cfg = agent_config(settings.agent, settings.preset, settings.domain, **overrides)
    return {"agent": settings.agent, "preset": settings.preset, "domain": cfg.domain, "batch_size": batch_size,
            "horizon": cfg.horizon, "steps": settings.steps, "rounds": settings.rounds, "rows": rows,
            "auto_mode": auto,
            "auto_min_ratio_to_1": min((r["ratio_to_1"] for r in auto_rows), default=None),
            "note": "ratio_to_1 compares S seeds in one jitted update (mode vmap or lax.map) with S=1 "
                    "(S = perfect scaling, 1 = as fast as running the seeds one after another); auto_mode is "
                    "what --seed-axis auto picks on this backend"}
