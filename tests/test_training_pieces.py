"""The training loop's pieces on their own: batch source (mixing), collector (real envs), seed axis,
checkpoint store (retention, set-aside), run state and run directory."""

from __future__ import annotations

import json

import gymnasium as gym
import jax
import numpy as np
import pytest

from conftest import TINY_TASK
from qchunk.agents import make_agent
from qchunk.data.dataset import Dataset, ReplayBuffer
from qchunk.data.device import DeviceData
from qchunk.data.tasks import TaskData
from qchunk.errors import QchunkError
from qchunk.training import RunDir, TrainConfig
from qchunk.training.checkpoint import CheckpointStore, DamagedCheckpoint, verify
from qchunk.training.collector import Collector, episode_seed
from qchunk.training.seed_run import offline_block, offline_block_length
from qchunk.training.seeds import SeedAxis
from qchunk.training.sources import BatchSource
from qchunk.training.state import RunState

OBS, ACT = 3, 2


def _offline(n=40, episode=10) -> Dataset:
    """Observations 0..n-1 in column 0 (so every row says where it came from), episodes of 10 steps."""
    obs = np.zeros((n, OBS), np.float32)
    obs[:, 0] = np.arange(n)
    terminals = np.zeros(n, np.float32)
    terminals[episode - 1::episode] = 1
    return Dataset.from_dict({"observations": obs, "actions": np.zeros((n, ACT), np.float32),
                              "rewards": np.zeros(n, np.float32), "terminals": terminals,
                              "masks": np.ones(n, np.float32), "next_observations": obs + 1})


def _fill_online(buffer: ReplayBuffer, n=30, start=1000):
    for i in range(n):
        o = np.full(OBS, start + i, np.float32)
        buffer.add(o, np.zeros(ACT), 0.0, (i + 1) % 10 == 0, 1.0, o + 1)


@pytest.mark.parametrize(("ratio", "offline_rows"), [(0.25, 2), (0.5, 4), (0.0, 0)])
def test_a_mixing_ratio_puts_that_fraction_of_offline_chunks_in_every_batch(ratio, offline_rows):
    source = BatchSource(TaskData(_offline()), batch_size=8, horizon=3, discount=0.9, offline_ratio=ratio)
    buffer = source.start_online(buffer_size=None, online_steps=30)
    assert buffer.size == 0 and buffer.capacity == 30  # online data only
    _fill_online(buffer)
    rng = np.random.default_rng(0)
    for _ in range(20):
        first = source.sample(rng, 1, online=True)["observations"][:, 0]
        assert (first[:offline_rows] < 40).all() and (first[offline_rows:] >= 1000).all()
    stacked = source.sample(rng, 3, online=True)
    assert stacked["observations"].shape == (3, 8, OBS) and stacked["actions"].shape == (3, 8, 3, ACT)


def test_without_a_ratio_the_buffer_starts_as_the_offline_set_and_is_sampled_uniformly():
    source = BatchSource(TaskData(_offline()), batch_size=512, horizon=1, discount=0.9, offline_ratio=None)
    buffer = source.start_online(buffer_size=None, online_steps=30)
    assert buffer.size == 40 and buffer.capacity == 70
    _fill_online(buffer)
    first = source.sample(np.random.default_rng(0), 1, online=True)["observations"][:, 0]
    frac_offline = float(np.mean(first < 40))
    assert abs(frac_offline - 40 / 70) < 0.08
    # exactly full: stored whole (nothing can be left out once the ring is full), and restored exactly
    state = source.buffer_state()
    assert list(state["_meta"]) == [70, 70, 0, 0] and len(state["observations"]) == 70
    twin = BatchSource(TaskData(_offline()), batch_size=512, horizon=1, discount=0.9, offline_ratio=None)
    twin.restore_buffer(state)
    for k, v in buffer.arrays().items():
        np.testing.assert_array_equal(twin.buffer.arrays()[k], v)


def test_prefix_is_left_out_of_the_buffer_checkpoint_until_the_ring_wraps():
    source = BatchSource(TaskData(_offline()), batch_size=4, horizon=1, discount=0.9, offline_ratio=None)
    buffer = source.start_online(buffer_size=60, online_steps=30)
    _fill_online(buffer, n=15)
    state = source.buffer_state()
    assert list(state["_meta"]) == [60, 55, 55, 40] and len(state["observations"]) == 15
    _fill_online(buffer, n=15, start=2000)  # 70 rows into a ring of 60: the 10 oldest offline rows are gone
    state = source.buffer_state()
    assert list(state["_meta"]) == [60, 60, 10, 0] and len(state["observations"]) == 60
    restored = ReplayBuffer.from_state_dict(state)
    np.testing.assert_array_equal(restored.arrays()["observations"], buffer.arrays()["observations"])
    assert restored.arrays()["observations"][0, 0] == 10  # oldest surviving offline row


