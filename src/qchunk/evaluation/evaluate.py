"""Evaluation: success rate over parallel episodes, chunks executed open-loop, one batched query per chunk.

:func:`run_episodes` is the evaluation the trainer runs. :func:`run_episodes_serial` is the unbatched
baseline that ``qchunk bench --suite eval`` compares it with (one environment, one episode after another).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from qchunk.envs.chunk_executor import ChunkExecutor
from qchunk.errors import require
from qchunk.evaluation.pool import EnvPool, LocalEnvs

#: ``policy(observations (n, obs)) -> chunks (n, h, A)``.
BatchPolicy = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class EvalResult:
    """Means over the evaluation episodes."""

    success: float
    """Fraction of episodes that solved the task (NaN when the task has no success signal: no episode's
    environment reported ``info["success"]``)."""
    episode_return: float
    """Undiscounted return (of the reward the agent trains on)."""
    episode_length: float
    episodes: int
    policy_queries: int
    """Batched policy calls (each plans one chunk for every env that needs one)."""
    seconds: float
    normalized_score: float | None = None
    """``(return - random) / (expert - random)`` with the task's reference scores (None without them)."""
    returns: tuple[float, ...] = ()
    """Per episode, in the order of the seeds: the undiscounted return (empty for the serial baseline)."""
    lengths: tuple[int, ...] = ()
    """Per episode: the number of steps."""
    successes: tuple[float, ...] = ()
    """Per episode: 1.0 solved, 0.0 not, NaN where the environment reported no success signal."""

    def row(self) -> dict[str, float]:
        """The columns of an ``eval.csv`` row (``normalized_score`` only for tasks with reference scores)."""
        row = {"success": self.success, "return": self.episode_return, "episode_length": self.episode_length,
               "eval_seconds": round(self.seconds, 3)}
        if self.normalized_score is not None:
            row["normalized_score"] = self.normalized_score
        return row


def _success_rate(success: np.ndarray) -> float:
    """Mean of the per-episode successes that were reported (NaN entries: not reported); NaN if none was."""
    reported = success[~np.isnan(success)]
    return float(reported.mean()) if reported.size else float("nan")


def evaluation_seeds(seed: int, round_index: int, episodes: int) -> list[int]:
    """Per-episode reset seeds of evaluation round ``round_index``: fixed, distinct from training's."""
    ss = np.random.SeedSequence([seed, 0x5EED, round_index])
    return [int(s) for s in ss.generate_state(episodes)]


def run_episodes(policy: BatchPolicy, pool: EnvPool | LocalEnvs, seeds: Sequence[int]) -> EvalResult:
    """One episode per seed on the ``pool.n`` environments of ``pool``, a finished environment starting the
    next seed at once.

    Every environment executes the chunk planned for it fully (or until its episode ends) before the
    policy is asked again, and every episode starts at a chunk boundary, so all environments need their
    next chunk at the same moment: the policy sees one batch ``(pool.n, obs)`` per chunk (idle
    environments ride along with their last observation, so the batch shape, and hence the compiled
    policy, never changes), and each process of the pool steps its environments through the whole chunk
    on one message (:meth:`EnvPool.step_chunks`). An OGBench environment holds about 150 MB, so the pool
    is kept small (the trainer's default is two) and reused: an environment whose episode ends is reset
    with the next seed before the next query, never idle while seeds remain. An episode's result depends
    on its seed and the policy only, not on the environment or the moment it runs (exactly so for a
    deterministic policy).
    """
    require(len(seeds) >= 1, "run_episodes needs at least one seed")
    t0 = time.perf_counter()
    n, total = pool.n, len(seeds)
    returns, lengths, success = np.zeros(total), np.zeros(total, np.int64), np.full(total, np.nan)
    episode = np.full(n, -1)  # the episode each environment runs (-1: idle)
    first = min(n, total)
    episode[:first] = np.arange(first)
    obs = pool.reset([seeds[e] for e in range(first)], list(range(first)))
    if first < n:  # idle environments ride along with a copy of the first observation
        obs = np.concatenate([obs, np.repeat(obs[:1], n - first, axis=0)])
    queries, upcoming = 0, first
    while (episode >= 0).any():
        active = episode >= 0
        chunks = np.asarray(policy(obs))
        queries += 1
        next_obs, reward, steps, done, solved = pool.step_chunks(chunks, active)
        returns[episode[active]] += reward[active]
        lengths[episode[active]] += steps[active]
        obs = np.where(active[:, None], next_obs, obs)
        ended = np.flatnonzero(active & done)
        success[episode[ended]] = solved[ended]
        episode[ended] = -1
        refill = ended[: total - upcoming]
        if refill.size:
            episode[refill] = np.arange(upcoming, upcoming + refill.size)
            upcoming += refill.size
            obs[refill] = pool.reset([seeds[e] for e in episode[refill]], refill.tolist())
    task = getattr(pool, "task", None)
    return EvalResult(success=_success_rate(success), episode_return=float(returns.mean()),
                      episode_length=float(lengths.mean()), episodes=total, policy_queries=queries,
                      seconds=time.perf_counter() - t0,
                      normalized_score=task.normalized_score(returns.mean()) if task is not None else None,
                      returns=tuple(returns.tolist()), lengths=tuple(int(x) for x in lengths),
                      successes=tuple(success.tolist()))


def run_episodes_serial(policy: BatchPolicy, env, seeds: Sequence[int], *, per_step: bool = True) -> EvalResult:
    """The unbatched baseline: one episode per seed, one after another on the single environment ``env``,
    in this process. The policy is called with one observation at a time, ``(1, obs) -> (1, h, A)``.

    Args:
        policy: as for :func:`run_episodes`.
        env: a gymnasium environment as :func:`qchunk.envs.make_env` builds it (``info["success"]``).
        seeds: one reset seed per episode.
        per_step: ``True``: the policy is queried at EVERY step, as in the authors' evaluation, but the
            queued chunk is still executed open-loop (their agent queues a chunk and ignores the queries
            made while it plays): the same behaviour with ``h`` times the queries. ``False``: one query per
            chunk (the behaviour of :func:`run_episodes`, unbatched).

    Returns:
        The same means as :func:`run_episodes`; ``policy_queries`` counts policy calls.
    """
    require(len(seeds) >= 1, "run_episodes_serial needs at least one seed")
    t0 = time.perf_counter()
    n = len(seeds)
    returns, lengths, success = np.zeros(n), np.zeros(n, np.int64), np.zeros(n, bool)
    queries = 0
    executor = ChunkExecutor()
    for i, seed in enumerate(seeds):
        obs, _ = env.reset(seed=int(seed))
        executor.reset()
        done = False
        while not done:
            if per_step or executor.pending == 0:
                chunk = np.asarray(policy(np.asarray(obs)[None]))[0]
                queries += 1
                if executor.pending == 0:  # a per-step query made mid-chunk is computed and dropped
                    executor.push(chunk)
            obs, reward, terminated, truncated, info = env.step(executor.pop())
            returns[i] += float(reward)
            lengths[i] += 1
            done = bool(terminated or truncated)
        success[i] = bool(info.get("success", False))
    return EvalResult(success=float(success.mean()), episode_return=float(returns.mean()),
                      episode_length=float(lengths.mean()), episodes=n, policy_queries=queries,
                      seconds=time.perf_counter() - t0)
