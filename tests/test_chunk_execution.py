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
    """Environments whose episodes end after 7, 8, 9 and 10 steps (control logic of run_episodes alone)."""

    n = 4

    def __init__(self):
        self.t = 0
        self.stepped = []

    def reset(self, seeds):
        self.t = 0
        return np.zeros((self.n, 3), np.float32)

    def step(self, actions, active):
        self.t += 1
        self.stepped.append(active.copy())
        done = np.array([self.t >= 7 + i for i in range(self.n)])
        obs = np.full((self.n, 3), self.t, np.float32)
        return obs, -np.ones(self.n, np.float32), done, np.zeros(self.n, bool), done & (np.arange(self.n) % 2 == 0)


def test_episodes_ending_at_different_times():
    pool, policy = StaggeredPool(), CountingPolicy(4)
    res = run_episodes(policy, pool, [0, 1, 2, 3])
    stepped = np.array(pool.stepped)
    assert stepped.sum(0).tolist() == [7, 8, 9, 10]  # a finished env is never stepped again
    assert res.policy_queries == math.ceil(10 / 4)  # queries at steps 0, 4, 8 for everyone still running
    assert res.episode_length == np.mean([7, 8, 9, 10]) and res.success == 0.5


def test_more_episodes_than_environments_run_in_waves():
    pool, policy = StaggeredPool(), CountingPolicy(4)
    res = run_episodes(policy, pool, list(range(6)))  # a wave of 4, then a wave of 2 with 2 idle envs
    stepped = np.array(pool.stepped)
    assert stepped.sum(0).tolist() == [7 + 7, 8 + 8, 9, 10]  # idle envs of the last wave are never stepped
    assert res.episodes == 6 and res.policy_queries == math.ceil(10 / 4) + math.ceil(8 / 4)
    assert res.episode_length == np.mean([7, 8, 9, 10, 7, 8]) and res.success == np.mean([1, 0, 1, 0, 1, 0])
    assert all(shape == (4, 3) for shape in policy.batches)  # the batch shape never changes


@pytest.mark.slow
def test_waves_on_real_environments_match_one_episode_each():
    seeds = evaluation_seeds(5, 0, 3)
    with EnvPool(TINY, sparse=False, n=2, workers=1, episode_length=12) as pool:
        waves = run_episodes(CountingPolicy(5), pool, seeds)
    with EnvPool(TINY, sparse=False, n=3, workers=1, episode_length=12) as pool:
        at_once = run_episodes(CountingPolicy(5), pool, seeds)
    assert waves.episodes == at_once.episodes == 3
    assert waves.episode_return == at_once.episode_return  # a deterministic policy: same episodes
