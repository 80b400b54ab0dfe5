"""``qchunk bench``: the benchmark suites, and the single-agent update benchmark on a synthetic batch.

``qchunk bench`` (wired by the CLI to :func:`main`) runs, by default, the quick set of suites
(:mod:`qchunk.bench.suites`: ``update`` at the quick preset, ``eval``, ``data`` and ``seeds`` at quick
sizes; under 5 minutes on a 2-core CPU) and writes ``bench/results/<suite>.json``. ``--suite NAME`` runs
one suite at full size (``--quick`` for its quick size), ``--suite all`` every suite at full size
including the ~10-minute end-to-end run (``e2e``).

Given ``--agent``, ``--preset`` or ``--json`` (and no ``--suite``), it is the original single-agent
benchmark, by default QC at the paper's cube-double settings (obs dim 37, action dim 5, h=5, N=32, 4x512
networks, batch 256). What that measures (:func:`run_bench`, also the rows of the ``update`` suite):

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

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from qchunk.agents import agent_config, make_agent
from qchunk.errors import QchunkError
from qchunk.fileio import atomic_write_json, require_writable

SuiteName = Literal["quick", "all", "update", "eval", "data", "e2e", "seeds", "loop"]


@dataclass
class BenchArgs:
    """Benchmark suites (default: the quick set, JSON under bench/results/), or one agent's update and acting
    speed on a synthetic batch (with --agent / --preset / --json)."""

    agent: str | None = None
    """Agent (qc, qc-fql, bfn, bfn-n, fql, fql-n, qam, qam-f, qam-e, fedit, dsrl, rlpd, rlpd-ac, qc-rlpd). Alone:
    benchmark this one agent (default qc); with --suite: only this agent in the update, eval, seeds and e2e
    suites."""
    preset: Literal["paper", "quick"] | None = None
    """Network/optimisation preset: paper (4x512) or quick (2x256). Alone: benchmark one agent (default
    paper); with --suite update: only this preset."""
    domain: str = "cube-double"
    """Domain whose per-domain settings apply (scene, puzzle-3x3, cube-double, cube-triple, cube-quadruple, robomimic,
    the QAM domains). qam-f and qam-e need one where the QAM script's alpha / edit_scale is not 0 (cube-triple):
    on cube-double they are QAM."""
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
    """Hardware and versions (see :func:`qchunk.bench.results.environment`)."""
    from qchunk.bench.results import environment

    return environment()


DEFAULT_BATCH_SIZE = 256
"""The paper's batch size (``TrainConfig.batch_size``'s default)."""


def bench_agent(name: str, preset: str, domain: str = "cube-double", *, steps: int = 20, act_repeats: int = 20,
                scan: bool = True, seed: int = 0, observation_dim: int = 37, action_dim: int = 5,
                **overrides: Any) -> dict[str, Any]:
    """Time ``update`` (and ``update_many`` if ``scan``) and ``sample_actions`` of one agent on a synthetic
    batch of ``batch_size`` (a run setting, default 256; may come in ``overrides``); ``overrides`` are agent
    fields (``horizon``, ``num_samples``, ...). Returns the
    measurements and the settings, without the machine description (see the module docstring)."""
    if steps < 1 or act_repeats < 1:
        raise QchunkError(f"steps and act_repeats must be >= 1, got {steps} and {act_repeats}")
    batch_size = int(overrides.pop("batch_size", DEFAULT_BATCH_SIZE))
    config = agent_config(name, preset, domain, **overrides)
    agent = make_agent(name, observation_dim, action_dim, preset, domain, seed=seed, **overrides)
    batch_np = synthetic_batch(batch_size, config.horizon, observation_dim, action_dim, config.discount,
                               seed=seed)
    batch = {k: jnp.asarray(v) for k, v in batch_np.items()}

    t0 = time.perf_counter()
    state, info = agent.update(batch)
    jax.block_until_ready((state, info))
    first_call = time.perf_counter() - t0
    state, info = state.update(batch)  # one more warm step
    jax.block_until_ready((state, info))

    step_times = []
    t_all = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        state, info = state.update(batch)
        jax.block_until_ready((state, info))
        step_times.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - t_all
    step_s = statistics.median(step_times)

    scan_rate = None
    if scan:
        stacked = {k: jnp.broadcast_to(v, (steps, *v.shape)) for k, v in batch.items()}
        compiled = type(state).update_many.lower(state, stacked).compile()
        jax.block_until_ready(compiled(state, stacked))
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(state, stacked))
        scan_rate = steps / (time.perf_counter() - t0)

    obs = jnp.asarray(batch_np["observations"][0])
    key = jax.random.PRNGKey(seed)
    np.asarray(state.sample_actions(obs, key))  # compile
    act_times = []
    for i in range(act_repeats):
        k = jax.random.fold_in(key, i)
        t0 = time.perf_counter()
        np.asarray(state.sample_actions(obs, k))
        act_times.append(time.perf_counter() - t0)

    policy = getattr(config, "policy", None)
    return {
        "agent": name,
        "preset": preset,
        "domain": config.domain,
        "updates_per_s": 1.0 / step_s,
        "updates_per_s_mean": steps / elapsed,
        "step_ms_median": 1e3 * step_s,
        "step_ms_min": 1e3 * min(step_times),
        "scan_updates_per_s": scan_rate,
        "compile_s": max(first_call - step_s, 0.0),
        "act_ms": 1e3 * statistics.median(act_times),
        "params": agent.num_params,
        "steps": steps,
        "batch_size": batch_size,
        "horizon": config.horizon,
        "action_horizon": config.action_horizon,
        "num_samples": config.num_samples if policy == "best_of_n" else None,
        "alpha": config.alpha if policy == "distill" else None,
        "flow_steps": getattr(config, "flow_steps", None),
        "actor_hidden_dims": list(config.actor_hidden_dims),
        "critic_hidden_dims": list(config.critic_hidden_dims),
        "observation_dim": observation_dim,
        "action_dim": action_dim,
        "metrics_finite": all(bool(np.isfinite(float(v))) for v in info.values()),
    }


def run_bench(args: BenchArgs) -> dict[str, Any]:
    """The single-agent benchmark described by ``args`` (agent default qc, preset default paper), with the
    machine description; also written to ``args.json`` when set."""
    overrides: dict[str, Any] = {}
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    result = bench_agent(args.agent or "qc", args.preset or "paper", args.domain, steps=args.steps,
                         act_repeats=args.act_repeats, scan=args.scan, seed=args.seed,
                         observation_dim=args.observation_dim, action_dim=args.action_dim, **overrides)
    result.update(_environment())
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


def single_agent_mode(args: BenchArgs) -> bool:
    """Whether ``args`` ask for the original single-agent benchmark rather than the suites."""
    return args.suite is None and (args.agent is not None or args.preset is not None or args.json is not None)


def main(args: BenchArgs) -> int:
    """``qchunk bench``: the suites (see :mod:`qchunk.bench.suites`) or the single-agent benchmark; prints a
    summary and returns the exit status. Output paths are checked before anything is measured."""
    if not single_agent_mode(args):
        from qchunk.bench.suites import run_suites, selection

        require_writable(args.out_dir, "--out-dir", is_dir=True)
        if {"data", "loop", "e2e"} & set(selection(args)[0]):  # the suites that generate datasets
            require_writable(args.dataset_dir, "--dataset-dir", is_dir=True)
        run_suites(args)
        return 0
    if args.json is not None:
        require_writable(args.json, "--json", is_dir=False)
    result = run_bench(args)
    print(format_summary(result))
    if args.json is not None:
        print(f"  results written to {args.json}")
    return 0
