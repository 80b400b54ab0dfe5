"""The ``seeds`` suite: many seeds' updates in one ``jax.vmap``.

S agents built with seeds ``seed .. seed+S-1`` are stacked into one pytree (:func:`stack_agents`) and
updated together by :func:`vmapped_update`, ``jax.jit(jax.vmap(lambda agent, batch: agent.update(batch)))``,
each on its own synthetic batch. Reported per S: ``updates_per_s`` (all seeds together: S over the median
step time), ``ratio_to_1`` (that over the S=1 value, None when S=1 is not measured: S means perfect
scaling, 1 means no gain over running the seeds one after another) and ``compile_s``. A vmapped agent k
follows the updates agent k would make alone (tested to float tolerance).
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
    """Timed vmapped updates per S (after compilation)."""
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


def run_seeds(settings: SeedsSettings) -> dict[str, Any]:
    """Time the vmapped update for every S of ``settings.seeds``; returns the results document body."""
    rows = []
    for num_seeds in settings.seeds:
        agents, batches = stacked_inputs(settings, num_seeds)
        t0 = time.perf_counter()
        agents, info = vmapped_update(agents, batches)
        jax.block_until_ready((agents, info))
        first = time.perf_counter() - t0
        agents, info = vmapped_update(agents, batches)
        jax.block_until_ready((agents, info))
        times = []
        for _ in range(settings.steps):
            t0 = time.perf_counter()
            agents, info = vmapped_update(agents, batches)
            jax.block_until_ready((agents, info))
            times.append(time.perf_counter() - t0)
        step_s = statistics.median(times)
        rows.append({"seeds": num_seeds, "updates_per_s": num_seeds / step_s, "per_seed_updates_per_s": 1 / step_s,
                     "step_ms_median": 1e3 * step_s, "compile_s": max(first - step_s, 0.0),
                     "metrics_finite": bool(all(jnp.isfinite(v).all() for v in info.values()))})
    base = next((r["updates_per_s"] for r in rows if r["seeds"] == 1), None)
    for row in rows:
        row["ratio_to_1"] = None if base is None else row["updates_per_s"] / base
    from qchunk.agents import agent_config
    from qchunk.bench.update import DEFAULT_BATCH_SIZE

    overrides = dict(settings.agent_overrides)
    batch_size = int(overrides.pop("batch_size", DEFAULT_BATCH_SIZE))
    cfg = agent_config(settings.agent, settings.preset, settings.domain, **overrides)
    return {"agent": settings.agent, "preset": settings.preset, "domain": cfg.domain, "batch_size": batch_size,
            "horizon": cfg.horizon, "steps": settings.steps, "rows": rows,
            "note": "ratio_to_1 compares S seeds in one vmapped update with S=1 (S = perfect scaling)"}
