"""QAM-F and QAM-E (qchunk.agents.qam_variants): their added losses against numpy (the distillation target is
the fine-tuned flow's chunk, the edit base is the fine-tuned flow's chunk), acting, the authors' off switches,
the agents at the quick preset, and a serialisation round trip."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from qchunk.agents import QamEAgent, QamFAgent, make_agent
from qchunk.agents.common import normal
from qchunk.agents.edit import EditNoise
from qchunk.agents.qam import qam_loss
from qchunk.agents.qam_variants import distill_objective, edit_objective, qam_f_loss
from qchunk.bench.update import synthetic_batch

OBS, ACT, H = 3, 2, 2  # chunks of 2 actions: P = 4
P = H * ACT
TINY = {"actor_hidden_dims": (16, 16), "critic_hidden_dims": (16, 16), "flow_steps": 3, "num_critics": 3,
        "horizon": H, "inv_temp": 2.0}
SETTINGS = {"qam-f": {"alpha": 10.0}, "qam-e": {"edit_scale": 0.3, "init_temperature": 0.5}}


@functools.cache
def _tiny(name, seed, overrides):
    settings = {**TINY, **SETTINGS.get(name, {}), **dict(overrides)}
    return make_agent(name, OBS, ACT, preset="quick", seed=seed, **settings)


def tiny(name, seed=0, **overrides):
    return _tiny(name, seed, tuple(sorted(overrides.items())))


def batch(size=6, seed=0):
    return synthetic_batch(size, H, OBS, ACT, 0.99, seed=seed)


def np_fine_chunk(agent, obs, noise):
    """The fine-tuned flow's clipped Euler solution by an explicit loop (float64 between steps)."""
    nets, steps = agent.networks, agent.config.flow_steps
    x = np.asarray(noise, np.float64)
    for i in range(steps):
        u = jnp.full((1,), i / steps, jnp.float32)
        v = nets.fine_flow.apply({"params": agent.params["fine_flow"]}, obs, jnp.asarray(x, jnp.float32), u)
        x = x + np.asarray(v, np.float64) / steps
    return np.clip(x, -1.0, 1.0)


def np_bc_chunk(agent, obs, noise):
    nets, steps = agent.networks, agent.config.flow_steps
    x = np.asarray(noise, np.float64)
    for i in range(steps):
        u = jnp.full((1,), i / steps, jnp.float32)
        v = nets.flow.apply({"params": agent.params["flow"]}, obs, jnp.asarray(x, jnp.float32), u)
        x = x + np.asarray(v, np.float64) / steps
    return np.clip(x, -1.0, 1.0)


def np_mean_q(agent, obs, actions):
    qs = agent.networks.critic.apply({"params": agent.params["critic"]}, obs, jnp.asarray(actions, jnp.float32))
    return np.asarray(qs, np.float64).mean(0)


def test_qam_f_distillation_target_is_the_fine_flows_chunk():
    agent = tiny("qam-f")
    obs = jnp.asarray(np.random.default_rng(0).normal(size=(6, OBS)), jnp.float32)
    key = jax.random.PRNGKey(3)
    loss, info = distill_objective(agent.networks, agent.config, agent.params["onestep"], agent.params, obs,
                                   normal(key, (6, P)))
    # by hand: the same noise z, the one-step output mu(s, z), the fine-tuned flow's clipped chunk from z
    z = normal(key, (6, P))
    mu = np.asarray(agent.networks.onestep.apply({"params": agent.params["onestep"]}, obs, z), np.float64)
    target = np_fine_chunk(agent, obs, z)
    distill = np.mean((mu - target) ** 2)
    q = np_mean_q(agent, obs, np.clip(mu, -1, 1))
    assert float(info["actor/distill_loss"]) == pytest.approx(distill, rel=1e-4)
    assert float(loss) == pytest.approx(10.0 * distill - q.mean(), rel=1e-4, abs=1e-5)
    # ... and not the BC flow's (the two fields differ at initialisation)
    assert abs(np.mean((mu - np_bc_chunk(agent, obs, z)) ** 2) - distill) > 1e-3