class _ContinuousCartPole(gym.ActionWrapper):
    """CartPole with a continuous action in [-1, 1] (push right when > 0): terminates when the pole falls."""

    def __init__(self):
        super().__init__(gym.make("CartPole-v1"))
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def action(self, action):
        return int(np.asarray(action).reshape(-1)[0] > 0)


def test_collector_masks_a_termination_but_not_a_time_limit():
    buffer = ReplayBuffer(200, 4, 1)
    queries = []

    def act(obs):
        queries.append(obs)
        return np.ones((3, 1), np.float32)  # a chunk of 3 actions, executed open-loop

    collector = Collector(gym.wrappers.TimeLimit(_ContinuousCartPole(), 500), buffer, seed=0, episode=0)
    steps = 0
    while True:
        stats = collector.step(act)
        steps += 1
        if stats.episode_over:
            break
    assert stats.terminated and not stats.truncated and steps < 30  # the pole falls when always pushed right
    d = buffer.arrays()
    assert d["masks"][steps - 1] == 0.0 and d["terminals"][steps - 1] == 1.0 and d["masks"][: steps - 1].all()
    assert len(queries) == -(-steps // 3)  # one query per chunk
    assert collector.executor.pending == 0  # the queue is dropped at the episode end

    collector = Collector(gym.wrappers.TimeLimit(_ContinuousCartPole(), 4), ReplayBuffer(10, 4, 1), seed=0, episode=0)
    collector.buffer = buffer = ReplayBuffer(10, 4, 1)
    collector.reset(1)
    flags = [collector.step(lambda o: np.zeros((5, 1), np.float32)) for _ in range(4)]
    assert flags[-1].truncated and not flags[-1].terminated
    d = buffer.arrays()
    assert list(d["terminals"]) == [0, 0, 0, 1] and list(d["masks"]) == [1, 1, 1, 1]  # truncation: mask stays 1


def test_collector_reports_exploration_probes_of_a_real_ogbench_env():
    from qchunk.envs import make_env

    env = make_env(TINY_TASK, True, 20, probes=True)
    collector = Collector(env, ReplayBuffer(50, env.observation_space.shape[0], 5), seed=3, episode=2)
    first = collector.step(lambda o: np.zeros((5, 5), np.float32))
    second = collector.step(lambda o: np.zeros((5, 5), np.float32))
    assert first.episode_start and not second.episode_start
    assert first.ee_pos.shape == (3,) and isinstance(first.gripper_contact, bool | np.bool_)
    env.close()
    # episodes are reset from their index: the same episode gives the same first observation
    a = make_env(TINY_TASK, True, 20).reset(seed=episode_seed(3, 2))[0]
    np.testing.assert_array_equal(a, collector.buffer.arrays()["observations"][0])


def _batch(seed, h=5, B=4):
    rng = np.random.default_rng(seed)
    return {"observations": rng.normal(size=(B, OBS)).astype(np.float32),
            "actions": rng.uniform(-1, 1, (B, h, ACT)).astype(np.float32),
            "rewards": rng.normal(size=(B, h)).astype(np.float32), "masks": np.ones((B, h), np.float32),
            "valid": np.ones((B, h), np.float32), "next_observations": rng.normal(size=(B, h, OBS)).astype(np.float32)}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["vmap", "map"])
def test_seed_axis_updates_each_seed_as_alone_and_keeps_a_seed_without_a_request(mode):
    small = dict(actor_hidden_dims=(8,), critic_hidden_dims=(8,), flow_steps=2)
    agents = [make_agent("qc-fql", OBS, ACT, preset="quick", domain="puzzle-3x3", seed=s, **small) for s in (0, 1)]
    axis = SeedAxis(agents, mode)
    assert axis.mode == mode
    infos = axis.update([("one", _batch(0)), None])
    assert infos[1] is None and float(infos[0]["critic/loss"]) > 0
    alone, _ = agents[0].update(_batch(0))
    for a, b in zip(jax.tree_util.tree_leaves(axis.agent(0).params), jax.tree_util.tree_leaves(alone.params),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(axis.agent(1)), jax.tree_util.tree_leaves(agents[1]), strict=True):
        np.testing.assert_array_equal(a, b)  # untouched
    many = {k: np.stack([v, v]) for k, v in _batch(1).items()}
    infos = axis.update([("many", many), ("one", _batch(2))])
    assert int(axis.agent(0).step) == 3 and int(axis.agent(1).step) == 1


