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
from qchunk.evaluation.pool import EnvPool

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


def run_episodes(policy: BatchPolicy, pool: EnvPool, seeds: Sequence[int]) -> EvalResult:
    """One episode per seed, ``pool.n`` at a time, all environments of a wave stepped together.

    Every environment queues the chunk planned for it and executes it fully before the policy is asked
    again; because the episodes of a wave start together, those moments coincide and the policy sees one
    batch ``(pool.n, obs)`` (finished or idle environments ride along with their last observation, so the
    batch shape, and hence the compiled policy, never changes). More seeds than environments run in
    waves of ``pool.n`` episodes (an OGBench environment holds about 150 MB, so the pool is kept small:
    the trainer's default is two). An episode's result depends on its seed and the policy only, not on
    the wave it runs in.
    """
    require(len(seeds) >= 1, "run_episodes needs at least one seed")
    t0 = time.perf_counter()
    parts = [_run_wave(policy, pool, list(seeds[i : i + pool.n])) for i in range(0, len(seeds), pool.n)]
    returns, lengths, success = (np.concatenate([p[k] for p in parts]) for k in range(3))
    task = getattr(pool, "task", None)
    return EvalResult(success=_success_rate(success), episode_return=float(returns.mean()),
                      episode_length=float(lengths.mean()), episodes=len(seeds),
                      policy_queries=sum(p[3] for p in parts), seconds=time.perf_counter() - t0,
                      normalized_score=task.normalized_score(returns.mean()) if task is not None else None)


def _run_wave(policy: BatchPolicy, pool: EnvPool, seeds: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Episodes ``seeds`` (at most ``pool.n``) on the pool's first environments; the others stay idle.
    Returns per-episode returns, lengths, successes and the number of policy queries."""
    n, k = pool.n, len(seeds)
    obs = pool.reset(seeds + [seeds[-1]] * (n - k))
    executors = [ChunkExecutor() for _ in range(n)]
    active = np.arange(n) < k
    returns, lengths, success = np.zeros(n), np.zeros(n, np.int64), np.full(n, np.nan)
    queries = 0
    actions = None
    while active.any():
        if any(active[i] and executors[i].pending == 0 for i in range(n)):
            chunks = np.asarray(policy(obs))
            queries += 1
            for i in range(n):
                if active[i] and executors[i].pending == 0:
                    executors[i].push(chunks[i])
        if actions is None:
            actions = np.zeros((n, chunks.shape[-1]), np.float32)
        for i in range(n):
            if active[i]:
                actions[i] = executors[i].pop()
        next_obs, reward, terminated, truncated, solved = pool.step(actions, active)
        returns[active] += reward[active]
        lengths[active] += 1
        done = active & (terminated | truncated)
        success[done] = solved[done]
        for i in np.flatnonzero(done):
            executors[i].reset()
        obs = np.where(active[:, None], next_obs, obs)
        active &= ~done
    return returns[:k], lengths[:k], success[:k], queries


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