def test_qam_f_distillation_reaches_only_the_one_step_policy():
    agent, b = tiny("qam-f"), {k: jnp.asarray(v) for k, v in batch(seed=1).items()}
    draws = agent.update_draws(jax.random.PRNGKey(5), b["observations"].shape[0])
    grads = jax.jit(jax.grad(lambda p: qam_f_loss(p, agent, b, draws)[0]))(agent.params)
    # QAM's terms alone (their TD target acts with the one-step policy)
    qam_grads = jax.jit(jax.grad(lambda p: qam_loss(p, agent, b, draws)[0]))(agent.params)
    for name in ("critic", "flow", "fine_flow"):
        for g, w in zip(jax.tree_util.tree_leaves(grads[name]), jax.tree_util.tree_leaves(qam_grads[name]),
                        strict=True):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-7)
    assert all(np.abs(np.asarray(g)).max() == 0 for g in jax.tree_util.tree_leaves(qam_grads["onestep"]))
    assert any(np.abs(np.asarray(g)).max() > 0 for g in jax.tree_util.tree_leaves(grads["onestep"]))


def test_qam_f_acts_with_the_one_step_policy():
    agent = tiny("qam-f")
    obs = jnp.asarray(np.random.default_rng(2).normal(size=(4, OBS)), jnp.float32)
    key = jax.random.PRNGKey(9)
    z = normal(key, (4, 1, P))
    want = np.clip(np.asarray(agent.networks.onestep.apply({"params": agent.params["onestep"]}, obs[:, None], z)),
                   -1, 1)[:, 0]
    got = np.asarray(agent.sample_actions(obs, key)).reshape(4, P)
    np.testing.assert_allclose(got, want, atol=1e-6)


def np_log_prob_of_pre_tanh(u, mean, log_std):
    std = np.exp(log_std)
    log_normal = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    return np.sum(log_normal - np.log(1.0 - np.tanh(u) ** 2), axis=-1)


def test_qam_e_edit_base_is_the_fine_flows_chunk():
    agent = tiny("qam-e")
    obs = jnp.asarray(np.random.default_rng(4).normal(size=(6, OBS)), jnp.float32)
    k_base, k_edit = jax.random.split(jax.random.PRNGKey(11))
    noise = EditNoise(normal(k_base, (6, P)), jax.random.normal(k_edit, (6, P)))
    loss, info = edit_objective(agent.networks, agent.config, agent.params, obs, ACT, noise)
    base = np_fine_chunk(agent, obs, normal(k_base, (6, P)))
    mean, log_std = (np.asarray(x, np.float64) for x in
                     agent.networks.edit.apply({"params": agent.params["edit"]}, obs, jnp.asarray(base, jnp.float32)))
    u = mean + np.exp(log_std) * np.asarray(jax.random.normal(k_edit, mean.shape), np.float64)
    actions = np.clip(base + 0.3 * np.tanh(u), -1, 1)
    log_prob = np_log_prob_of_pre_tanh(u, mean, log_std)
    temperature = 0.5
    actor = np.mean(temperature * log_prob - np_mean_q(agent, obs, actions))
    temp_loss = temperature * np.mean(-log_prob - (-0.5 * P))  # target entropy -0.5 x h x A
    assert float(info["actor/edit_loss"]) == pytest.approx(actor, rel=1e-3, abs=1e-3)
    assert float(info["temperature/loss"]) == pytest.approx(temp_loss, rel=1e-3, abs=1e-3)
    assert float(loss) == pytest.approx(actor + temp_loss, rel=1e-3, abs=1e-3)
    assert float(info["actor/edit_abs_mean"]) == pytest.approx(np.mean(np.abs(actions - base)), rel=1e-4, abs=1e-6)


