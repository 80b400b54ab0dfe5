"""The RLPD family: tanh-Gaussian maths against numpy, temperature tuning, symmetric sampling, BC term."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qchunk.agents import agent_config, make_agent
from qchunk.agents.losses import behaviour_log_likelihood, temperature_loss
from qchunk.agents.sac_agent import sac_loss
from qchunk.bench.update import synthetic_batch
from qchunk.data import Dataset, ReplayBuffer
from qchunk.data.mixing import mixed_batch_sizes, sample_mixed_chunks
from qchunk.errors import QchunkError
from qchunk.networks import tanh_gaussian_log_prob, tanh_gaussian_sample

OBS, ACT = 6, 2
TINY = dict(actor_hidden_dims=(32, 32), critic_hidden_dims=(32, 32), num_critics=3)


def np_tanh_gaussian_log_prob(mean, log_std, actions):
    """Direct change of variables in float64: log N(atanh a; mean, std) - log(1 - a^2)."""
    u = np.arctanh(actions)
    std = np.exp(log_std)
    log_normal = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    return log_normal - np.log(1 - actions**2)


def test_tanh_gaussian_log_prob_matches_numpy():
    rng = np.random.default_rng(0)
    mean = rng.normal(0, 0.7, (5, 4)).astype(np.float32)
    log_std = rng.uniform(-1.5, 0.5, (5, 4)).astype(np.float32)
    actions = rng.uniform(-0.95, 0.95, (5, 4)).astype(np.float32)
    got = np.asarray(tanh_gaussian_log_prob(jnp.asarray(mean), jnp.asarray(log_std), jnp.asarray(actions)))
    np.testing.assert_allclose(got, np_tanh_gaussian_log_prob(mean, log_std, actions.astype(np.float64)), rtol=1e-5,
                               atol=1e-5)
    # the sampler reports the density of the action it returns
    sampled, log_probs = tanh_gaussian_sample(jnp.asarray(mean), jnp.asarray(log_std), jax.random.PRNGKey(3))
    sampled, log_probs = np.asarray(sampled, np.float64), np.asarray(log_probs)
    assert np.all(np.abs(sampled) < 1)
    np.testing.assert_allclose(log_probs, np_tanh_gaussian_log_prob(mean, log_std, sampled), rtol=1e-3, atol=1e-3)


def test_tanh_gaussian_density_integrates_to_one():
    grid = np.linspace(-1 + 1e-6, 1 - 1e-6, 200_001)
    for mean, log_std in ((0.0, 0.0), (0.8, -1.0), (-1.5, 0.3)):
        density = np.exp(np.asarray(tanh_gaussian_log_prob(jnp.full_like(grid, mean), jnp.full_like(grid, log_std),
                                                           jnp.asarray(grid, jnp.float32)), np.float64))
        assert abs(np.trapezoid(density, grid) - 1.0) < 2e-3


def test_temperature_loss_gradient_sign():
    log_prob = jnp.asarray([1.0, 3.0])  # entropy -2 on average
    grad = jax.grad(temperature_loss)(jnp.asarray(0.0), log_prob, -1.0)
    assert float(grad) == pytest.approx(-2.0 - (-1.0))  # entropy below target: raise the temperature
    assert float(temperature_loss(jnp.asarray(math.log(2.0)), log_prob, -1.0)) == pytest.approx(2.0 * -1.0)


@pytest.mark.parametrize(("target", "direction"), [(-20.0, -1), (20.0, +1)])
def test_temperature_moves_toward_the_target_entropy(target, direction):
    # entropy of a fresh 2-dim policy is about 2 nats: far above -20 (temperature falls), below +20 (rises)
    agent = make_agent("rlpd", OBS, ACT, preset="quick", seed=0, target_entropy_per_dim=target / ACT, **TINY)
    batch = synthetic_batch(32, 1, OBS, ACT, 0.99, seed=1)
    start = float(agent.temperature)
    for _ in range(20):
        agent, info = agent.update(batch)
    assert start == pytest.approx(1.0)
    assert direction * (float(agent.temperature) - start) > 0.003  # Adam at lr 3e-4 for 20 steps: ~0.006
    assert np.isfinite(float(info["temperature/loss"]))


def _marked(size, observation_value, episode_len):
    terminals = np.zeros(size, np.float32)
    terminals[episode_len - 1 :: episode_len] = 1
    return {"observations": np.full((size, OBS), observation_value, np.float32),
            "actions": np.zeros((size, ACT), np.float32), "rewards": np.zeros(size, np.float32),
            "terminals": terminals, "masks": np.ones(size, np.float32),
            "next_observations": np.full((size, OBS), observation_value, np.float32)}


@pytest.mark.parametrize(("batch_size", "ratio", "expected"), [(256, 0.5, (128, 128)), (7, 0.5, (4, 3)),
                                                               (10, 0.0, (0, 10)), (10, 0.25, (2, 8))])
def test_symmetric_batch_composition_is_exact(batch_size, ratio, expected):
    assert mixed_batch_sizes(batch_size, ratio) == expected
    offline = Dataset.from_dict(_marked(300, 1.0, 30))
    online = ReplayBuffer(50, OBS, ACT)
    for row in range(40):
        online.add(np.full(OBS, -1.0), np.zeros(ACT), 0.0, row % 20 == 19, 1.0, np.full(OBS, -1.0))
    batch = sample_mixed_chunks(offline, online, batch_size, 5, 0.99, np.random.default_rng(0), ratio)
    n_off = expected[0]
    assert batch["observations"].shape == (batch_size, OBS) and batch["actions"].shape == (batch_size, 5, ACT)
    assert np.all(batch["observations"][:n_off] == 1.0) and np.all(batch["observations"][n_off:] == -1.0)
    assert np.all(batch["next_observations"][:n_off] == 1.0) and np.all(batch["next_observations"][n_off:] == -1.0)
    assert online.size == 40  # sampling never moves offline rows into the online buffer


def _loss(params, agent, batch, key):
    return sac_loss(params, agent, batch, agent.update_draws(key, batch["observations"].shape[0]))


def _grads(agent, batch, key):
    return jax.grad(lambda p: _loss(p, agent, batch, key)[0])(agent.params)


@pytest.mark.slow
def test_bc_term_is_zero_at_coefficient_zero_and_changes_the_actor_gradient():
    batch = {k: jnp.asarray(v) for k, v in synthetic_batch(16, 5, OBS, ACT, 0.99, seed=4).items()}
    batch["valid"] = batch["valid"].at[:5, 3:].set(0.0)  # five windows cross an episode end
    key = jax.random.PRNGKey(7)
    plain = make_agent("rlpd-ac", OBS, ACT, preset="quick", seed=2, **TINY)
    zero = make_agent("qc-rlpd", OBS, ACT, preset="quick", seed=2, bc_coef=0.0, **TINY)
    bc = make_agent("qc-rlpd", OBS, ACT, preset="quick", seed=2, **TINY)
    assert bc.config.bc_coef == 0.01
    g_plain, g_zero, g_bc = (_grads(a, batch, key) for a in (plain, zero, bc))
    for a, b in zip(jax.tree_util.tree_leaves(g_plain), jax.tree_util.tree_leaves(g_zero), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the BC term only reaches the actor
    for a, b in zip(jax.tree_util.tree_leaves(g_plain["critic"]), jax.tree_util.tree_leaves(g_bc["critic"]),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    diff = jax.tree_util.tree_map(lambda a, b: float(jnp.max(jnp.abs(a - b))), g_plain["actor"], g_bc["actor"])
    assert max(jax.tree_util.tree_leaves(diff)) > 1e-6
    # and it is -0.01 x the log-likelihood of the whole data chunk, steps past an episode end included (the QC
    # code); bc_mask "chunk" (the QAM code) drops a window crossing an episode end, "step" only its outside steps
    data = batch["actions"].reshape(16, -1)
    mean, log_std = bc.networks.actor.apply({"params": bc.params["actor"]}, batch["observations"])
    per_dim = np.asarray(tanh_gaussian_log_prob(mean, log_std, data)).reshape(16, 5, ACT)
    valid = np.asarray(batch["valid"])
    assert (valid[:, -1] == 0).any()
    expected = {"none": float(np.mean(per_dim.sum((1, 2)))),
                "chunk": float(np.mean(valid[:, -1] * per_dim.sum((1, 2)))),
                "step": float(np.mean(np.sum(valid * per_dim.sum(-1), -1)))}
    assert len({round(v, 3) for v in expected.values()}) == 3
    for mask, want in expected.items():
        agent = bc if mask == "none" else make_agent("qc-rlpd", OBS, ACT, preset="quick", seed=2, bc_mask=mask,
                                                      **TINY)
        assert agent.config.bc_mask == mask
        _, info = _loss(agent.params, agent, batch, key)
        assert float(info["actor/bc_log_likelihood"]) == pytest.approx(want, rel=1e-5), mask
    assert float(behaviour_log_likelihood(per_dim, batch["valid"])) == pytest.approx(expected["step"], rel=1e-5)
    # clipped to +-(1 - 1e-5) as the authors': a data action at the bound has a finite log-likelihood
    at_bound = {**batch, "actions": batch["actions"].at[:, 0, 0].set(1.0)}
    _, info = _loss(bc.params, bc, at_bound, key)
    assert np.isfinite(float(info["actor/bc_log_likelihood"]))


def test_critic_target_has_no_entropy_backup_by_default():
    batch = {k: jnp.asarray(v) for k, v in synthetic_batch(8, 5, OBS, ACT, 0.99, seed=5).items()}
    key = jax.random.PRNGKey(1)
    plain = make_agent("rlpd-ac", OBS, ACT, preset="quick", seed=3, **TINY)
    backup = make_agent("rlpd-ac", OBS, ACT, preset="quick", seed=3, backup_entropy=True, **TINY)
    _, info_plain = _loss(plain.params, plain, batch, key)
    _, info_backup = _loss(backup.params, backup, batch, key)
    # same a' and same target critics: the bonus -t * log pi(a'|s') is the only difference
    assert float(info_plain["critic/target_mean"]) != pytest.approx(float(info_backup["critic/target_mean"]))
    assert float(info_plain["actor/q_mean"]) == pytest.approx(float(info_backup["actor/q_mean"]))


def _constant_policy(agent, mean, log_std):
    """``agent`` with the actor's heads replaced by constants: ``mean(s) = mean``, ``log_std(s) = log_std``."""
    actor = dict(agent.params["actor"])
    for head, value in (("mean", mean), ("log_std", log_std)):
        actor[head] = {"kernel": jnp.zeros_like(actor[head]["kernel"]),
                       "bias": jnp.full_like(actor[head]["bias"], value)}
    return agent.replace(params={**agent.params, "actor": actor})


