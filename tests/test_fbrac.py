"""FBRAC: the policy objective differentiated through the flow's Euler steps (against a hand loop and finite
differences), the loss against numpy, best-of-N acting, both presets, the QAM reproduction script's per-domain
values, a checkpoint round trip, the CLI's dry run and an offline-to-online run."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from conftest import TINY_TASK
from qchunk.agents import FBracAgent, agent_config, agent_config_from_dict, create_agent, make_agent
from qchunk.agents.common import flow_policy_q
from qchunk.agents.fbrac import fbrac_loss
from qchunk.bench.update import synthetic_batch
from qchunk.cli import main

OBS, ACT, H = 6, 2, 5
P = H * ACT
TINY = dict(actor_hidden_dims=(16, 16), critic_hidden_dims=(16, 16), num_critics=3, flow_steps=3, lr=1e-2, alpha=2.0)


def _batch(seed=0, size=16):
    return {k: jnp.asarray(v) for k, v in synthetic_batch(size, H, OBS, ACT, 0.99, seed=seed).items()}


def _hand_flow(nets, flow_params, obs, noise, steps=3):
    x = noise
    for i in range(steps):  # Euler, x += v(s, x, i/T) / T, then clip
        x = x + nets.flow.apply({"params": flow_params}, obs, x, jnp.full((1,), i / steps, jnp.float32)) / steps
    return jnp.clip(x, -1.0, 1.0)


def test_the_policy_q_backpropagates_through_every_euler_step():
    agent = make_agent("fbrac", OBS, ACT, "quick", seed=0, **TINY)
    nets, obs = agent.networks, _batch(0)["observations"]
    noise = jax.random.normal(jax.random.PRNGKey(1), (16, P)) * 0.3  # inside the box: the clip passes gradients

    def by_hand(flow_params):
        qs = nets.critic.apply({"params": agent.params["critic"]}, obs, _hand_flow(nets, flow_params, obs, noise))
        return jnp.sum(jnp.mean(qs, axis=0))

    def ours(flow_params):
        return jnp.sum(flow_policy_q(nets.flow, flow_params, nets.critic, agent.params["critic"], obs, noise, 3))

    flow = agent.params["flow"]
    assert float(ours(flow)) == pytest.approx(float(by_hand(flow)), rel=1e-5)
    g_ours, g_hand = jax.grad(ours)(flow), jax.grad(by_hand)(flow)
    for x, y in zip(jax.tree_util.tree_leaves(g_ours), jax.tree_util.tree_leaves(g_hand), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)
    # a directional finite difference (float64 arithmetic not needed: a large, smooth step)
    direction = jax.tree_util.tree_map(lambda x: jax.random.normal(jax.random.PRNGKey(2), x.shape) * 1e-3, flow)
    shifted = jax.tree_util.tree_map(lambda x, d: x + d, flow, direction)
    back = jax.tree_util.tree_map(lambda x, d: x - d, flow, direction)
    fd = (float(ours(shifted)) - float(ours(back))) / 2
    dot = sum(float(jnp.sum(g * d)) for g, d in zip(jax.tree_util.tree_leaves(g_ours),
                                                      jax.tree_util.tree_leaves(direction), strict=True))
    assert fd == pytest.approx(dot, rel=2e-2)
    # the critic is held fixed
    g_critic = jax.grad(lambda c: jnp.sum(flow_policy_q(nets.flow, flow, nets.critic, c, obs, noise, 3)))(
        agent.params["critic"])
    assert all(float(jnp.max(jnp.abs(x))) == 0.0 for x in jax.tree_util.tree_leaves(g_critic))


def test_loss_against_numpy():
    agent = make_agent("fbrac", OBS, ACT, "quick", seed=0, **TINY)
    agent, _ = agent.update(_batch(5))
    batch, draws = _batch(1), agent.update_draws(jax.random.PRNGKey(3), 16)
    loss, info = fbrac_loss(agent.params, agent, batch, draws)
    nets, b = agent.networks, {k: np.asarray(v, np.float64) for k, v in batch.items()}
    data = b["actions"].reshape(16, P)
    x0, t = np.asarray(draws.bc_noise, np.float64), np.asarray(draws.bc_time, np.float64)
    v = np.asarray(nets.flow.apply({"params": agent.params["flow"]}, batch["observations"],
                                   jnp.asarray((1 - t) * x0 + t * data, jnp.float32), jnp.asarray(t, jnp.float32)))
    bc = np.mean(np.mean((v - (data - x0)) ** 2, axis=-1) * b["valid"][:, -1])
    a = _hand_flow(nets, agent.params["flow"], batch["observations"], draws.actor_noise)
    q = np.asarray(nets.critic.apply({"params": agent.params["critic"]}, batch["observations"], a), np.float64).mean(0)
    assert float(info["actor/bc_flow_loss"]) == pytest.approx(bc, rel=1e-4)
    assert float(info["actor/loss"]) == pytest.approx(bc - np.mean(q) / 2.0, rel=1e-4)
    assert float(loss) == pytest.approx(float(info["critic/loss"]) + bc - np.mean(q) / 2.0, rel=1e-4)


def test_best_of_n_acts_with_the_highest_mean_q_sample():
    agent = make_agent("fbrac", OBS, ACT, "quick", seed=2, num_samples=4, **TINY)
    obs = _batch(2)["observations"][:5]
    noise = agent.policy_noise(jax.random.PRNGKey(9), 5)  # (5, 4, P)
    nets = agent.networks
    cands = np.stack([np.asarray(_hand_flow(nets, agent.params["flow"], obs, noise[:, n])) for n in range(4)], 1)
    scores = np.stack([np.asarray(nets.critic.apply({"params": agent.params["critic"]}, obs, jnp.asarray(cands[:, n])))
                       .mean(0) for n in range(4)], 1)
    want = cands[np.arange(5), scores.argmax(1)]
    np.testing.assert_allclose(np.asarray(agent.act(agent.params, obs, noise)), want, atol=1e-5)


@pytest.mark.slow  # preset-size networks compiled: an end-to-end smoke test
@pytest.mark.parametrize("preset", ["quick", "qam"])
def test_fbrac_creates_updates_and_acts_at_both_presets(preset):
    agent = make_agent("fbrac", OBS, ACT, preset, "cube-quadruple", seed=0)
    assert isinstance(agent, FBracAgent) and agent.config.num_critics == 10 and agent.config.alpha == 1.0
    assert agent.config.actor_hidden_dims[0] == (256 if preset == "quick" else 512) and agent.horizon == 5
    batch = synthetic_batch(8, 5, OBS, ACT, 0.99, seed=0)
    agent, info = agent.update(batch)
    assert all(np.isfinite(float(v)) for v in info.values())
    chunk = np.asarray(agent.sample_actions(batch["observations"], jax.random.PRNGKey(0)))
    assert chunk.shape == (8, 5, ACT) and np.all(np.isfinite(chunk)) and np.all(np.abs(chunk) <= 1.0)


# FBRAC's row of the QAM reproduction script: alpha per domain.
SCRIPT = {"puzzle-3x3": 0.03, "scene": 100.0, "cube-double": 0.1, "cube-triple": 0.03, "cube-quadruple": 1.0,
          "puzzle-4x4": 0.3, "antmaze-large": 0.1, "antmaze-giant": 0.1, "humanoidmaze-medium": 30.0,
          "humanoidmaze-large": 10.0}


@pytest.mark.parametrize("domain", sorted(SCRIPT))
def test_per_domain_values_follow_the_qam_reproduction_script(domain):
    for preset in ("qam", "paper", "quick"):
        c = agent_config("fbrac", preset, domain)
        assert c.alpha == SCRIPT[domain]
        assert (c.horizon, c.num_critics, c.flow_steps, c.num_samples, c.bc_weighting) == (
            1 if "maze" in domain else 5, 10, 10, 1, "chunk")
        assert c.rho == (0.0 if "humanoid" in domain else 0.5)
    assert agent_config("fbrac", "quick", "robomimic").alpha == 100.0  # off the QAM table: the release's default


def test_checkpoint_round_trip_resumes_exactly():
    agent = make_agent("fbrac", OBS, ACT, "quick", seed=3, **TINY)
    agent, _ = agent.update(_batch(0))
    stored = json.loads(json.dumps(dataclasses.asdict(agent.config)))
    restored = serialization.from_bytes(create_agent(agent_config_from_dict(stored), OBS, ACT, seed=99),
                                        serialization.to_bytes(agent))
    a1, i1 = agent.update(_batch(1))
    a2, i2 = restored.update(_batch(1))
    assert {k: float(v) for k, v in i1.items()} == {k: float(v) for k, v in i2.items()}
    for x, y in zip(jax.tree_util.tree_leaves(a1.params), jax.tree_util.tree_leaves(a2.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_dry_run_prints_the_resolved_config_and_writes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = TINY_TASK.replace("puzzle-3x3", "scene")
    assert main(["train", "--agent", "fbrac", "--env", env, "--preset", "qam", "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["agent"]["agent"] == "fbrac" and printed["agent"]["alpha"] == 100.0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cli_trains_offline_then_online(tiny_ogbench_dir, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--agent", "fbrac", "--env", TINY_TASK, "--preset", "quick", "--dataset-dir",
                 str(tiny_ogbench_dir), "--offline-steps", "150", "--online-steps", "150", "--start-training", "20",
                 "--eval-every", "150", "--eval-episodes", "1", "--episode-length", "30", "--log-every", "50",
                 "--checkpoint-every", "100", "--eval-workers", "1", "--no-progress", "--actor-hidden-dims", "32",
                 "32", "--critic-hidden-dims", "32", "32", "--batch-size", "32", "--run-dir", str(run)]) == 0
    rows = (run / "train.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert {"critic/loss", "actor/bc_flow_loss", "actor/q_loss"} <= set(header)
    phases = [r.split(",")[header.index("phase")] for r in rows[1:]]
    assert "offline" in phases and "online" in phases
    assert json.loads((run / "result.json").read_text())["finished"] is True
    # the newest checkpoint re-evaluates (the agent rebuilt from config.json)
    assert main(["eval", str(run), "--episodes", "1", "--workers", "1", "--episode-length", "20"]) == 0
    assert any((run / "eval").rglob("summary.json"))