def test_qam_e_acts_with_the_edited_fine_chunk():
    agent = tiny("qam-e")
    obs = jnp.asarray(np.random.default_rng(6).normal(size=(4, OBS)), jnp.float32)
    key = jax.random.PRNGKey(13)
    k_noise, k_edit = jax.random.split(key)
    base = np_fine_chunk(agent, obs[:, None], normal(k_noise, (4, 1, P)))
    mean, log_std = (np.asarray(x, np.float64) for x in agent.networks.edit.apply(
        {"params": agent.params["edit"]}, obs[:, None], jnp.asarray(base, jnp.float32)))
    u = mean + np.exp(log_std) * np.asarray(jax.random.normal(k_edit, mean.shape), np.float64)
    want = np.clip(base + 0.3 * np.tanh(u), -1, 1)[:, 0]
    got = np.asarray(agent.sample_actions(obs, key)).reshape(4, P)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.all(np.abs(got - base[:, 0]) <= 0.3 + 1e-6)


@pytest.mark.parametrize(("name", "off"), [("qam-f", {"alpha": 0.0}), ("qam-e", {"edit_scale": 0.0})])
def test_switched_off_variant_is_qam(name, off):
    # the authors' switch (their script's alpha 0 / edit_scale 0): no extra network, QAM bit for bit
    variant, qam = tiny(name, **off), tiny("qam")
    assert sorted(variant.params) == sorted(qam.params) == ["critic", "fine_flow", "flow"]
    obs, key = jnp.asarray(batch()["observations"]), jax.random.PRNGKey(1)
    np.testing.assert_array_equal(np.asarray(variant.sample_actions(obs, key)),
                                  np.asarray(qam.sample_actions(obs, key)))
    b = batch(seed=2)
    (v, _), (q, _) = variant.update(b), qam.update(b)
    for a, c in zip(jax.tree_util.tree_leaves(v.params), jax.tree_util.tree_leaves(q.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(c))


def check_creates_updates_and_acts(name, preset, width):
    obs_dim, act_dim = 37, 5
    agent = make_agent(name, obs_dim, act_dim, preset=preset, domain="cube-triple", seed=1)
    assert isinstance(agent, {"qam-f": QamFAgent, "qam-e": QamEAgent}[name])
    assert agent.config.actor_hidden_dims == width and agent.config.num_critics == 10
    extra = {"qam-f": {"onestep"}, "qam-e": {"edit", "log_temperature"}}[name]
    assert set(agent.params) == {"critic", "flow", "fine_flow"} | extra
    b = synthetic_batch(8, 5, obs_dim, act_dim, 0.99, seed=2)
    before = agent.params
    for _ in range(2):
        agent, info = agent.update(b)
        assert all(np.isfinite(float(v)) for v in info.values())
    for net in agent.params:  # every network learns (and the temperature)
        assert any(not np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(
            jax.tree_util.tree_leaves(before[net]), jax.tree_util.tree_leaves(agent.params[net]), strict=True)), net
    actions = np.asarray(agent.sample_actions(b["observations"][:3], jax.random.PRNGKey(0)))
    assert actions.shape == (3, 5, act_dim) and np.all(np.isfinite(actions)) and np.all(np.abs(actions) <= 1)


@pytest.mark.slow  # preset-size networks compiled: an end-to-end smoke test
@pytest.mark.parametrize("name", ["qam-f", "qam-e"])
def test_quick_preset_creates_updates_and_acts(name):
    check_creates_updates_and_acts(name, "quick", (256, 256))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["qam-f", "qam-e"])
def test_paper_preset_creates_updates_and_acts(name):
    check_creates_updates_and_acts(name, "paper", (512, 512, 512, 512))


@pytest.mark.parametrize("name", ["qam-f", "qam-e"])
def test_resumed_from_serialised_bytes_equals_uninterrupted(name):
    agent = tiny(name)
    ref = agent
    for k in range(3):
        ref, _ = ref.update(batch(seed=20 + k))
    halfway, _ = agent.update(batch(seed=20))
    restored = serialization.from_bytes(tiny(name, seed=5), serialization.to_bytes(halfway))
    for k in range(1, 3):
        restored, _ = restored.update(batch(seed=20 + k))
    for a, b in zip(jax.tree_util.tree_leaves(ref), jax.tree_util.tree_leaves(restored), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
