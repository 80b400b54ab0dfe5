"""DSRL: the latent actor acts through the BC flow (checked against a hand loop), RL never moves the flow, the
latent critic and target flow, both presets, checkpoint round trips and the CLI's dry run for fedit/dsrl."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from conftest import TINY_TASK
from qchunk.agents import DsrlAgent, agent_config, agent_config_from_dict, create_agent, make_agent
from qchunk.agents.common import bc_flow_loss
from qchunk.agents.dsrl import dsrl_loss, latent_flow_params
from qchunk.agents.td import polyak_update
from qchunk.bench.update import synthetic_batch
from qchunk.cli import main

OBS, ACT, H = 6, 2, 5
P = H * ACT
# One tiny config for every test here, so the jitted update and loss compile once. tau = 1 and a large step
# make the target flow (the pre-step flow) differ visibly from the online one.
TINY = dict(actor_hidden_dims=(16, 16), critic_hidden_dims=(16, 16), num_critics=3, flow_steps=3, tau=1.0, lr=1e-2,
            noise_scale=0.7)


@jax.jit
def loss_and_grads(agent, batch, key):
    draws = agent.update_draws(key, batch["observations"].shape[0])
    return jax.value_and_grad(lambda p: dsrl_loss(p, agent, batch, draws), has_aux=True)(agent.params)


def _batch(seed=0, size=16):
    return {k: jnp.asarray(v) for k, v in synthetic_batch(size, H, OBS, ACT, 0.99, seed=seed).items()}


def _leaves_close(a, b, **tol):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tol)


def test_action_is_the_latent_flow_integrated_from_the_actors_noise():
    agent = make_agent("dsrl", OBS, ACT, "quick", seed=0, **TINY)
    for seed in range(2):
        agent, _ = agent.update(_batch(seed))
    obs = jnp.asarray(np.random.default_rng(5).normal(size=(4, OBS)), jnp.float32)
    key = jax.random.PRNGKey(11)
    nets = agent.networks
    # the latent by hand: w = noise_scale * tanh(mean + std * eps), eps the same N(0, 1) draw
    mean, log_std = (np.asarray(x, np.float64) for x in nets.actor.apply({"params": agent.params["actor"]}, obs))
    eps = np.asarray(jax.random.normal(key, mean.shape), np.float64)
    w = 0.7 * np.tanh(mean + np.exp(log_std) * eps)
    np.testing.assert_allclose(np.asarray(agent.sample_latents(obs, key)), w, atol=1e-5)
    assert np.all(np.abs(w) < 0.7)

    def hand_loop(flow_params):
        x = jnp.asarray(w, jnp.float32)
        for i in range(3):  # Euler, x += v(s, x, i/T) / T, then clip
            x = x + nets.flow.apply({"params": flow_params}, obs, x, jnp.full((1,), i / 3, jnp.float32)) / 3
        return np.clip(np.asarray(x), -1.0, 1.0)

    got = np.asarray(agent.sample_actions(obs, key)).reshape(4, P)
    np.testing.assert_allclose(got, hand_loop(agent.target_params["flow"]), atol=1e-5)
    assert np.max(np.abs(got - hand_loop(agent.params["flow"]))) > 1e-4  # the target copy, not the online flow
    np.testing.assert_allclose(np.asarray(agent.decode(obs, jnp.asarray(w, jnp.float32))), got, atol=1e-5)
    # latent_flow='online' decodes with the BC flow itself and keeps no target flow
    online = agent_config("dsrl", "quick", latent_flow="online", **TINY)
    assert latent_flow_params(online, agent.params, agent.target_params) is agent.params["flow"]
    assert set(create_agent(online, OBS, ACT).target_params) == {"critic"}


def test_actor_and_critic_updates_never_move_the_flow():
    agent = make_agent("dsrl", OBS, ACT, "quick", seed=1, **TINY)
    agent, _ = agent.update(_batch(7))  # targets apart from the online networks
    batch, key = _batch(3), jax.random.PRNGKey(4)
    _, grads = loss_and_grads(agent, batch, key)
    draws = agent.update_draws(key, 16)
    data = batch["actions"].reshape(16, -1)
    bc_grad = jax.jit(jax.grad(lambda fp: bc_flow_loss(agent.networks.flow, fp, batch, data, H, ACT, draws.bc_noise,
                                                       draws.bc_time, "chunk")))(agent.params["flow"])
    # the flow's whole gradient is the flow-matching loss's: no actor, critic or temperature term reaches it
    _leaves_close(grads["flow"], bc_grad, rtol=1e-5, atol=1e-7)
    for name in ("actor", "critic", "latent_critic"):
        assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree_util.tree_leaves(grads[name])) > 0, name
    # one update: the target flow is the Polyak average of the pre-step flow; the flow moves by Adam's step only
    new, info = agent.update(batch)
    _leaves_close(new.target_params["flow"], polyak_update(agent.params["flow"], agent.target_params["flow"], 1.0),
                  rtol=1e-6, atol=1e-7)
    assert max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree_util.tree_leaves(new.params["flow"]),
               jax.tree_util.tree_leaves(agent.params["flow"]), strict=True)) > 0  # the BC loss did train it
    assert all(np.isfinite(float(v)) for v in info.values())


def test_latent_critic_regresses_onto_the_chunk_critic_through_the_flow():
    agent = make_agent("dsrl", OBS, ACT, "quick", seed=2, **TINY)
    batch, key = _batch(1), jax.random.PRNGKey(8)
    (_, info), _ = loss_and_grads(agent, batch, key)
    w = agent.update_draws(key, 16).distill_noise
    chunks = agent.decode(batch["observations"], w)
    target = np.asarray(agent.q_values(batch["observations"], chunks), np.float64)  # (K, B)
    latent = np.asarray(agent.networks.latent_critic.apply({"params": agent.params["latent_critic"]},
                                                           batch["observations"], w), np.float64)
    assert float(info["critic/latent_distill_loss"]) == pytest.approx(np.mean((latent - target) ** 2), rel=1e-4)
    # the temperature is tuned on the latent policy's entropy towards -0.5 x h*A
    assert float(info["temperature/loss"]) == pytest.approx(float(info["actor/entropy"]) + 0.5 * P, rel=1e-4)


@pytest.mark.slow  # preset-size networks compiled: an end-to-end smoke test
@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_dsrl_creates_updates_and_acts_at_both_presets(preset):
    agent = make_agent("dsrl", OBS, ACT, preset, seed=0)
    assert isinstance(agent, DsrlAgent) and agent.config.num_critics == 10 and agent.config.latent_flow == "target"
    assert agent.config.actor_hidden_dims[0] == (256 if preset == "quick" else 512) and agent.horizon == 5
    batch = synthetic_batch(8, 5, OBS, ACT, 0.99, seed=0)
    agent, info = agent.update(batch)
    assert all(np.isfinite(float(v)) for v in info.values())
    chunk = np.asarray(agent.sample_actions(batch["observations"], jax.random.PRNGKey(0)))
    assert chunk.shape == (8, 5, ACT) and np.all(np.isfinite(chunk)) and np.all(np.abs(chunk) <= 1.0)


@pytest.mark.parametrize("name", ["fedit", "dsrl"])
def test_checkpoint_round_trip_resumes_exactly(name):
    # what a resume does: rebuild the agent from the stored config, load the bytes, continue
    tiny = TINY if name == "dsrl" else {k: v for k, v in TINY.items() if k != "noise_scale"}
    agent = make_agent(name, OBS, ACT, "quick", seed=3, **tiny)
    agent, _ = agent.update(_batch(0))
    stored = json.loads(json.dumps(dataclasses.asdict(agent.config)))
    template = create_agent(agent_config_from_dict(stored), OBS, ACT, seed=99)
    restored = serialization.from_bytes(template, serialization.to_bytes(agent))
    a1, i1 = agent.update(_batch(1))
    a2, i2 = restored.update(_batch(1))
    assert {k: float(v) for k, v in i1.items()} == {k: float(v) for k, v in i2.items()}
    _leaves_close(a1.params, a2.params, rtol=0, atol=0)


def test_per_domain_settings_follow_the_qam_reproduction_script():
    assert agent_config("fedit", "paper", "cube-triple").edit_scale == 0.3
    assert agent_config("fedit", "paper", "puzzle-4x4").edit_scale == 0.8
    assert agent_config("dsrl", "paper", "scene").noise_scale == 0.4
    assert agent_config("dsrl", "paper", "cube-quadruple").noise_scale == 1.4
    maze = agent_config("dsrl", "paper", "humanoidmaze-medium")
    assert (maze.noise_scale, maze.horizon, maze.discount, maze.rho) == (0.6, 1, 0.995, 0.0)
    assert agent_config("fedit", "quick", "robomimic").edit_scale == 0.2  # not in the QAM paper: the default
    assert agent_config("fedit", "paper", "cube-triple", edit_scale=0.05).edit_scale == 0.05  # overrides win


@pytest.mark.parametrize(("name", "field", "value"), [("fedit", "edit_scale", 0.3), ("dsrl", "noise_scale", 1.4)])
def test_dry_run_prints_the_resolved_config_and_writes_nothing(name, field, value, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = TINY_TASK.replace("puzzle-3x3", "cube-triple")
    assert main(["train", "--agent", name, "--env", env, "--preset", "quick", "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["agent"]["agent"] == name and printed["agent"][field] == value
    assert printed["agent"]["num_critics"] == 10 and printed["agent"]["rho"] == 0.5
    assert list(tmp_path.iterdir()) == []