def _gauss_hermite_tanh_moments(mean, std, order=80):
    """``E[tanh(u)]`` and ``sd[tanh(u)]`` for ``u ~ N(mean, std**2)`` by Gauss-Hermite quadrature."""
    x, w = np.polynomial.hermite_e.hermegauss(order)
    w = w / w.sum()
    values = np.tanh(mean + std * x)
    first = float(np.sum(w * values))
    return first, float(np.sqrt(np.sum(w * values**2) - first**2))


def test_eval_actions_sample_the_policy_by_default():
    agent = make_agent("rlpd-ac", OBS, ACT, preset="quick", seed=0, **TINY)
    assert agent.config.eval_policy == "sample"
    obs = jnp.ones((3, OBS))
    e1 = np.asarray(agent.eval_actions(obs, jax.random.PRNGKey(0)))
    e2 = np.asarray(agent.eval_actions(obs, jax.random.PRNGKey(1)))
    assert e1.shape == (3, 5, ACT) and np.abs(e1 - e2).min() > 0  # every number differs between keys
    # exactly the exploration draw for the same key
    np.testing.assert_array_equal(e1, np.asarray(agent.sample_actions(obs, jax.random.PRNGKey(0))))
    single = agent.eval_actions(jnp.ones(OBS), jax.random.PRNGKey(0))
    assert single.shape == (5, ACT)
    # with mean 1 and std 1 everywhere the draws follow tanh(N(1, 1)): E = 0.61, not tanh(1) = 0.76
    constant = _constant_policy(agent, 1.0, 0.0)
    draws = np.asarray(constant.eval_actions(jnp.ones((4000, OBS)), jax.random.PRNGKey(2))).reshape(-1)
    expected_mean, expected_sd = _gauss_hermite_tanh_moments(1.0, 1.0)
    assert abs(draws.mean() - expected_mean) < 0.01  # 40,000 draws: standard error 0.002
    assert abs(draws.std() - expected_sd) < 0.01
    assert abs(expected_mean - math.tanh(1.0)) > 0.1
    assert np.all(np.abs(draws) <= 1)


