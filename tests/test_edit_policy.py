"""The tanh-Gaussian edit policy (FEdit, QAM-E) against numpy, its SAC losses, the pessimistic target, and the
fedit agent at both presets."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qchunk.agents import FEditAgent, agent_config, make_agent
from qchunk.agents.common import bc_flow_loss, chunk_critic_objective
from qchunk.agents.edit import edit_actor_objective, edit_chunks, edit_noise, edit_policy, fedit_actions, fedit_loss
from qchunk.agents.losses import temperature_loss
from qchunk.agents.td import pessimistic_ensemble
from qchunk.bench.update import synthetic_batch
from qchunk.networks import CriticEnsemble

OBS, ACT, H = 6, 2, 5
P = H * ACT
TINY = dict(actor_hidden_dims=(16, 16), critic_hidden_dims=(16, 16), num_critics=3, flow_steps=2,
            init_temperature=0.5)
"""One tiny fedit config for the tests here (the jitted functions compile once)."""


def np_log_prob_of_pre_tanh(u, mean, log_std):
    """log pi(tanh u) by hand in float64: the Gaussian density of u minus log |d tanh / du| = log(1 - tanh^2)."""
    std = np.exp(log_std)
    log_normal = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    return np.sum(log_normal - np.log(1.0 - np.tanh(u) ** 2), axis=-1)


def _policy_and_inputs(seed=0):
    policy = edit_policy((16, 16), P)
    rng = np.random.default_rng(seed)
    obs = jnp.asarray(rng.normal(size=(7, OBS)), jnp.float32)
    base = jnp.asarray(rng.uniform(-1, 1, (7, P)), jnp.float32)
    params = policy.init(jax.random.PRNGKey(seed), obs, base)["params"]
    return policy, params, obs, base


def test_edit_chunks_log_prob_and_actions_match_numpy():
    policy, params, obs, base = _policy_and_inputs()
    key, scale = jax.random.PRNGKey(4), 0.3
    eps = np.asarray(jax.random.normal(key, (7, P)), np.float64)
    actions, log_prob = edit_chunks(policy, params, obs, base, jnp.asarray(eps, jnp.float32), scale)
    # by hand: the head's mean/log-std, the same N(0, 1) draw, the squashed edit and its density
    mean, log_std = (np.asarray(x, np.float64) for x in policy.apply({"params": params}, obs, base))
    u = mean + np.exp(log_std) * eps
    expected = np.clip(np.asarray(base, np.float64) + scale * np.tanh(u), -1.0, 1.0)
    np.testing.assert_allclose(np.asarray(actions), expected, atol=1e-5)
    np.testing.assert_allclose(np.asarray(log_prob), np_log_prob_of_pre_tanh(u, mean, log_std), rtol=1e-4, atol=1e-3)
    assert np.all(np.abs(np.asarray(actions) - np.asarray(base)) <= scale + 1e-6)  # never more than the scale
    assert log_prob.shape == (7,)


def test_edit_policy_reads_the_base_chunk():
    policy, params, obs, base = _policy_and_inputs()
    m1, _ = policy.apply({"params": params}, obs, base)
    m2, _ = policy.apply({"params": params}, obs, -base)
    assert float(jnp.max(jnp.abs(m1 - m2))) > 1e-3
    # broadcasting: one state projection for N base chunks equals the tiled call
    tiled = policy.apply({"params": params}, jnp.repeat(obs[:, None], 3, 1), jnp.repeat(base[:, None], 3, 1))[0]
    once = policy.apply({"params": params}, obs[:, None], jnp.repeat(base[:, None], 3, 1))[0]
    np.testing.assert_allclose(np.asarray(once), np.asarray(tiled), atol=1e-5)


def test_edit_actor_objective_is_sac_loss_and_reaches_only_the_edit_policy():
    policy, params, obs, base = _policy_and_inputs(1)
    critic = CriticEnsemble((16,), 3)
    critic_params = critic.init(jax.random.PRNGKey(2), obs, base)["params"]
    eps, temperature = jax.random.normal(jax.random.PRNGKey(5), base.shape), jnp.asarray(0.7)

    def loss(edit_params, critic_params, base):
        return edit_actor_objective(policy, edit_params, critic, critic_params, obs, base, eps, 0.2, temperature)

    value, terms = loss(params, critic_params, base)
    qs = np.asarray(critic.apply({"params": critic_params}, obs, terms["actions"]), np.float64)  # (K, B)
    expected = np.mean(0.7 * np.asarray(terms["log_prob"], np.float64) - qs.mean(axis=0))
    assert float(value) == pytest.approx(expected, rel=1e-5, abs=1e-5)
    g_edit, g_critic, g_base = jax.jit(jax.grad(lambda *a: loss(*a)[0], argnums=(0, 1, 2)))(params, critic_params,
                                                                                          base)
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree_util.tree_leaves(g_edit)) > 0
    assert all(float(jnp.max(jnp.abs(x))) == 0.0 for x in jax.tree_util.tree_leaves(g_critic))
    assert float(jnp.max(jnp.abs(g_base))) == 0.0


def test_temperature_loss_matches_numpy():
    rng = np.random.default_rng(3)
    log_prob = rng.normal(2.0, 1.5, 64)
    for log_t, target in ((0.0, -5.0), (math.log(0.05), 3.0)):
        got = temperature_loss(jnp.asarray(log_t, jnp.float32), jnp.asarray(log_prob, jnp.float32), target)
        assert float(got) == pytest.approx(math.exp(log_t) * np.mean(-log_prob - target), rel=1e-5)
        # d/d log t equals the loss itself; no gradient into the log-probabilities
        g_t, g_lp = jax.grad(temperature_loss, argnums=(0, 1))(jnp.asarray(log_t), jnp.asarray(log_prob), target)
        assert float(g_t) == pytest.approx(float(got), rel=1e-5)
        assert float(jnp.max(jnp.abs(g_lp))) == 0.0


def test_pessimistic_target_matches_numpy():
    rng = np.random.default_rng(0)
    qs = rng.normal(size=(10, 8))
    got = np.asarray(pessimistic_ensemble(jnp.asarray(qs, jnp.float32), 0.5))
    np.testing.assert_allclose(got, qs.mean(0) - 0.5 * qs.std(0, ddof=0), rtol=1e-5, atol=1e-5)
    # the chunked TD target uses it when rho > 0
    critic = CriticEnsemble((8,), 4)
    batch = {k: jnp.asarray(v, jnp.float32) for k, v in synthetic_batch(8, H, OBS, ACT, 0.99, seed=2).items()}
    cp = critic.init(jax.random.PRNGKey(0), batch["observations"], batch["actions"].reshape(8, -1))["params"]
    tp = critic.init(jax.random.PRNGKey(1), batch["observations"], batch["actions"].reshape(8, -1))["params"]
    nxt = jnp.asarray(rng.uniform(-1, 1, (8, P)), jnp.float32)
    _, terms = chunk_critic_objective(critic, cp, tp, batch, nxt, discount=0.99, q_agg="mean", chunked=True, rho=0.8)
    next_qs = np.asarray(critic.apply({"params": tp}, batch["next_observations"][:, -1], nxt), np.float64)
    expected = (np.asarray(batch["rewards"][:, -1]) + 0.99**H * np.asarray(batch["masks"][:, -1])
                * (next_qs.mean(0) - 0.8 * next_qs.std(0)))
    np.testing.assert_allclose(np.asarray(terms["target"]), expected, rtol=1e-5, atol=1e-5)


def test_fedit_update_terms_and_temperature_loss_match_numpy():
    agent = make_agent("fedit", OBS, ACT, "quick", seed=0, **TINY)
    batch = {k: jnp.asarray(v) for k, v in synthetic_batch(16, H, OBS, ACT, 0.99, seed=1).items()}
    draws = agent.update_draws(jax.random.PRNGKey(9), 16)
    loss = jax.value_and_grad(lambda p: fedit_loss(p, agent, batch, draws), has_aux=True)
    (_, info), grads = jax.jit(loss)(agent.params)
    entropy = float(info["actor/entropy"])
    # the temperature is tuned on the edit's entropy towards -0.5 x the chunk's h*A numbers
    assert float(info["temperature/loss"]) == pytest.approx(0.5 * (entropy - (-0.5 * P)), rel=1e-4)
    assert 0.0 < float(info["actor/edit_abs_mean"]) <= 0.2  # the default edit scale bounds the edit
    # the edit policy's loss reaches neither the flow nor the critic: their gradients are the BC / TD terms'
    data = batch["actions"].reshape(16, -1)
    bc_grad = jax.jit(jax.grad(lambda fp: bc_flow_loss(agent.networks.flow, fp, batch, data, H, ACT, draws.bc_noise,
                                                       draws.bc_time, "chunk")))(agent.params["flow"])
    for got, want in zip(jax.tree_util.tree_leaves(grads["flow"]), jax.tree_util.tree_leaves(bc_grad), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-7)


@pytest.mark.slow  # preset-size networks compiled: an end-to-end smoke test
@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_fedit_creates_updates_and_acts_at_both_presets(preset):
    agent = make_agent("fedit", OBS, ACT, preset, seed=0)
    assert isinstance(agent, FEditAgent) and agent.config.num_critics == 10 and agent.config.rho == 0.5
    width = 256 if preset == "quick" else 512
    assert agent.config.actor_hidden_dims[0] == width and agent.horizon == 5
    batch = synthetic_batch(8, 5, OBS, ACT, 0.99, seed=0)
    before = agent.params["edit"]
    agent, info = agent.update(batch)
    assert all(np.isfinite(float(v)) for v in info.values())
    assert float(jnp.max(jnp.abs(jax.tree_util.tree_leaves(agent.params["edit"])[0]
                                 - jax.tree_util.tree_leaves(before)[0]))) > 0
    chunk = np.asarray(agent.sample_actions(batch["observations"][0], jax.random.PRNGKey(0)))
    assert chunk.shape == (5, ACT) and np.all(np.isfinite(chunk)) and np.all(np.abs(chunk) <= 1.0)


def test_fedit_acts_with_the_edited_flow_chunk_and_best_of_n():
    agent = make_agent("fedit", OBS, ACT, "quick", seed=1, **TINY)
    obs = jnp.asarray(np.random.default_rng(0).normal(size=(4, OBS)), jnp.float32)
    key = jax.random.PRNGKey(3)
    # N = 1: the flow's Euler solution from normal(k_noise) edited with the edit noise of the second key, by hand
    k_noise, _ = jax.random.split(key)
    nets = agent.networks
    x = jax.random.normal(k_noise, (4 * P,)).reshape(4, 1, P)
    for i in range(2):
        x = x + nets.flow.apply({"params": agent.params["flow"]}, obs[:, None], x, jnp.full((1,), i / 2)) / 2
    base = jnp.clip(x, -1, 1)
    edit_eps = edit_noise(key, 4, 1, P).edit
    expected, _ = edit_chunks(nets.edit, agent.params["edit"], obs[:, None], base, edit_eps, 0.2)
    got = agent.sample_actions(obs, key)
    np.testing.assert_allclose(np.asarray(got).reshape(4, P), np.asarray(expected[:, 0]), atol=1e-5)
    # N = 4: the kept chunk is the candidate with the highest ensemble-mean online Q
    config = agent_config("fedit", "quick", num_samples=4, **TINY)
    x = jax.random.normal(k_noise, (4 * 4 * P,)).reshape(4, 4, P)
    for i in range(2):
        x = x + nets.flow.apply({"params": agent.params["flow"]}, obs[:, None], x, jnp.full((1,), i / 2)) / 2
    noise = edit_noise(key, 4, 4, P)
    candidates, _ = edit_chunks(nets.edit, agent.params["edit"], obs[:, None], jnp.clip(x, -1, 1), noise.edit, 0.2)
    q = np.asarray(nets.critic.apply({"params": agent.params["critic"]}, obs[:, None], candidates)).mean(0)
    expected = np.asarray(candidates)[np.arange(4), q.argmax(-1)]
    got = jax.jit(fedit_actions, static_argnums=(0, 1))(nets, config, agent.params, obs, noise)
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)
