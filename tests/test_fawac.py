"""FAWAC: the advantage-weighted flow-matching loss against numpy, the weights and value by hand, acting as one flow
sample, both presets, the per-domain inv_temp of the QAM reproduction script, and offline-to-online training
through the CLI."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from conftest import TINY_TASK
from qchunk.agents import FawacAgent, agent_config, agent_config_from_dict, create_agent, make_agent
from qchunk.agents.common import integrate_flow
from qchunk.agents.fawac import FawacDraws, fawac_loss
from qchunk.agents.losses import flow_matching_loss
from qchunk.bench.update import synthetic_batch
from qchunk.cli import main

OBS, ACT, H = 6, 2, 5
TINY = dict(actor_hidden_dims=(16, 16), critic_hidden_dims=(16, 16), num_critics=3, flow_steps=3)
# The QAM reproduction script's FAWAC row (inv_temp), written out by hand.
SCRIPT_INV_TEMP = {"puzzle-3x3": 0.8, "scene": 6.4, "cube-double": 0.8, "antmaze-large": 6.4,
                   "humanoidmaze-medium": 6.4, "cube-triple": 0.8, "cube-quadruple": 0.8, "puzzle-4x4": 0.8,
                   "antmaze-giant": 0.8, "humanoidmaze-large": 0.8}


def _batch(seed=0, size=16):
    return {k: jnp.asarray(v) for k, v in synthetic_batch(size, H, OBS, ACT, 0.99, seed=seed).items()}


@pytest.mark.parametrize("weighting", ["chunk", "step"])
def test_weighted_flow_matching_is_numpys(weighting):
    rng = np.random.default_rng(0)
    v, t = rng.normal(size=(2, 8, 3, 2)).astype(np.float32)
    valid = (rng.uniform(size=(8, 3)) > 0.3).astype(np.float32)
    w = rng.uniform(0, 5, size=8).astype(np.float32)
    per_step = ((v.astype(np.float64) - t) ** 2).mean(-1)  # (B, h)
    want = (valid[:, -1] * w * per_step.mean(-1)).mean() if weighting == "chunk" else (valid * w[:, None]
                                                                                      * per_step).mean()
    got = flow_matching_loss(jnp.asarray(v), jnp.asarray(t), jnp.asarray(valid), weighting, jnp.asarray(w))
    np.testing.assert_allclose(float(got), want, rtol=1e-6)
    ones = flow_matching_loss(jnp.asarray(v), jnp.asarray(t), jnp.asarray(valid), weighting, jnp.ones(8))
    np.testing.assert_allclose(float(ones), float(flow_matching_loss(v, t, valid, weighting)), rtol=1e-6)


def test_weights_value_and_critic_by_hand():
    agent = make_agent("fawac", OBS, ACT, "quick", seed=1, inv_temp=50.0, **TINY)
    for seed in range(2):
        agent, _ = agent.update(_batch(seed))
    batch = _batch(2)
    draws = agent.update_draws(jax.random.PRNGKey(0), 16)
    assert isinstance(draws, FawacDraws) and draws.next_action.shape == (16, H * ACT)
    loss, info = fawac_loss(agent.params, agent, batch, draws)
    nets, obs, data = agent.networks, batch["observations"], batch["actions"].reshape(16, -1)
    q = np.asarray(nets.critic.apply({"params": agent.params["critic"]}, obs, data), np.float64).mean(0)
    v = np.asarray(nets.value.apply({"params": agent.params["value"]}, obs), np.float64)
    w = np.minimum(np.exp(50.0 * (q - v)), 100.0)
    np.testing.assert_allclose(float(info["actor/weight_mean"]), w.mean(), rtol=1e-4)
    assert float(info["actor/weight_max"]) <= 100.0
    target_qs = np.asarray(nets.critic.apply({"params": agent.target_params["critic"]}, obs, data), np.float64)
    valid = np.asarray(batch["valid"][:, -1])
    np.testing.assert_allclose(float(info["value/loss"]), (valid * (target_qs - v) ** 2).mean(), rtol=1e-4)
    np.testing.assert_allclose(float(loss), float(info["critic/loss"] + info["value/loss"] + info["actor/loss"]),
                               rtol=1e-6)
    # the weights and the value's target are constants: the actor term reaches only the flow
    grads = jax.jit(jax.grad(lambda p: fawac_loss(p, agent, batch, draws)[1]["actor/loss"]))(agent.params)
    for net in ("critic", "value"):
        assert all(float(jnp.max(jnp.abs(x))) == 0 for x in jax.tree_util.tree_leaves(grads[net]))


def test_acting_is_one_clipped_flow_sample():
    agent = make_agent("fawac", OBS, ACT, "quick", seed=0, **TINY)
    agent, _ = agent.update(_batch(0))
    obs = jnp.asarray(np.random.default_rng(5).normal(size=(4, OBS)), jnp.float32)
    key = jax.random.PRNGKey(3)
    want = integrate_flow(agent.networks.flow, agent.params["flow"], obs, agent.policy_noise(key, 4), 3)
    np.testing.assert_allclose(np.asarray(agent.sample_actions(obs, key)).reshape(4, -1), want, atol=1e-6)
    assert agent.sample_actions(obs[0], key).shape == (H, ACT)


@pytest.mark.slow  # preset-size networks compiled: an end-to-end smoke test
@pytest.mark.parametrize("preset", ["quick", "qam"])  # qam: 4x512, K=10
def test_create_update_act_are_finite_at_both_presets(preset):
    agent = make_agent("fawac", OBS, ACT, preset, "cube-double", seed=0)
    assert isinstance(agent, FawacAgent) and set(agent.params) == {"critic", "value", "flow"}
    agent, info = agent.update(_batch(0, size=8))
    assert all(np.isfinite(float(v)) for v in info.values())
    agents, infos = agent.update_many({k: jnp.stack([v, v]) for k, v in _batch(1, size=8).items()})
    assert infos["value/loss"].shape == (2,) and np.all(np.isfinite(np.asarray(infos["actor/loss"])))
    actions = agents.sample_actions(jnp.zeros((3, OBS)), jax.random.PRNGKey(0))
    assert actions.shape == (3, H, ACT) and np.all(np.abs(np.asarray(actions)) <= 1.0)


@pytest.mark.parametrize("domain", sorted(SCRIPT_INV_TEMP))
def test_every_preset_has_the_scripts_inv_temp_and_the_qam_protocol(domain):
    mazes = ("antmaze-large", "antmaze-giant", "humanoidmaze-medium", "humanoidmaze-large")
    for preset in ("qam", "paper", "quick"):
        c = agent_config("fawac", preset, domain)
        assert (c.inv_temp, c.max_weight, c.num_critics, c.flow_steps, c.q_agg, c.bc_weighting) == (
            SCRIPT_INV_TEMP[domain], 100.0, 10, 10, "mean", "chunk")
        assert c.horizon == (1 if domain in mazes else 5)
        assert c.discount == (0.995 if domain in mazes[1:] else 0.99)
        assert c.rho == (0.0 if "humanoid" in domain else 0.5)
    assert agent_config("fawac", "qam", domain).actor_hidden_dims == (512,) * 4
    assert agent_config("fawac", "qam", domain, inv_temp=2.0).inv_temp == 2.0  # overrides win


def test_dry_run_prints_the_resolved_config_and_writes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = TINY_TASK.replace("puzzle-3x3", "scene")
    assert main(["train", "--agent", "fawac", "--env", env, "--preset", "qam", "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["agent"]["agent"] == "fawac" and printed["agent"]["inv_temp"] == 6.4
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_trains_offline_then_online_through_the_cli(tiny_ogbench_dir, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--agent", "fawac", "--env", TINY_TASK, "--preset", "quick", "--dataset-dir",
                 str(tiny_ogbench_dir), "--offline-steps", "100", "--online-steps", "150", "--eval-every", "125",
                 "--eval-episodes", "1", "--episode-length", "30", "--start-training", "20", "--log-every", "50",
                 "--checkpoint-every", "100", "--eval-workers", "1", "--no-progress", "--actor-hidden-dims", "32",
                 "32", "--critic-hidden-dims", "32", "32", "--batch-size", "32", "--run-dir", str(run)]) == 0
    assert json.loads((run / "result.json").read_text())["finished"] is True
    rows = (run / "train.csv").read_text().splitlines()
    assert {"value/loss", "actor/weight_mean"} <= set(rows[0].split(","))
    assert any(",online," in r for r in rows[1:]) and any(",offline," in r for r in rows[1:])


def test_checkpoint_round_trip_resumes_exactly():
    # what a resume does: rebuild the agent from the stored config, load the bytes, continue
    agent = make_agent("fawac", OBS, ACT, "quick", seed=3, **TINY)
    agent, _ = agent.update(_batch(0))
    stored = json.loads(json.dumps(dataclasses.asdict(agent.config)))
    template = create_agent(agent_config_from_dict(stored), OBS, ACT, seed=99)
    restored = serialization.from_bytes(template, serialization.to_bytes(agent))
    a1, i1 = agent.update(_batch(1))
    a2, i2 = restored.update(_batch(1))
    assert {k: float(v) for k, v in i1.items()} == {k: float(v) for k, v in i2.items()}
    for x, y in zip(jax.tree_util.tree_leaves(a1.params), jax.tree_util.tree_leaves(a2.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
