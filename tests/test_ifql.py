"""IFQL: the expectile loss against numpy, acting as the best of N flow samples under the minimum of the online
critics (checked by hand), the value's and critic's targets, both presets, the per-domain kappa of the QAM
reproduction script, and offline-to-online training through the CLI."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from conftest import TINY_TASK
from qchunk.agents import IfqlAgent, agent_config, agent_config_from_dict, create_agent, make_agent
from qchunk.agents.common import integrate_flow
from qchunk.agents.ifql import IfqlDraws, ifql_loss
from qchunk.agents.losses import expectile_loss
from qchunk.bench.update import synthetic_batch
from qchunk.cli import main

OBS, ACT, H = 6, 2, 5
TINY = dict(actor_hidden_dims=(16, 16), critic_hidden_dims=(16, 16), num_critics=3, flow_steps=3, num_samples=5)
# The QAM reproduction script's IFQL row (kappa), written out by hand.
SCRIPT_KAPPA = {"puzzle-3x3": 0.95, "scene": 0.9, "cube-double": 0.9, "antmaze-large": 0.9,
                "humanoidmaze-medium": 0.7, "cube-triple": 0.95, "cube-quadruple": 0.95, "puzzle-4x4": 0.9,
                "antmaze-giant": 0.8, "humanoidmaze-large": 0.8}


def _batch(seed=0, size=16):
    return {k: jnp.asarray(v) for k, v in synthetic_batch(size, H, OBS, ACT, 0.99, seed=seed).items()}


@pytest.mark.parametrize("kappa", [0.5, 0.7, 0.95])
def test_expectile_loss_is_the_asymmetric_square_of_numpy(kappa):
    rng = np.random.default_rng(0)
    diff = rng.normal(size=64).astype(np.float32)
    diff[:3] = 0.0  # a zero difference counts as positive
    weights = rng.uniform(size=64).astype(np.float32)
    want = np.where(diff >= 0, kappa, 1 - kappa) * diff.astype(np.float64) ** 2
    np.testing.assert_allclose(expectile_loss(jnp.asarray(diff), kappa), want.mean(), rtol=1e-6)
    np.testing.assert_allclose(expectile_loss(jnp.asarray(diff), kappa, jnp.asarray(weights)),
                               (weights * want).mean(), rtol=1e-6)
    # its minimiser over a constant v is the kappa-expectile of q: E[|kappa - 1(q < v)| (q - v)] = 0
    q = rng.normal(size=4000)
    grid = np.linspace(-1, 2, 3001)
    best = grid[np.argmin([float(expectile_loss(jnp.asarray(q - v, jnp.float32), kappa)) for v in grid[::10]])
                * 10]
    w = np.where(q >= best, kappa, 1 - kappa)
    assert abs(np.sum(w * (q - best)) / np.sum(w)) < 0.02


def test_acting_is_the_best_flow_sample_under_the_minimum_of_the_online_critics():
    agent = make_agent("ifql", OBS, ACT, "quick", seed=0, **TINY)
    for seed in range(2):
        agent, _ = agent.update(_batch(seed))
    obs = jnp.asarray(np.random.default_rng(5).normal(size=(4, OBS)), jnp.float32)
    key = jax.random.PRNGKey(3)
    noise = agent.policy_noise(key, 4)
    assert noise.shape == (4, 5, H * ACT)
    nets = agent.networks
    chosen = []
    for b in range(4):  # one state at a time, as the authors' sample_actions
        candidates = integrate_flow(nets.flow, agent.params["flow"], obs[b], noise[b], 3)
        assert float(jnp.max(jnp.abs(candidates))) <= 1.0
        qs = nets.critic.apply({"params": agent.params["critic"]}, obs[b][None], candidates)  # (K, N)
        chosen.append(candidates[int(jnp.argmax(qs.min(axis=0)))])
    got = agent.sample_actions(obs, key)
    np.testing.assert_allclose(np.asarray(got).reshape(4, -1), np.stack(chosen), atol=1e-5)
    assert agent.sample_actions(obs[0], key).shape == (H, ACT)
    mean_agent = agent.replace(config=agent.config.replace(select_agg="mean"))
    assert mean_agent.sample_actions(obs, key).shape == (4, H, ACT)


def test_value_critic_and_flow_each_learn_from_their_own_term():
    agent = make_agent("ifql", OBS, ACT, "quick", seed=1, **TINY)
    agent, _ = agent.update(_batch(0))
    batch = _batch(1)
    draws = agent.update_draws(jax.random.PRNGKey(0), 16)
    assert isinstance(draws, IfqlDraws) and draws.bc_noise.shape == (16, H * ACT)
    loss, info = ifql_loss(agent.params, agent, batch, draws)
    assert np.isclose(float(loss), float(info["value/loss"] + info["critic/loss"] + info["actor/bc_flow_loss"]))
    # the critic's target is the value at s_{t+h}: R + gamma^h mask V(s')
    next_v = agent.networks.value.apply({"params": agent.params["value"]}, batch["next_observations"][:, -1])
    target = batch["rewards"][:, -1] + 0.99**H * batch["masks"][:, -1] * next_v
    np.testing.assert_allclose(float(info["critic/target_mean"]), float(jnp.mean(target)), rtol=1e-5)
    # a gradient of the value term alone reaches only the value network
    grads = jax.jit(jax.grad(lambda p: ifql_loss(p, agent, batch, draws)[1]["value/loss"]))(agent.params)
    assert all(float(jnp.max(jnp.abs(x))) == 0 for x in jax.tree_util.tree_leaves(grads["critic"]))
    assert any(float(jnp.max(jnp.abs(x))) > 0 for x in jax.tree_util.tree_leaves(grads["value"]))
    assert set(agent.target_params) == {"critic"}


@pytest.mark.slow  # preset-size networks compiled: an end-to-end smoke test
@pytest.mark.parametrize("preset", ["quick", "qam"])  # qam: 4x512, K=10
def test_create_update_act_are_finite_at_both_presets(preset):
    agent = make_agent("ifql", OBS, ACT, preset, "cube-double", seed=0)
    assert isinstance(agent, IfqlAgent) and set(agent.params) == {"critic", "value", "flow"}
    agent, info = agent.update(_batch(0, size=8))
    assert all(np.isfinite(float(v)) for v in info.values())
    agents, infos = agent.update_many({k: jnp.stack([v, v]) for k, v in _batch(1, size=8).items()})
    assert infos["value/loss"].shape == (2,) and np.all(np.isfinite(np.asarray(infos["critic/loss"])))
    actions = agents.sample_actions(jnp.zeros((3, OBS)), jax.random.PRNGKey(0))
    assert actions.shape == (3, H, ACT) and np.all(np.abs(np.asarray(actions)) <= 1.0)


@pytest.mark.parametrize("domain", sorted(SCRIPT_KAPPA))
def test_every_preset_has_the_scripts_kappa_and_the_qam_protocol(domain):
    mazes = ("antmaze-large", "antmaze-giant", "humanoidmaze-medium", "humanoidmaze-large")
    for preset in ("qam", "paper", "quick"):
        c = agent_config("ifql", preset, domain)
        assert c.kappa == SCRIPT_KAPPA[domain]
        assert (c.num_critics, c.num_samples, c.flow_steps, c.select_agg, c.bc_weighting) == (10, 32, 10, "min",
                                                                                              "chunk")
        assert c.horizon == (1 if domain in mazes else 5)
        assert c.discount == (0.995 if domain in mazes[1:] else 0.99)
        assert c.rho == (0.0 if "humanoid" in domain else 0.5)
    assert agent_config("ifql", "qam", domain).actor_hidden_dims == (512,) * 4
    assert agent_config("ifql", "qam", domain, kappa=0.6).kappa == 0.6  # overrides win


def test_dry_run_prints_the_resolved_config_and_writes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = TINY_TASK.replace("puzzle-3x3", "cube-triple")
    assert main(["train", "--agent", "ifql", "--env", env, "--preset", "qam", "--kappa", "0.8", "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["agent"]["agent"] == "ifql" and printed["agent"]["kappa"] == 0.8
    assert printed["agent"]["num_critics"] == 10 and printed["agent"]["rho"] == 0.5
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_trains_offline_then_online_through_the_cli(tiny_ogbench_dir, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--agent", "ifql", "--env", TINY_TASK, "--preset", "quick", "--dataset-dir",
                 str(tiny_ogbench_dir), "--offline-steps", "100", "--online-steps", "150", "--eval-every", "125",
                 "--eval-episodes", "1", "--episode-length", "30", "--start-training", "20", "--log-every", "50",
                 "--checkpoint-every", "100", "--eval-workers", "1", "--no-progress", "--actor-hidden-dims", "32",
                 "32", "--critic-hidden-dims", "32", "32", "--num-samples", "4", "--batch-size", "32",
                 "--run-dir", str(run)]) == 0
    result = json.loads((run / "result.json").read_text())
    assert result["finished"] is True
    rows = (run / "train.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert "value/loss" in header and "critic/loss" in header
    assert any(",online," in r for r in rows[1:]) and any(",offline," in r for r in rows[1:])


def test_checkpoint_round_trip_resumes_exactly():
    # what a resume does: rebuild the agent from the stored config, load the bytes, continue
    agent = make_agent("ifql", OBS, ACT, "quick", seed=3, **TINY)
    agent, _ = agent.update(_batch(0))
    stored = json.loads(json.dumps(dataclasses.asdict(agent.config)))
    template = create_agent(agent_config_from_dict(stored), OBS, ACT, seed=99)
    restored = serialization.from_bytes(template, serialization.to_bytes(agent))
    a1, i1 = agent.update(_batch(1))
    a2, i2 = restored.update(_batch(1))
    assert {k: float(v) for k, v in i1.items()} == {k: float(v) for k, v in i2.items()}
    for x, y in zip(jax.tree_util.tree_leaves(a1.params), jax.tree_util.tree_leaves(a2.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
