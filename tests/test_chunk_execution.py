"""Open-loop chunk execution: one policy query per chunk, the queue cleared at episode ends."""

import math

import numpy as np
import pytest

from conftest import TINY_TASK
from qchunk.envs import ChunkExecutor, make_env
from qchunk.evaluation import EnvPool, evaluation_seeds, run_episodes
from qchunk.tasks import get_task

TINY = get_task(TINY_TASK)


def test_executor_plays_chunks_open_loop_and_resets():
    calls = []

    def policy(obs):
        calls.append(float(obs))
        return np.arange(3)[:, None] + 10 * len(calls)  # chunk k: [10k, 10k+1, 10k+2]

    ex = ChunkExecutor(policy)
    actions = [float(ex.act(np.float32(t))[0]) for t in range(7)]
    assert actions == [10, 11, 12, 20, 21, 22, 30]
    assert calls == [0, 3, 6]  # queried only at chunk starts, with the observation of that step
    assert ex.pending == 2
    ex.reset()  # an episode ended: the rest of the plan is dropped
    assert ex.pending == 0 and float(ex.act(np.float32(99))[0]) == 40 and calls[-1] == 99


def test_single_env_episode_queries_ceil_steps_over_h():
    env = make_env(TINY, sparse=True, episode_length=12)
    h = 5
    ex = ChunkExecutor(lambda obs: np.zeros((h, 5), np.float32))
    for episode in range(2):
        obs, _ = env.reset(seed=episode)
        before, steps, done = ex.queries, 0, False
        while not done:
            obs, _, terminated, truncated, _ = env.step(ex.act(obs))
            steps += 1
            done = terminated or truncated
        ex.reset()
        assert steps == 12 and ex.queries - before == math.ceil(12 / h) == 3


class CountingPolicy:
    """A fixed deterministic controller; records every batched query."""

    def __init__(self, h):
        self.h, self.batches = h, []

    def __call__(self, obs):
        self.batches.append(obs.shape)
        chunk = np.tanh(obs[:, :5])[:, None, :].repeat(self.h, axis=1)
        return chunk.astype(np.float32)


@pytest.mark.parametrize("h", [1, 5])
def test_parallel_evaluation_batches_one_query_per_chunk(h):
    policy = CountingPolicy(h)
    with EnvPool(TINY, sparse=True, n=4, workers=1, episode_length=23) as pool:
        res = run_episodes(policy, pool, evaluation_seeds(0, 0, 4))
    assert res.episodes == 4 and res.episode_length == 23
    assert res.policy_queries == math.ceil(23 / h) == len(policy.batches)
    assert all(shape == (4, 55) for shape in policy.batches)  # one fixed-size batch per query
    assert res.episode_return == -23  # sparse reward: never solved by this controller


@pytest.mark.slow
def test_evaluation_does_not_depend_on_worker_count():
    seeds = evaluation_seeds(3, 1, 4)
    results = []
    for workers in (1, 2):
        # the Task value travels to the worker processes; the name (looked up in place) gives the same pool
        with EnvPool(TINY if workers == 2 else TINY_TASK, sparse=False, n=4, workers=workers,
                     episode_length=30) as pool:
            results.append(run_episodes(CountingPolicy(5), pool, seeds))
    a, b = results
    assert (a.success, a.episode_return, a.episode_length) == (b.success, b.episode_return, b.episode_length)
    assert a.episode_return < 0  # dense puzzle reward: minus the buttons out of place


