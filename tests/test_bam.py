"""BAM (qchunk.agents.bam): per-domain settings, the objective against an independent computation, which loss
reaches which network, acting, resume, both presets, and offline-to-online training through the CLI."""

from __future__ import annotations

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from conftest import TINY_TASK
from qchunk.agents import BamAgent, agent_config, make_agent
from qchunk.agents.bam import bam_loss, bam_objective
from qchunk.agents.qam import qam_actions, qam_loss
from qchunk.bench.update import synthetic_batch
from qchunk.cli import main
from test_training import read_rows

OBS, ACT, H = 3, 1, 2
TINY = {"actor_hidden_dims": (16, 16), "critic_hidden_dims": (16, 16), "flow_steps": 3, "num_critics": 3,
        "horizon": H}

# The BAM row of the authors' reproduction script (experiments/reproduce.py of ColinQiyangLi/qam): inv_temp, and
# the protocol it gives every method: (horizon, discount, rho).
REPRODUCE = {
    "puzzle-3x3": (10.0, 5, 0.99, 0.5), "scene": (10.0, 5, 0.99, 0.5), "cube-double": (10.0, 5, 0.99, 0.5),
    "cube-triple": (30.0, 5, 0.99, 0.5), "cube-quadruple": (10.0, 5, 0.99, 0.5), "puzzle-4x4": (30.0, 5, 0.99, 0.5),
    "antmaze-large": (30.0, 1, 0.99, 0.5), "antmaze-giant": (30.0, 1, 0.995, 0.5),
    "humanoidmaze-medium": (10.0, 1, 0.995, 0.0), "humanoidmaze-large": (30.0, 1, 0.995, 0.0),
}


@functools.cache
def _tiny(seed, overrides):
    return make_agent("bam", OBS, ACT, preset="quick", seed=seed, **{**TINY, **dict(overrides)})


def tiny(seed=0, **overrides):
    return _tiny(seed, tuple(sorted(overrides.items())))


def batch(size=5, seed=0):
    return synthetic_batch(size, H, OBS, ACT, 0.99, seed=seed)


@pytest.mark.parametrize("domain", sorted(REPRODUCE))
def test_per_domain_settings_follow_the_reproduction_script(domain):
    for preset in ("qam", "paper", "quick"):
        c = agent_config("bam", preset, domain)
        assert (c.inv_temp, c.horizon, c.discount, c.rho) == REPRODUCE[domain], preset
        assert (c.num_critics, c.q_agg, c.flow_steps, c.num_samples, c.max_grad_norm) == (10, "mean", 10, 1, 1.0)
        assert c.bc_weighting == "chunk" and c.target_actor and not c.residual
    assert agent_config("bam", "qam", domain).actor_hidden_dims == (512,) * 4
    assert agent_config("bam", "quick", domain).actor_hidden_dims == (256, 256)


def numpy_objective(agent, obs, start, steps_noise):
    """BAM's objective written out step by step (jnp forward passes of the networks, numpy arithmetic)."""
    nets, params, c = agent.networks, agent.params, agent.config
    base_p = agent.target_params["flow"]
    x, cost, T = np.asarray(start, np.float64), 0.0, c.flow_steps
    h = 1.0 / T

    def net(module, p, y, t):
        out = module.apply({"params": p}, obs, jnp.asarray(y, jnp.float32), jnp.full((1,), t, jnp.float32))
        return np.asarray(out, np.float64)

    for i in range(T):
        t = i * h
        v_base = net(nets.flow, base_p, x, t)
        if i == T - 1:
            x = x + h * v_base
            break
        v = net(nets.fine_flow, params["fine_flow"], x, t)
        sigma2 = 2 * (1 - t + h) / (t + h)
        cost = cost + np.sum((v - v_base) ** 2, axis=-1) * 2 / sigma2
        x = x + h * (2 * v - x / (t + h)) + np.sqrt(h) * np.sqrt(sigma2) * np.asarray(steps_noise[i])
    qs = np.asarray(nets.critic.apply({"params": params["critic"]}, obs, jnp.asarray(x, jnp.float32)), np.float64)
    q = np.mean(qs.mean(0) - c.rho * qs.std(0))
    return np.mean(cost) - c.inv_temp * q, np.mean(cost), q


def test_objective_matches_a_step_by_step_computation():
    agent = tiny(inv_temp=2.0)
    for _ in range(2):  # targets apart from the online networks
        agent, _ = agent.update(batch(seed=3))
    b = batch(seed=4)
    rng = np.random.default_rng(0)
    start = rng.standard_normal((5, H * ACT)).astype(np.float32)
    noise = rng.standard_normal((2, 5, H * ACT)).astype(np.float32)
    loss, info = bam_objective(agent.networks, agent.config, agent.params["fine_flow"], agent.target_params["flow"],
                               agent.params["critic"], b["observations"], jnp.asarray(start), jnp.asarray(noise))
    want, cost, q = numpy_objective(agent, b["observations"], start, noise)
    np.testing.assert_allclose([float(loss), float(info["actor/control_cost"]), float(info["actor/bam_q"])],
                               [want, cost, q], rtol=1e-4, atol=1e-5)


