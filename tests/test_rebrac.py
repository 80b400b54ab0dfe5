"""ReBRAC: the smoothed target action and the actor loss against numpy, the targets' every-other-update Polyak
step, both presets, the QAM reproduction script's per-domain values, a checkpoint round trip, the CLI's dry run
and an offline-to-online run."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from conftest import TINY_TASK
from qchunk.agents import ReBracAgent, agent_config, agent_config_from_dict, create_agent, make_agent
from qchunk.agents.rebrac import rebrac_loss, smoothed_actions
from qchunk.bench.update import synthetic_batch
from qchunk.cli import main

OBS, ACT, H = 6, 2, 5
P = H * ACT
TINY = dict(actor_hidden_dims=(16, 16), critic_hidden_dims=(16, 16), num_critics=3, lr=1e-2, alpha_actor=0.1,
            actor_noise=0.4, actor_noise_clip=0.3)


def _batch(seed=0, size=16):
    return {k: jnp.asarray(v) for k, v in synthetic_batch(size, H, OBS, ACT, 0.99, seed=seed).items()}


def test_smoothed_actions_clip_the_noise_then_the_action():
    rng = np.random.default_rng(0)
    a, eps = np.tanh(rng.normal(size=(5, P)) * 2), rng.normal(size=(5, P))
    want = np.clip(a + np.clip(0.4 * eps, -0.3, 0.3), -1, 1)
    got = smoothed_actions(jnp.asarray(a, jnp.float32), jnp.asarray(eps, jnp.float32), 0.4, 0.3)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-6)


def test_loss_against_numpy_and_each_term_reaches_only_its_network():
    agent = make_agent("rebrac", OBS, ACT, "quick", seed=0, **TINY)
    agent, _ = agent.update(_batch(5))
    agent, _ = agent.update(_batch(6))  # the targets have moved once (update 2)
    batch, draws = _batch(1), agent.update_draws(jax.random.PRNGKey(3), 16)
    (loss, info), grads = jax.jit(jax.value_and_grad(rebrac_loss, has_aux=True))(agent.params, agent, batch, draws)
    nets, b = agent.networks, {k: np.asarray(v, np.float64) for k, v in batch.items()}

    def q(params, obs, actions):
        return np.asarray(nets.critic.apply({"params": params}, obs.astype(np.float32), actions.astype(np.float32)),
                          np.float64)

    next_obs = batch["next_observations"][:, -1]
    next_mode = np.asarray(nets.actor.apply({"params": agent.target_params["actor"]}, next_obs))
    next_a = np.clip(next_mode + np.clip(0.4 * np.asarray(draws.next_action), -0.3, 0.3), -1, 1)
    next_qs = q(agent.target_params["critic"], b["next_observations"][:, -1], next_a)
    target = b["rewards"][:, -1] + 0.99**H * b["masks"][:, -1] * (next_qs.mean(0) - 0.5 * next_qs.std(0))
    qs = q(agent.params["critic"], b["observations"], b["actions"].reshape(16, P))
    critic = np.mean(b["valid"][:, -1] * (qs - target) ** 2)
    mu = np.asarray(nets.actor.apply({"params": agent.params["actor"]}, batch["observations"]), np.float64)
    pi_qs = q(agent.params["critic"], b["observations"], mu)
    pi_q = pi_qs.mean(0) - 0.5 * pi_qs.std(0)
    mse = np.mean(b["valid"][:, -1] * np.sum((mu - b["actions"].reshape(16, P)) ** 2, -1))
    actor = -np.mean(pi_q) / np.mean(np.abs(pi_q)) + 0.1 * mse
    assert float(info["critic/loss"]) == pytest.approx(critic, rel=1e-4)
    assert float(info["actor/mse"]) == pytest.approx(mse, rel=1e-4)
    assert float(info["actor/loss"]) == pytest.approx(actor, rel=1e-4)
    assert float(loss) == pytest.approx(critic + actor, rel=1e-4)
    # the actor term reaches the actor only: the critic's gradient is the TD loss's alone
    td = jax.jit(jax.grad(lambda c: rebrac_loss({**agent.params, "critic": c}, agent, batch, draws)[1]["critic/loss"]))(
        agent.params["critic"])
    for x, y in zip(jax.tree_util.tree_leaves(grads["critic"]), jax.tree_util.tree_leaves(td), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-7)


def test_targets_move_on_every_second_update_only():
    agent = make_agent("rebrac", OBS, ACT, "quick", seed=1, **TINY)
    moved = []
    for i in range(4):
        new, _ = agent.update(_batch(i))
        gap = max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(
            jax.tree_util.tree_leaves(new.target_params), jax.tree_util.tree_leaves(agent.target_params), strict=True))
        moved.append(gap > 0)
        agent = new
    assert moved == [False, True, False, True]  # the authors' i % actor_freq == 0, i = 1, 2, ...
    every = make_agent("rebrac", OBS, ACT, "quick", seed=1, target_every=1, **TINY)
    new, _ = every.update(_batch(0))
    assert float(jnp.max(jnp.abs(new.target_params["actor"]["mean"]["kernel"]
                                 - every.target_params["actor"]["mean"]["kernel"]))) > 0


@pytest.mark.slow  # preset-size networks compiled: an end-to-end smoke test
@pytest.mark.parametrize("preset", ["quick", "qam"])
def test_rebrac_creates_updates_and_acts_at_both_presets(preset):
    agent = make_agent("rebrac", OBS, ACT, preset, "cube-triple", seed=0)
    assert isinstance(agent, ReBracAgent) and agent.config.num_critics == 10 and agent.config.rho == 0.5
    assert agent.config.actor_hidden_dims[0] == (256 if preset == "quick" else 512) and agent.horizon == 5
    batch = synthetic_batch(8, 5, OBS, ACT, 0.99, seed=0)
    for _ in range(2):
        agent, info = agent.update(batch)
        assert all(np.isfinite(float(v)) for v in info.values())
    chunk = np.asarray(agent.sample_actions(batch["observations"], jax.random.PRNGKey(0)))
    assert chunk.shape == (8, 5, ACT) and np.all(np.isfinite(chunk)) and np.all(np.abs(chunk) <= 1.0)
    single = np.asarray(agent.sample_actions(batch["observations"][0], jax.random.PRNGKey(0)))
    np.testing.assert_allclose(single, chunk[0], atol=1e-6)


# ReBRAC's row of the QAM reproduction script: (alpha_actor, actor_noise) per domain.
SCRIPT = {
    "puzzle-3x3": (0.1, 0.0), "scene": (0.03, 0.0), "cube-double": (0.01, 0.0), "cube-triple": (0.01, 0.2),
    "cube-quadruple": (0.01, 0.2), "puzzle-4x4": (0.01, 0.2), "antmaze-large": (0.01, 0.0),
    "antmaze-giant": (0.01, 0.0), "humanoidmaze-medium": (0.01, 0.0), "humanoidmaze-large": (0.01, 0.1),
}


@pytest.mark.parametrize("domain", sorted(SCRIPT))
def test_per_domain_values_follow_the_qam_reproduction_script(domain):
    for preset in ("qam", "paper", "quick"):  # the QAM protocol under every preset, as fedit / dsrl
        c = agent_config("rebrac", preset, domain)
        assert (c.alpha_actor, c.actor_noise) == SCRIPT[domain]
        maze = "maze" in domain
        assert (c.horizon, c.chunked, c.num_critics, c.q_agg) == (1 if maze else 5, True, 10, "mean")
        assert c.discount == (0.995 if domain in ("antmaze-giant", "humanoidmaze-medium", "humanoidmaze-large")
                              else 0.99)
        assert c.rho == (0.0 if "humanoid" in domain else 0.5)
        assert (c.actor_noise_clip, c.target_every, c.actor_init_scale, c.tau, c.lr) == (0.5, 2, 0.01, 0.005, 3e-4)
        assert c.critic_layer_norm and not c.actor_layer_norm
    assert agent_config("rebrac", "qam", domain).actor_hidden_dims == (512,) * 4
    assert agent_config("rebrac", "quick", "robomimic").alpha_actor == 0.01  # off the QAM table: the default
    assert agent_config("rebrac", "qam", domain, alpha_actor=0.5).alpha_actor == 0.5  # overrides win


def test_checkpoint_round_trip_resumes_exactly():
    agent = make_agent("rebrac", OBS, ACT, "quick", seed=3, **TINY)
    agent, _ = agent.update(_batch(0))
    stored = json.loads(json.dumps(dataclasses.asdict(agent.config)))
    template = create_agent(agent_config_from_dict(stored), OBS, ACT, seed=99)
    restored = serialization.from_bytes(template, serialization.to_bytes(agent))
    a1, i1 = agent.update(_batch(1))
    a2, i2 = restored.update(_batch(1))
    assert {k: float(v) for k, v in i1.items()} == {k: float(v) for k, v in i2.items()}
    for x, y in zip(jax.tree_util.tree_leaves((a1.params, a1.target_params)),
                    jax.tree_util.tree_leaves((a2.params, a2.target_params)), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_dry_run_prints_the_resolved_config_and_writes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = TINY_TASK.replace("puzzle-3x3", "scene")
    assert main(["train", "--agent", "rebrac", "--env", env, "--preset", "qam", "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["agent"]["agent"] == "rebrac" and printed["agent"]["alpha_actor"] == 0.03
    assert printed["agent"]["num_critics"] == 10 and printed["agent"]["rho"] == 0.5
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cli_trains_offline_then_online(tiny_ogbench_dir, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--agent", "rebrac", "--env", TINY_TASK, "--preset", "quick", "--dataset-dir",
                 str(tiny_ogbench_dir), "--offline-steps", "150", "--online-steps", "150", "--start-training", "20",
                 "--eval-every", "150", "--eval-episodes", "1", "--episode-length", "30", "--log-every", "50",
                 "--checkpoint-every", "100", "--eval-workers", "1", "--no-progress", "--actor-hidden-dims", "32",
                 "32", "--critic-hidden-dims", "32", "32", "--batch-size", "32", "--run-dir", str(run)]) == 0
    rows = (run / "train.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert {"critic/loss", "actor/bc_loss", "actor/q_loss"} <= set(header)
    phases = [r.split(",")[header.index("phase")] for r in rows[1:]]
    assert "offline" in phases and "online" in phases
    for r in rows[1:]:
        values = dict(zip(header, r.split(","), strict=True))
        assert all(np.isfinite(float(values[k])) for k in ("critic/loss", "actor/loss"))
    assert json.loads((run / "result.json").read_text())["finished"] is True
    # the newest checkpoint re-evaluates (the agent rebuilt from config.json)
    assert main(["eval", str(run), "--episodes", "1", "--workers", "1", "--episode-length", "20"]) == 0
    assert any((run / "eval").rglob("summary.json"))
