"""The ``eval`` suite: one evaluation of ``episodes`` episodes run the batched way and the serial way.

Compared, with the same policy (an untrained agent of the ``quick`` preset, queried through
``agent.eval_actions`` with a key split per call, exactly as the trainer's evaluation policy), on the
same episode seeds, in one run:

* ``batched_parallel`` (the trainer's evaluation): :func:`qchunk.evaluation.run_episodes` on an
  :class:`~qchunk.evaluation.EnvPool` of ``envs`` environments (the trainer's ``--eval-envs`` default)
  stepped by ``workers`` processes, this one included: the ``envs`` environments stepped together, each
  through a whole chunk per message, a finished one taking the next seed at once, the policy queried
  once per chunk with the whole batch ``(envs, obs)``, each chunk executed open-loop.
* ``serial_per_step`` (the authors' style of evaluation): :func:`qchunk.evaluation.run_episodes_serial`
  with ``per_step=True``: one environment in this process, one episode after another, the policy queried
  at EVERY step with one observation while the queued chunk still plays open-loop (the authors' agent
  queues a chunk and the queries made while it plays are dropped), so both modes behave the same and the
  serial one makes ``h`` times the queries (each mode reports its own ``env_steps``).

``eval_speedup`` is ``serial_per_step.seconds / batched_parallel.seconds``. Neither includes the one-off
set-up: making the environments (``make_env_s`` for the serial env, ``pool_startup_s`` for the pool,
which the trainer pays once per run and reuses for every evaluation) and compiling the policy for both
batch shapes (done before either is timed); ``eval_speedup_with_startup`` adds the set-up to both sides.

Full size also runs the two steps in between, so the speedup can be read factor by factor:
``serial_per_chunk`` (one env, one query per chunk, open-loop: the gain of chunking) and
``batched_local`` (the pool in this process, one worker: the gain of batching the queries).

Per mode: ``seconds``, ``episodes_per_s``, ``env_steps``, ``policy_queries``, ``policy_s`` (wall time
inside policy calls), ``env_steps_per_s`` (environment steps per second of the remaining time: stepping,
transport and bookkeeping) and, on Linux, ``cpu_s`` (CPU seconds of this process and the workers, a
measure of work that other processes' load does not inflate). ``peak_rss_mb``: the peak summed resident
set of this process and the pool's workers while the mode ran (sampled every 0.1 s by
:class:`~qchunk.bench.memprobe.TreeRss`); the top-level ``peak_rss_mb`` is ``batched_parallel``'s, the
memory one evaluation of a run costs, JAX and the agent included.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qchunk.bench.memprobe import TreeRss
from qchunk.evaluation import EnvPool, EvalResult, evaluation_seeds, run_episodes, run_episodes_serial

#: Environments the trainer's evaluation keeps open by default (``TrainConfig.eval_envs``; a test keeps the
#: two equal): the pool size the ``eval`` suite measures.
TRAINER_EVAL_ENVS = 2


@dataclass(frozen=True)
class EvalSpeedSettings:
    """What the ``eval`` suite measures."""

    agent: str = "qc-fql"
    """Agent whose policy is evaluated (its ``eval_speedup`` is the headline number)."""
    other_agents: tuple[str, ...] = ()
    """More agents measured the same way (reported under ``other_agents``)."""
    preset: str = "quick"
    """Agent preset."""
    task: str = "puzzle-3x3-play-singletask-task2-v0"
    """Single-task environment."""
    sparse: bool = True
    """The paper's sparse reward (does not change the speed)."""
    episodes: int = 50
    """Episodes per evaluation."""
    envs: int = TRAINER_EVAL_ENVS
    """Environments open at once in the pool (each reused for episode after episode), as the trainer's."""
    episode_length: int | None = None
    """Time limit (None: the task's, 500 steps for puzzle-3x3)."""
    workers: int | None = None
    """Processes that step ``batched_parallel``'s pool, this one included (None: all cores; at most
    ``envs``)."""
    serial_per_chunk: bool = False
    """Also time ``serial_per_chunk``."""
    batched_local: bool = False
    """Also time ``batched_local``."""
    seed: int = 0
    """Seed of the agent, the policy keys and the episode seeds."""
    agent_overrides: dict[str, Any] = field(default_factory=dict)
    """Agent fields to override (tests use tiny networks)."""

    @classmethod
    def quick(cls, agent: str | None = None, **changes: Any) -> EvalSpeedSettings:
        """The quick set's size: 50 episodes of one agent, the two modes compared."""
        return cls(agent=agent or "qc-fql", **changes)

    @classmethod
    def full(cls, agent: str | None = None, **changes: Any) -> EvalSpeedSettings:
        """Full size: the four modes, for qc-fql and qc (or only ``agent``)."""
        others = () if agent is not None else ("qc",)
        return cls(agent=agent or "qc-fql", other_agents=others, serial_per_chunk=True, batched_local=True,
                   **changes)


class TimedPolicy:
    """The trainer's evaluation policy (``agent.eval_actions``, a fresh key split off per call), timed.

    Args:
        agent: a qchunk agent.
        key: JAX key the per-call keys are split from.
    """

    def __init__(self, agent, key):
        import jax
        import jax.numpy as jnp

        self._jax, self._jnp = jax, jnp
        self._act = getattr(agent, "eval_actions", agent.sample_actions)
        self.key = key
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        self.key, sub = self._jax.random.split(self.key)
        chunks = np.asarray(self._act(self._jnp.asarray(observations), sub))
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return chunks