def test_each_loss_reaches_only_its_own_network_and_the_chain_is_differentiated():
    agent = tiny(inv_temp=1.0)
    b = batch(seed=5)
    draws = agent.update_draws(jax.random.PRNGKey(1), 5)
    grads = jax.grad(lambda p: bam_loss(p, agent, b, draws)[0])(agent.params)
    shared = jax.grad(lambda p: qam_loss(p, agent, b, draws, adjoint=False)[0])(agent.params)
    for net in ("critic", "flow"):  # the BAM term reaches neither the critic nor the BC flow
        for a, c in zip(jax.tree_util.tree_leaves(grads[net]), jax.tree_util.tree_leaves(shared[net]), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree_util.tree_leaves(shared["fine_flow"]))
    # through the chain: the fine-tuned flow's gradient differs from the one at the fixed trajectory
    b_obs = b["observations"]

    def fixed_chain(p):
        return bam_objective(agent.networks, agent.config, p, agent.target_params["flow"], agent.params["critic"],
                             b_obs, draws.start_noise, draws.step_noise)[0]

    full = jax.jit(jax.grad(fixed_chain))(agent.params["fine_flow"])
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree_util.tree_leaves(full))
    np.testing.assert_allclose(
        np.concatenate([np.ravel(g) for g in jax.tree_util.tree_leaves(full)]),
        np.concatenate([np.ravel(g) for g in jax.tree_util.tree_leaves(grads["fine_flow"])]), rtol=1e-5, atol=1e-7)


def test_bc_acting_at_zero_inverse_temperature_and_fine_flow_otherwise():
    b = batch(seed=6)
    noise = jax.random.normal(jax.random.PRNGKey(2), (5, 1, H * ACT))
    for beta in (0.0, 1.0):
        agent = tiny(inv_temp=beta)
        got = agent.act(agent.params, b["observations"], noise)
        want = qam_actions(agent.networks, agent.config, agent.params, b["observations"], noise)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    bc = tiny(inv_temp=0.0)
    fine = bc.replace(config=tiny(inv_temp=1.0).config)
    assert not np.array_equal(np.asarray(bc.act(bc.params, b["observations"], noise)),
                              np.asarray(fine.act(fine.params, b["observations"], noise)))


def test_resumed_from_serialised_bytes_equals_uninterrupted():
    agent = tiny()
    ref = agent
    for k in range(3):
        ref, _ = ref.update(batch(seed=20 + k))
    halfway, _ = agent.update(batch(seed=20))
    restored = serialization.from_bytes(tiny(seed=5), serialization.to_bytes(halfway))
    for k in range(1, 3):
        restored, _ = restored.update(batch(seed=20 + k))
    for a, b in zip(jax.tree_util.tree_leaves(ref), jax.tree_util.tree_leaves(restored), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def check_creates_updates_and_acts(preset, width):
    obs_dim, act_dim = 37, 5
    agent = make_agent("bam", obs_dim, act_dim, preset=preset, domain="cube-triple", seed=1)
    assert isinstance(agent, BamAgent) and agent.config.actor_hidden_dims == width
    b = synthetic_batch(8, 5, obs_dim, act_dim, 0.99, seed=2)
    before = agent.params
    for _ in range(2):
        agent, info = agent.update(b)
        assert all(np.isfinite(float(v)) for v in info.values())
    assert {"actor/bam_loss", "actor/control_cost", "actor/bam_q", "critic/loss"} <= set(info)
    for net in agent.params:
        assert any(not np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(
            jax.tree_util.tree_leaves(before[net]), jax.tree_util.tree_leaves(agent.params[net]), strict=True)), net
    actions = np.asarray(agent.sample_actions(b["observations"][:3], jax.random.PRNGKey(0)))
    assert actions.shape == (3, 5, act_dim) and np.all(np.isfinite(actions)) and np.all(np.abs(actions) <= 1)


@pytest.mark.slow  # preset-size networks compiled: an end-to-end smoke test
def test_quick_preset_creates_updates_and_acts():
    check_creates_updates_and_acts("quick", (256, 256))


@pytest.mark.slow
def test_qam_preset_creates_updates_and_acts():
    check_creates_updates_and_acts("qam", (512, 512, 512, 512))


@pytest.mark.slow
def test_cli_trains_offline_then_online(tiny_ogbench_dir, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--agent", "bam", "--env", TINY_TASK, "--preset", "quick", "--dataset-dir",
            str(tiny_ogbench_dir), "--offline-steps", "100", "--online-steps", "100", "--eval-every", "100",
            "--eval-episodes", "1", "--episode-length", "30", "--start-training", "20", "--log-every", "50",
            "--checkpoint-every", "100", "--eval-workers", "1", "--no-progress", "--actor-hidden-dims", "32", "32",
            "--critic-hidden-dims", "32", "32", "--num-critics", "3", "--flow-steps", "4", "--batch-size", "16",
            "--run-dir", str(run)]
    assert main(args) == 0, capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert config["agent"]["agent"] == "bam" and config["agent"]["inv_temp"] == 10.0  # puzzle-3x3's row
    rows = read_rows(run / "train.csv", drop=())
    assert {r["phase"] for r in rows} == {"offline", "online"} and int(rows[-1]["step"]) == 200
    for r in rows:
        for key in ("critic/loss", "actor/bam_loss", "actor/control_cost"):
            assert math.isfinite(float(r[key])), (key, r)
