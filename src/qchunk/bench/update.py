"""Benchmark of the flow agents' update throughput and acting latency on a synthetic batch.

``qchunk bench`` (wired by the CLI) runs :func:`main`. The default measures QC at the paper's
cube-double settings (obs dim 37, action dim 5, h=5, N=32, 4x512 networks, batch 256).

What is measured:

* ``compile_s``: wall time of the first ``update`` call (tracing + XLA compilation + one step)
  minus one steady-state step.
* ``updates_per_s``: one over the median wall time of ``steps`` successive ``agent.update`` calls on a
  device-resident batch, each timed to completion (the median resists other processes' bursts on a
  shared machine; ``updates_per_s_mean`` is ``steps`` over their total time). Host-to-device batch
  transfer is not included.
* ``scan_updates_per_s``: the same number of updates as ONE ``update_many`` call (``lax.scan``), the
  UTD path (its compilation is excluded).
* ``act_ms``: median latency of ``sample_actions`` for one observation (one chunk), result on host.
* ``params``: trained parameters (target critic not counted).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from qchunk.agents import agent_config, make_agent
from qchunk.errors import QchunkError
from qchunk.fileio import atomic_write_json


@dataclass
class BenchArgs:
    """Benchmark one flow agent's update and acting speed on a synthetic batch."""

    agent: str = "qc"
    """Agent variant: qc, qc-fql, bfn, bfn-n, fql or fql-n."""
    preset: Literal["paper", "quick"] = "paper"
    """Network/optimisation preset: paper (4x512) or quick (2x256)."""
    domain: str = "cube-double"
    """Domain whose alpha / N apply (scene, puzzle-3x3, cube-double, cube-triple, cube-quadruple, robomimic)."""
    steps: int = 20
    """Timed updates (after compilation)."""
    json: Path | None = None
    """Write the results as JSON to this path (atomically)."""
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
    """Seed of the agent and the synthetic data."""