def _cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU seconds of this process and of ``pids`` (Linux ``/proc``; None elsewhere)."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _mode_row(res: EvalResult, policy: TimedPolicy, cpu_s: float | None) -> dict[str, Any]:
    env_steps = round(res.episode_length * res.episodes)
    outside = max(res.seconds - policy.seconds, 1e-9)
    return {
        "seconds": res.seconds,
        "episodes_per_s": res.episodes / res.seconds,
        "env_steps": env_steps,
        "env_steps_per_s": env_steps / outside,
        "policy_queries": res.policy_queries,
        "policy_s": policy.seconds,
        "policy_ms_per_query": 1e3 * policy.seconds / max(res.policy_queries, 1),
        "success": res.success,
        "episode_length": res.episode_length,
        "cpu_s": cpu_s,
    }


def _timed(run, policy: TimedPolicy, pids: list[int]) -> dict[str, Any]:
    cpu0 = _cpu_seconds(pids)
    with TreeRss(pids) as mem:
        res = run(policy)
    cpu1 = _cpu_seconds(pids)
    row = _mode_row(res, policy, None if cpu0 is None or cpu1 is None else cpu1 - cpu0)
    row["peak_rss_mb"] = mem.peak_mb
    return row


def run_eval_speed(settings: EvalSpeedSettings) -> dict[str, Any]:
    """Measure the evaluation modes described in the module docstring; returns the results document body."""
    import jax

    from qchunk.agents import make_agent
    from qchunk.envs import make_env
    from qchunk.tasks import get_task

    s = settings
    spec = get_task(s.task)
    workers = s.workers or os.cpu_count() or 1
    seeds = evaluation_seeds(s.seed, 0, s.episodes)
    pool_n = max(1, min(s.envs, s.episodes))

    t0 = time.perf_counter()
    env = make_env(spec, s.sparse, s.episode_length)
    make_env_s = time.perf_counter() - t0
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]

    names = [s.agent, *[a for a in s.other_agents if a != s.agent]]
    agents, compile_s = {}, {}
    for name in names:
        agent = make_agent(name, obs_dim, act_dim, s.preset, spec.domain.name, seed=s.seed,
                           **{k: v for k, v in s.agent_overrides.items() if k != "batch_size"})
        warm = TimedPolicy(agent, jax.random.PRNGKey(s.seed))
        t0 = time.perf_counter()
        for n in (1, pool_n):  # compile both batch shapes before anything is timed
            warm(np.zeros((n, obs_dim), np.float32))
        compile_s[name] = time.perf_counter() - t0
        agents[name] = agent

    def policy(name: str) -> TimedPolicy:
        return TimedPolicy(agents[name], jax.random.fold_in(jax.random.PRNGKey(s.seed), 0xE7A1))

    modes: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in names}
    try:
        for name in names:
            modes[name]["serial_per_step"] = _timed(
                lambda p: run_episodes_serial(p, env, seeds, per_step=True), policy(name), [])
            if s.serial_per_chunk:
                modes[name]["serial_per_chunk"] = _timed(
                    lambda p: run_episodes_serial(p, env, seeds, per_step=False), policy(name), [])
    finally:
        env.close()

    startup: dict[str, float] = {}
    layout: list[int] = []
    pools = [("batched_local", 1)] if s.batched_local else []
    pools.append(("batched_parallel", workers))
    for mode, w in pools:
        t0 = time.perf_counter()
        with EnvPool(spec, s.sparse, pool_n, w, s.episode_length) as pool:
            startup[mode] = time.perf_counter() - t0
            layout = pool.layout
            for name in names:
                modes[name][mode] = _timed(lambda p, pool=pool: run_episodes(p, pool, seeds), policy(name),
                                           pool.worker_pids)

    def summary(name: str) -> dict[str, Any]:
        m = modes[name]
        serial, batched = m["serial_per_step"], m["batched_parallel"]
        cpu = serial["cpu_s"] and batched["cpu_s"] and serial["cpu_s"] / batched["cpu_s"]
        return {
            "agent": name,
            "compile_s": compile_s[name],
            "modes": m,
            "eval_speedup": serial["seconds"] / batched["seconds"],
            "eval_speedup_with_startup": (serial["seconds"] + make_env_s)
            / (batched["seconds"] + startup["batched_parallel"]),
            "cpu_speedup": cpu or None,
        }

    head = summary(s.agent)
    return {
        **head,
        "other_agents": [summary(name) for name in names[1:]],
        "preset": s.preset,
        "task": s.task,
        "sparse": s.sparse,
        "episodes": s.episodes,
        "envs": pool_n,
        "workers": len(layout),
        "envs_per_process": layout,
        "peak_rss_mb": head["modes"]["batched_parallel"]["peak_rss_mb"],
        "make_env_s": make_env_s,
        "pool_startup_s": startup["batched_parallel"],
        "pool_startup_local_s": startup.get("batched_local"),
        "compared": "serial_per_step: one env in this process, episodes one after another, the policy queried "
                    "every step with one observation and the first action of its chunk executed; "
                    "batched_parallel: run_episodes on an EnvPool of `envs` envs (this process and the "
                    "workers), a finished env taking the next seed at once, one batched query per chunk, "
                    "chunks executed open-loop, each process stepping its envs through a whole chunk per "
                    "message. Same policy and episode seeds; set-up (env creation, compilation) excluded.",
    }