class StaggeredPool:
    """Four environments whose episode with seed ``s`` lasts ``7 + s % 4`` steps and is solved when ``s`` is
    even (the control logic of run_episodes alone). Reset observations hold the seed, later ones the step."""

    n = 4

    def __init__(self):
        self.seed, self.t = [None] * self.n, [0] * self.n
        self.resets, self.steps = [], []  # (slots, seeds) per reset; steps taken per env per chunk

    def reset(self, seeds, slots):
        self.resets.append((list(slots), list(seeds)))
        for i, s in zip(slots, seeds, strict=True):
            self.seed[i], self.t[i] = s, 0
        return np.array([[s] * 3 for s in seeds], np.float32)

    def step_chunks(self, chunks, active):
        h = chunks.shape[1]
        obs, steps = np.zeros((self.n, 3), np.float32), np.zeros(self.n, np.int64)
        done, solved = np.zeros(self.n, bool), np.full(self.n, np.nan)
        for i in np.flatnonzero(active):
            length = 7 + self.seed[i] % 4
            steps[i] = min(h, length - self.t[i])  # the chunk is cut where the episode ends
            self.t[i] += steps[i]
            obs[i] = self.t[i]
            if self.t[i] == length:
                done[i], solved[i] = True, float(self.seed[i] % 2 == 0)
        self.steps.append(steps)
        return obs, -steps.astype(float), steps, done, solved


class ObservationPolicy(CountingPolicy):
    """CountingPolicy that keeps a copy of every batch."""

    def __call__(self, obs):
        self.seen = [*getattr(self, "seen", []), obs.copy()]
        return super().__call__(obs)


def test_episodes_ending_at_different_times():
    pool, policy = StaggeredPool(), CountingPolicy(4)
    res = run_episodes(policy, pool, [0, 1, 2, 3])
    steps = np.array(pool.steps)
    # chunks of 4: the episodes of 7, 8, 9 and 10 steps are cut at their ends and never stepped again
    assert steps.tolist() == [[4, 4, 4, 4], [3, 4, 4, 4], [0, 0, 1, 2]]
    assert res.policy_queries == math.ceil(10 / 4)  # queries at steps 0, 4, 8 for everyone still running
    assert res.episode_length == np.mean([7, 8, 9, 10]) and res.success == 0.5
    assert res.lengths == (7, 8, 9, 10) and res.returns == (-7, -8, -9, -10) and res.successes == (1, 0, 1, 0)


def test_a_finished_environment_starts_the_next_seed_at_once():
    pool, policy = StaggeredPool(), ObservationPolicy(4)
    res = run_episodes(policy, pool, list(range(6)))
    # seeds 0-3 start together; after the second chunk envs 0 and 1 are done and take seeds 4 and 5
    assert pool.resets == [([0, 1, 2, 3], [0, 1, 2, 3]), ([0, 1], [4, 5])]
    assert np.array(pool.steps).tolist() == [[4, 4, 4, 4], [3, 4, 4, 4], [4, 4, 1, 2], [3, 4, 0, 0]]
    assert res.policy_queries == 4  # waves of 4 then 2 would take ceil(10/4) + ceil(8/4) = 5
    np.testing.assert_array_equal(policy.seen[2][:, 0], [4, 5, 8, 8])  # the new episodes' first observations
    np.testing.assert_array_equal(policy.seen[3][:, 0], [4, 4, 9, 10])  # finished envs ride along, unchanged
    assert res.lengths == (7, 8, 9, 10, 7, 8) and res.successes == (1, 0, 1, 0, 1, 0)  # in the order of the seeds
    assert res.episodes == 6 and res.episode_length == np.mean([7, 8, 9, 10, 7, 8]) and res.success == 0.5
    assert all(b.shape == (4, 3) for b in policy.seen)  # the batch shape never changes


@pytest.mark.slow
def test_reused_real_environments_match_one_episode_each():
    seeds = evaluation_seeds(5, 0, 3)
    with EnvPool(TINY, sparse=False, n=2, workers=1, episode_length=12) as pool:
        waves = run_episodes(CountingPolicy(5), pool, seeds)  # the third episode reuses an environment
    with EnvPool(TINY, sparse=False, n=3, workers=1, episode_length=12) as pool:
        at_once = run_episodes(CountingPolicy(5), pool, seeds)
    assert waves.episodes == at_once.episodes == 3
    assert waves.returns == at_once.returns and waves.lengths == at_once.lengths  # deterministic: same episodes