def synthetic_batch(batch_size: int, horizon: int, observation_dim: int, action_dim: int, discount: float,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """A batch with the data pipeline's layout and plausible values (sparse -1 rewards, a few
    successes and episode ends), for benchmarks and smoke tests."""
    rng = np.random.default_rng(seed)
    step_rewards = -(rng.uniform(size=(batch_size, horizon)) < 0.9).astype(np.float64)
    rewards = np.cumsum(step_rewards * discount ** np.arange(horizon), axis=1)
    success = rng.uniform(size=batch_size) < 0.05
    masks = np.ones((batch_size, horizon))
    masks[success, horizon // 2 :] = 0.0
    valid = np.ones((batch_size, horizon))
    ended = rng.uniform(size=batch_size) < 0.01
    valid[ended, horizon - 1 :] = 0.0
    batch = {
        "observations": rng.standard_normal((batch_size, observation_dim)),
        "actions": rng.uniform(-1.0, 1.0, (batch_size, horizon, action_dim)),
        "rewards": rewards,
        "masks": masks,
        "valid": valid,
        "next_observations": rng.standard_normal((batch_size, horizon, observation_dim)),
    }
    return {k: v.astype(np.float32) for k, v in batch.items()}


def _environment() -> dict[str, Any]:
    import flax
    import optax

    import qchunk

    device = jax.devices()[0]
    try:
        load = os.getloadavg()[0]
    except OSError:  # not on every platform
        load = None
    return {
        "platform": device.platform,
        "device": device.device_kind,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": load,
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "jaxlib": getattr(jax.lib, "__version__", None) or _jaxlib_version(),
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "qchunk": qchunk.__version__,
    }


def _jaxlib_version() -> str | None:
    try:
        import jaxlib

        return jaxlib.__version__
    except Exception:  # pragma: no cover - informational only
        return None


def run_bench(args: BenchArgs) -> dict[str, Any]:
    """Run the benchmark described by ``args`` and return the results (also written to ``args.json``)."""
    if args.steps < 1 or args.act_repeats < 1:
        raise QchunkError(f"steps and act_repeats must be >= 1, got {args.steps} and {args.act_repeats}")
    overrides: dict[str, Any] = {}
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    config = agent_config(args.agent, args.preset, args.domain, **overrides)
    agent = make_agent(args.agent, args.observation_dim, args.action_dim, args.preset, args.domain,
                       seed=args.seed, **overrides)
    batch_np = synthetic_batch(config.batch_size, config.horizon, args.observation_dim, args.action_dim,
                               config.discount, seed=args.seed)
    batch = {k: jnp.asarray(v) for k, v in batch_np.items()}

    t0 = time.perf_counter()
    state, info = agent.update(batch)
    jax.block_until_ready((state, info))
    first_call = time.perf_counter() - t0
    state, info = state.update(batch)  # one more warm step
    jax.block_until_ready((state, info))

    step_times = []
    t_all = time.perf_counter()
    for _ in range(args.steps):
        t0 = time.perf_counter()
        state, info = state.update(batch)
        jax.block_until_ready((state, info))
        step_times.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - t_all
    step_s = statistics.median(step_times)

    scan_rate = None
    if args.scan:
        stacked = {k: jnp.broadcast_to(v, (args.steps, *v.shape)) for k, v in batch.items()}
        compiled = type(state).update_many.lower(state, stacked).compile()
        jax.block_until_ready(compiled(state, stacked))
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(state, stacked))
        scan_rate = args.steps / (time.perf_counter() - t0)

    obs = jnp.asarray(batch_np["observations"][0])
    key = jax.random.PRNGKey(args.seed)
    np.asarray(state.sample_actions(obs, key))  # compile
    act_times = []
    for i in range(args.act_repeats):
        k = jax.random.fold_in(key, i)
        t0 = time.perf_counter()
        np.asarray(state.sample_actions(obs, k))
        act_times.append(time.perf_counter() - t0)

    finite = all(bool(np.isfinite(float(v))) for v in info.values())
    result = {
        "agent": args.agent,
        "preset": args.preset,
        "domain": config.domain,
        "updates_per_s": 1.0 / step_s,
        "updates_per_s_mean": args.steps / elapsed,
        "step_ms_median": 1e3 * step_s,
        "step_ms_min": 1e3 * min(step_times),
        "scan_updates_per_s": scan_rate,
        "compile_s": max(first_call - step_s, 0.0),
        "act_ms": 1e3 * statistics.median(act_times),
        "params": agent.num_params,
        "steps": args.steps,
        "batch_size": config.batch_size,
        "horizon": config.horizon,
        "action_horizon": config.action_horizon,
        "num_samples": config.num_samples if config.policy == "best_of_n" else None,
        "alpha": config.alpha if config.policy == "distill" else None,
        "flow_steps": config.flow_steps,
        "actor_hidden_dims": list(config.actor_hidden_dims),
        "critic_hidden_dims": list(config.critic_hidden_dims),
        "observation_dim": args.observation_dim,
        "action_dim": args.action_dim,
        "metrics_finite": finite,
        **_environment(),
    }
    if args.json is not None:
        atomic_write_json(args.json, result)
    return result


def format_summary(result: dict[str, Any]) -> str:
    """A short human-readable summary of :func:`run_bench`'s result."""
    scan = result.get("scan_updates_per_s")
    lines = [
        f"{result['agent']} ({result['preset']}, {result['domain']}): h={result['horizon']}, "
        f"batch {result['batch_size']}, {result['params']:,} parameters",
        f"  updates/s      {result['updates_per_s']:.2f}" + (f"   (lax.scan: {scan:.2f})" if scan else ""),
        f"  compile        {result['compile_s']:.1f} s",
        f"  act (1 chunk)  {result['act_ms']:.2f} ms",
        f"  on {result['device']} x{result['cpu_count']} ({result['platform']}), jax {result['jax']}, "
        f"load {result['load_avg_1m']}",
    ]
    return "\n".join(lines)


def main(args: BenchArgs) -> int:
    """Run the benchmark, print a summary (and write JSON if asked); returns the exit status."""
    result = run_bench(args)
    print(format_summary(result))
    if args.json is not None:
        print(f"  results written to {args.json}")
    return 0