def test_eval_actions_mean_option_is_the_deterministic_squashed_mean():
    agent = make_agent("rlpd-ac", OBS, ACT, preset="quick", seed=0, eval_policy="mean", **TINY)
    obs = jnp.asarray(np.random.default_rng(0).standard_normal((3, OBS)), jnp.float32)
    a1 = agent.eval_actions(obs, jax.random.PRNGKey(0))
    a2 = agent.eval_actions(obs, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(np.asarray(a1), np.asarray(a2))
    mean, _ = agent.networks.actor.apply({"params": agent.params["actor"]}, obs)
    np.testing.assert_allclose(np.asarray(a1).reshape(3, -1), np.tanh(np.asarray(mean)), rtol=1e-6)
    constant = _constant_policy(agent, 1.0, 0.0)
    np.testing.assert_allclose(np.asarray(constant.eval_actions(obs, jax.random.PRNGKey(5))), math.tanh(1.0),
                               rtol=1e-6)
    # exploration still samples
    s1 = agent.sample_actions(obs, jax.random.PRNGKey(0))
    s2 = agent.sample_actions(obs, jax.random.PRNGKey(1))
    assert s1.shape == (3, 5, ACT) and not np.allclose(np.asarray(s1), np.asarray(s2))


def test_eval_policy_is_validated_and_a_cli_flag():
    with pytest.raises(QchunkError, match="eval_policy must be 'sample' or 'mean'"):
        agent_config("rlpd", eval_policy="greedy")
    with pytest.raises(QchunkError, match="eval_policy"):
        agent_config("qc", eval_policy="mean")  # a SAC-family field only
    proc = subprocess.run([sys.executable, "-m", "qchunk.cli", "train", "--help"], capture_output=True, text=True,
                          check=False, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert "--eval-policy" in proc.stdout and "sample,mean}" in proc.stdout


def np_relu_layer_norm_mlp(params, x, n_layers, layer_norm=True):
    """numpy forward of the RLPD critic: ``relu(layernorm(dense(x)))`` per hidden layer, dense output."""
    x = np.asarray(x, np.float64)
    for i in range(n_layers):
        layer = params[f"dense_{i}"]
        x = x @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"], np.float64)
        if i + 1 < n_layers:
            if layer_norm:
                ln = params[f"layer_norm_{i}"]
                x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6)
                x = x * np.asarray(ln["scale"]) + np.asarray(ln["bias"])
            x = np.maximum(x, 0.0)
    return x


def test_critic_hidden_layers_are_relu_of_layernorm_of_dense():
    agent = make_agent("rlpd-ac", OBS, ACT, preset="quick", seed=1, **TINY)
    rng = np.random.default_rng(3)
    obs = rng.standard_normal((4, OBS)).astype(np.float32)
    chunk = rng.uniform(-1, 1, (4, 5 * ACT)).astype(np.float32)
    members = agent.params["critic"]["critics"]
    # perturb the LayerNorm scales/biases so that their position in the layer matters
    members = jax.tree_util.tree_map_with_path(
        lambda path, x: x + 0.3 * jnp.asarray(rng.standard_normal(x.shape), x.dtype)
        if "layer_norm" in jax.tree_util.keystr(path) else x, members)
    q = np.asarray(agent.networks.critic.apply({"params": {"critics": members}}, obs, chunk))
    assert q.shape == (3, 4)
    for k in range(3):
        member = jax.tree_util.tree_map(lambda x, k=k: np.asarray(x[k]), members)
        ref = np_relu_layer_norm_mlp(member, np.concatenate([obs, chunk], -1), 3)[:, 0]
        np.testing.assert_allclose(q[k], ref, rtol=1e-4, atol=1e-5)


def test_actor_has_a_relu_trunk_and_separate_heads():
    agent = make_agent("rlpd-ac", OBS, ACT, preset="quick", seed=2, **TINY)
    actor = agent.params["actor"]
    assert set(actor) == {"trunk", "mean", "log_std"}
    assert not any("layer_norm" in name for name in actor["trunk"])  # no LayerNorm in the actor
    assert actor["mean"]["kernel"].shape == actor["log_std"]["kernel"].shape == (32, 5 * ACT)
    obs = np.random.default_rng(4).standard_normal((6, OBS)).astype(np.float32)
    x = np.asarray(obs, np.float64)
    for i in range(2):  # ReLU after every trunk layer, the last included
        x = np.maximum(x @ np.asarray(actor["trunk"][f"dense_{i}"]["kernel"], np.float64)
                       + np.asarray(actor["trunk"][f"dense_{i}"]["bias"], np.float64), 0.0)
    heads = {h: x @ np.asarray(actor[h]["kernel"], np.float64) + np.asarray(actor[h]["bias"]) for h in actor
             if h != "trunk"}
    mean, log_std = agent.networks.actor.apply({"params": actor}, obs)
    np.testing.assert_allclose(np.asarray(mean), heads["mean"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(log_std), np.clip(heads["log_std"], -20, 2), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("bias", "expected"), [(-50.0, -20.0), (-12.0, -12.0), (1.5, 1.5), (50.0, 2.0)])
def test_actor_log_std_is_clipped_to_minus_20_and_2(bias, expected):
    agent = _constant_policy(make_agent("rlpd", OBS, ACT, preset="quick", seed=0, **TINY), 0.3, bias)
    mean, log_std = agent.networks.actor.apply({"params": agent.params["actor"]}, jnp.ones((2, OBS)))
    np.testing.assert_allclose(np.asarray(mean), 0.3, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(log_std), expected, rtol=1e-6)


def test_qam_preset_has_the_qam_repos_networks_bc_mask_and_pessimistic_actor():
    paper, qam = agent_config("rlpd-ac", "paper"), agent_config("rlpd-ac", "qam", "cube-double")
    assert (paper.networks, paper.bc_mask, paper.rho) == ("rlpd", "none", 0.0)
    assert (qam.networks, qam.bc_mask, qam.rho) == ("qam", "chunk", 0.5)
    assert agent_config("rlpd", "qam", "antmaze-large").networks == "qam"
    with pytest.raises(QchunkError, match="networks must be 'rlpd' or 'qam'"):
        agent_config("rlpd", networks="gelu")
    with pytest.raises(QchunkError, match="bc_mask must be"):
        agent_config("qc-rlpd", bc_mask="valid")
    # the actor scores its sample with mean_k Q - rho * std_k Q of the critics
    batch = {k: jnp.asarray(v) for k, v in synthetic_batch(8, 5, OBS, ACT, 0.99, seed=6).items()}
    key = jax.random.PRNGKey(4)
    agents = {rho: make_agent("rlpd-ac", OBS, ACT, preset="quick", seed=5, rho=rho, **TINY) for rho in (0.0, 0.5)}
    draws = agents[0.0].update_draws(key, 8)
    info = {rho: sac_loss(a.params, a, batch, draws)[1] for rho, a in agents.items()}
    mean, log_std = agents[0.0].networks.actor.apply({"params": agents[0.0].params["actor"]}, batch["observations"])
    actions = np.tanh(np.asarray(mean) + np.exp(np.asarray(log_std)) * np.asarray(draws.actor))
    qs = np.asarray(agents[0.0].networks.critic.apply({"params": agents[0.0].params["critic"]},
                                                      batch["observations"], actions))
    for rho in (0.0, 0.5):
        want = float(np.mean(qs.mean(0) - rho * qs.std(0)))
        assert float(info[rho]["actor/q_mean"]) == pytest.approx(want, rel=1e-4, abs=1e-5)