def test_checkpoint_store_verifies_sets_aside_and_never_deletes_the_resumed_from(tmp_path):
    store = CheckpointStore(tmp_path / "checkpoints", keep=2)
    for step in (10, 20, 30):
        store.save(step, b"agent%d" % step, {"counters": {}})
    assert store.steps() == [20, 30]
    assert verify(store.root / "step_0000000030").state["step"] == 30
    (store.root / "step_0000000030" / "agent.msgpack").write_bytes(b"agent31")  # same size, other bytes
    with pytest.raises(DamagedCheckpoint, match=r"agent\.msgpack does not match its checksum"):
        verify(store.root / "step_0000000030")
    said = []
    good = store.newest_good(report=said.append)
    assert good.step == 20 and said == ["checkpoint step_0000000030 is damaged (agent.msgpack does not match its "
                                        "checksum); set aside as damaged-step_0000000030"]
    store.protected = good.path
    for step in (40, 50, 60):
        store.save(step, b"x", {})
    assert store.steps() == [20, 50, 60]  # the checkpoint resumed from stays
    assert (store.root / "damaged-step_0000000030").is_dir()
    manifest = json.loads((store.root / "step_0000000060" / "manifest.json").read_text())
    assert set(manifest["files"]) == {"agent.msgpack", "state.json"}


def test_run_state_round_trips_through_json():
    st = RunState.new(5)
    st.counters["offline_steps"] = 7
    st.rng.normal(size=3)
    st.evals.append({"step": 7, "success": 0.5, "phase": "offline"})
    copy = RunState.new(5)
    copy.load(json.loads(json.dumps(st.to_dict())))
    assert copy.counters == st.counters and copy.evals == st.evals and copy.step == 7
    assert list(copy.evals[0]) == ["step", "success", "phase"]  # column order survives (CSV headers)
    assert copy.rng.normal() == st.rng.normal()


def test_run_dir_claim_and_read(tiny_ogbench_dir, tmp_path):
    cfg = TrainConfig(env=TINY_TASK, dataset_dir=str(tiny_ogbench_dir), preset="quick").resolved()
    run = RunDir(tmp_path / "run")
    said = []
    assert run.claim(cfg, say=said.append) is None and said == []
    from qchunk.agents import agent_config

    acfg = agent_config(cfg.agent, cfg.preset, "puzzle-3x3")
    run.write_config(cfg, acfg, 10, 5)
    record = run.read()
    assert record.train == cfg and record.agent["num_samples"] == acfg.num_samples and record.spaces["action_dim"] == 5
    with pytest.raises(QchunkError, match="already holds a run"):
        run.claim(cfg)
    resumed = cfg.__class__(**{**cfg.__dict__, "resume": True, "progress": False})
    assert run.claim(resumed, say=said.append) is None
    assert said == [f"no intact checkpoint in {run.path} (seed 0): starting the run over from step 0"]
    with pytest.raises(QchunkError, match="no intact checkpoint"):
        run.load_agent()


def test_seed_axis_gathers_device_windows_as_the_host_batches():
    small = dict(actor_hidden_dims=(8,), critic_hidden_dims=(8,), flow_steps=2)
    agent = make_agent("qc-fql", OBS, ACT, preset="quick", domain="puzzle-3x3", seed=0, horizon=3, **small)
    ds = _offline()
    starts = np.array([[0, 8, 9, 39], [4, 17, 27, 30]], np.int32)  # windows across episode ends too
    host = [ds.chunks_at(row, 3, agent.config.discount) for row in starts]
    alone, _ = agent.update_many({k: np.stack([b[k] for b in host]) for k in host[0]})
    axis = SeedAxis([agent])
    infos = axis.update([("gather", (DeviceData(ds), starts))])
    assert int(axis.agent(0).step) == 2 and np.isfinite(float(infos[0]["critic/loss"]))
    for a, b in zip(jax.tree_util.tree_leaves(axis.agent(0).params), jax.tree_util.tree_leaves(alone.params),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("every", "scan_block", "sharded", "want"), [
    ((500, 5000, 5000), 50, False, 50), ((25, 50, 25), 50, False, 25), ((10, 50, 20), 50, False, 10),
    ((500, 5000, 5000), 1, False, 1), ((997, 997, 997), 50, False, 1), ((500, 5000, 5000), 50, True, 50),
    ((300, 300, 300), 64, True, 50),  # with shards the swap interval (1000) counts too: gcd 100, largest <= 64: 50
])
def test_offline_blocks_end_at_every_log_eval_and_checkpoint_step(every, scan_block, sharded, want):
    log, ev, ck = every
    cfg = TrainConfig(log_every=log, eval_every=ev, checkpoint_every=ck, scan_block=scan_block)
    k = offline_block(cfg, sharded)
    assert k == want
    ends, s, last = [], 0, 1234
    while s < last:
        s += offline_block_length(s, last, k)
        ends.append(s)
    assert ends[-1] == last and all(e % k == 0 or e > last - k for e in ends)
    for interval in every:
        assert set(range(interval, last + 1, interval)) <= set(ends)
