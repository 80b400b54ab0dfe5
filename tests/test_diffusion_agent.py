"""The diffusion policies (qsm, dac): the DDPM schedule against its closed forms, the reverse sampler and the losses
against numpy, the noise network against a numpy MLP, the agents at every preset, the QAM reproduction script's
per-domain values (written out here by hand) and `qchunk train` offline to online."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from conftest import TINY_TASK
from qchunk.agents import DiffusionAgent, agent_config, agent_config_from_dict, create_agent, make_agent
from qchunk.agents.diffusion import SamplerNoise, beta_schedule, ddpm_sample, diffusion_schedule, noise_actions
from qchunk.agents.losses import denoising_loss, diffusion_actor_critic_loss, score_matching_loss
from qchunk.bench.update import synthetic_batch
from qchunk.networks import NoisePredictor
from test_training import QCHUNK, read_rows

OBS, ACT = 6, 2
TINY = dict(actor_hidden_dims=(16, 16), critic_hidden_dims=(16, 16), num_critics=3, diffusion_steps=4)


@pytest.mark.parametrize("steps", [1, 5, 10])
def test_vp_schedule_is_the_variance_preserving_sde_at_the_grid(steps):
    """``alpha_hat_t = exp(-b_min tau - (b_max - b_min) tau^2 / 2)`` at ``tau = t / T``: the VP SDE's marginal."""
    sched = diffusion_schedule("vp", steps)
    tau = np.arange(steps + 1) / steps
    np.testing.assert_allclose(sched.alpha_hats, np.exp(-0.1 * tau - 9.9 * tau**2 / 2), rtol=5e-6)
    assert sched.betas[0] == 0 and sched.alpha_hats[0] == 1 and sched.steps == steps
    np.testing.assert_allclose(sched.alphas, 1 - sched.betas, rtol=0)


def test_cosine_and_linear_schedules_are_their_closed_forms():
    steps, s = 10, 0.008
    f = np.cos((np.arange(steps + 1) / steps + s) / (1 + s) * np.pi / 2) ** 2
    sched = diffusion_schedule("cosine", steps)
    np.testing.assert_allclose(sched.alpha_hats[:steps], f[:steps] / f[0], rtol=2e-6)  # the last beta is clipped
    assert sched.betas[steps] == np.float32(0.999)
    np.testing.assert_allclose(beta_schedule("linear", 3), [1e-4, 0.01005, 2e-2])
    with pytest.raises(ValueError, match="unknown beta schedule"):
        beta_schedule("sigmoid", 3)


def test_noising_and_a_perfect_noise_predictor_recover_the_data_under_both_samplers():
    sched = diffusion_schedule("vp", 6)
    rng = np.random.RandomState(0)
    x0 = np.tanh(rng.normal(size=(4, 3))).astype(np.float32)
    eps = rng.normal(size=(4, 3)).astype(np.float32)
    t = np.array([1, 2, 6, 3])
    noisy, scale = noise_actions(sched, jnp.asarray(x0), jnp.asarray(eps), jnp.asarray(t))
    hat = sched.alpha_hats.astype(np.float64)[t][:, None]
    np.testing.assert_allclose(noisy, np.sqrt(hat) * x0 + np.sqrt(1 - hat) * eps, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scale, np.sqrt(1 - hat), rtol=1e-6)

    def oracle(x, t):  # the noise that maps x0 to x at step t
        hat_t = float(sched.alpha_hats[int(t[0])])
        return (x - math.sqrt(hat_t) * x0) / math.sqrt(1 - hat_t)

    noise = SamplerNoise(jnp.asarray(rng.normal(size=(4, 3)), jnp.float32),
                         jnp.asarray(rng.normal(size=(5, 4, 3)), jnp.float32))
    for before, after in ((True, False), (False, True), (False, False), (True, True)):
        np.testing.assert_allclose(ddpm_sample(oracle, sched, noise, before, after), x0, atol=2e-5)


def test_sampler_steps_equal_a_numpy_chain():
    sched = diffusion_schedule("vp", 3)
    rng = np.random.RandomState(1)
    start, steps = rng.normal(size=(2, 3)) * 2, rng.normal(size=(2, 2, 3))
    eps = lambda x, t: 0.3 * x + 0.05 * t  # noqa: E731
    b, a, h = (sched.betas.astype(np.float64), sched.alphas.astype(np.float64), sched.alpha_hats.astype(np.float64))
    for before, after in ((True, False), (False, True)):
        x = start.copy()
        for i, t in enumerate((3, 2, 1)):
            x0 = (x - np.sqrt(1 - h[t]) * eps(x, t)) / np.sqrt(h[t])
            if before:
                x0 = np.clip(x0, -1, 1)
                x = (np.sqrt(h[t - 1]) * b[t] * x0 + np.sqrt(a[t]) * (1 - h[t - 1]) * x) / (1 - h[t])
            else:
                x = x0
            x = x + (np.sqrt(b[t]) * steps[i] if t > 1 else 0)
            x = np.clip(x, -1, 1) if after else x
        got = ddpm_sample(lambda x, t: eps(x, t[0]), sched, SamplerNoise(jnp.asarray(start, jnp.float32),
                          jnp.asarray(steps, jnp.float32)), before, after)
        np.testing.assert_allclose(got, x, rtol=1e-5, atol=1e-5)


def test_losses_equal_numpy_and_a_chunk_past_an_episode_end_adds_one():
    rng = np.random.RandomState(2)
    pred, noise, grad = (rng.normal(size=(5, 4)).astype(np.float32) for _ in range(3))
    scale = rng.uniform(0.1, 1, size=(5, 1)).astype(np.float32)
    valid = np.array([1, 1, 0, 1, 0], np.float32)
    keep = valid > 0
    n = len(valid)
    want_bc = (np.mean((noise - pred) ** 2, -1)[keep].sum() + (~keep).sum()) / n
    want_qsm = (np.mean((-3.0 * grad - pred) ** 2, -1)[keep].sum() + (~keep).sum()) / n
    want_dac = (np.mean(scale * grad * pred, -1)[keep].sum() + (~keep).sum()) / n
    assert float(denoising_loss(pred, noise, valid)) == pytest.approx(want_bc, rel=1e-5)
    assert float(score_matching_loss(pred, grad, 3.0, valid)) == pytest.approx(want_qsm, rel=1e-5)
    assert float(diffusion_actor_critic_loss(pred, grad, scale, valid)) == pytest.approx(want_dac, rel=1e-5)
    # the gradient is that of dropping those chunks (the authors' ``** valid``), and none reaches the critic's grad
    g_pred, g_grad = jax.grad(lambda p, g: diffusion_actor_critic_loss(p, g, scale, valid), (0, 1))(pred, grad)
    np.testing.assert_allclose(g_pred, keep[:, None] * scale * grad / (4 * n), rtol=1e-5)
    assert not np.any(np.asarray(g_grad))
    g_qsm = jax.grad(lambda p: score_matching_loss(p, grad, 3.0, valid))(pred)
    np.testing.assert_allclose(g_qsm, keep[:, None] * 2 * (pred + 3.0 * grad) / (4 * n), rtol=1e-4)


def test_noise_network_is_a_mish_mlp_on_action_state_and_time_embedding():
    net = NoisePredictor((8, 8), 3, time_dim=6)
    rng = np.random.RandomState(3)
    obs, x = rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    t = np.array([[1.0], [4.0], [2.0], [10.0]], np.float32)
    params = net.init(jax.random.PRNGKey(0), obs, x, t)["params"]

    def mish(v):
        return v * np.tanh(np.log1p(np.exp(v)))

    def mlp(layers, v):
        for i in range(len(layers)):
            v = v @ np.asarray(layers[f"dense_{i}"]["kernel"]) + np.asarray(layers[f"dense_{i}"]["bias"])
            v = mish(v) if i + 1 < len(layers) else v
        return v

    w = np.asarray(params["time_features"]["kernel"])  # (3, 1)
    f = 2 * np.pi * t @ w.T
    embedding = mlp(params["time_mlp"], np.concatenate([np.cos(f), np.sin(f)], -1))
    want = mlp(params["mlp"], np.concatenate([x, obs, embedding], -1))
    np.testing.assert_allclose(net.apply({"params": params}, obs, x, t), want, rtol=1e-4, atol=1e-5)
    # one time of shape (1,) serves the batch
    one = net.apply({"params": params}, obs, x, jnp.full((1,), 4.0))
    np.testing.assert_allclose(one[1], net.apply({"params": params}, obs, x, t)[1], rtol=1e-5)


@pytest.mark.parametrize("name", ["qsm", "dac"])
@pytest.mark.slow  # preset-size networks compiled: an end-to-end smoke test
@pytest.mark.parametrize("preset", ["quick", "qam"])
def test_create_update_act_are_finite(name, preset):
    agent = make_agent(name, OBS, ACT, preset, seed=0)
    assert isinstance(agent, DiffusionAgent) and agent.config.num_critics == 10 and agent.horizon == 5
    assert agent.config.actor_hidden_dims[0] == (256 if preset == "quick" else 512)
    batch = synthetic_batch(8, 5, OBS, ACT, 0.99, seed=0)
    agent, info = agent.update(batch)
    assert {"critic/loss", "actor/loss", "actor/denoising_loss", "optim/grad_norm"} <= set(info)
    assert all(np.isfinite(float(v)) for v in info.values())
    chunk = np.asarray(agent.sample_actions(batch["observations"], jax.random.PRNGKey(0)))
    assert chunk.shape == (8, 5, ACT) and np.all(np.isfinite(chunk)) and np.all(np.abs(chunk) <= 1.0 + 1e-6)


def test_actor_terms_reach_only_the_noise_network_and_the_critic_only_the_critic():
    agent = make_agent("qsm", OBS, ACT, "quick", seed=1, **TINY)
    batch = {k: jnp.asarray(v) for k, v in synthetic_batch(8, 5, OBS, ACT, 0.99, seed=1).items()}
    draws = agent.update_draws(jax.random.PRNGKey(3), 8)
    assert draws.times.min() >= 1 and draws.times.max() <= 4 and draws.next_action.steps.shape == (3, 8, 10)

    def part(key):
        def loss(p):
            _, info = DiffusionAgent.loss_from_draws(p, agent, batch, draws)
            return info[key]
        return jax.jit(jax.grad(loss))(agent.params)  # compiled: a fraction of the eager op-by-op cost

    for key, reached, untouched in (("critic/loss", "critic", "actor"), ("actor/loss", "actor", "critic")):
        grads = part(key)
        assert any(np.any(np.asarray(g)) for g in jax.tree_util.tree_leaves(grads[reached]))
        assert not any(np.any(np.asarray(g)) for g in jax.tree_util.tree_leaves(grads[untouched]))


MAZES = ("antmaze-large", "antmaze-giant", "humanoidmaze-medium", "humanoidmaze-large")
SCRIPT = {  # the QSM row (inv_temp, alpha) and the DAC row (alpha) of experiments/reproduce.py
    "puzzle-3x3": ((10, 30), 1.0), "scene": ((3, 30), 1.0), "cube-double": ((1, 10), 3.0),
    "antmaze-large": ((10, 10), 0.3), "humanoidmaze-medium": ((10, 30), 1.0), "cube-triple": ((10, 10), 0.3),
    "cube-quadruple": ((1, 10), 1.0), "puzzle-4x4": ((10, 1), 1.0), "antmaze-giant": ((10, 10), 0.3),
    "humanoidmaze-large": ((10, 30), 0.3),
}


@pytest.mark.parametrize("domain", sorted(SCRIPT))
def test_qam_preset_has_the_scripts_values(domain):
    (inv_temp, qsm_alpha), dac_alpha = SCRIPT[domain]
    qsm, dac = agent_config("qsm", "qam", domain), agent_config("dac", "qam", domain)
    for c in (qsm, dac):
        assert c.actor_hidden_dims == c.critic_hidden_dims == (512,) * 4
        assert (c.num_critics, c.q_agg, c.diffusion_steps, c.beta_schedule, c.max_grad_norm) == (10, "mean", 10, "vp",
                                                                                                  1.0)
        assert c.horizon == (1 if domain in MAZES else 5)
        assert c.discount == (0.995 if domain in MAZES[1:] else 0.99) and c.rho == (0 if "humanoid" in domain else 0.5)
        assert c.target_critic_grad and c.time_dim == 64
    assert (qsm.actor_loss, qsm.inv_temp, qsm.alpha, qsm.clip_sampler_before, qsm.clip_sampler_after) == (
        "qsm", inv_temp, qsm_alpha, False, True)
    assert (dac.actor_loss, dac.alpha, dac.clip_sampler_before, dac.clip_sampler_after) == ("dac", dac_alpha, True,
                                                                                            False)
    assert agent_config("qsm", "quick", domain).alpha == qsm_alpha  # every preset follows the QAM protocol
    assert agent_config("dac", "qam", domain, alpha=7.0).alpha == 7.0  # overrides win


def test_bad_settings_are_refused():
    from qchunk.errors import QchunkError

    for field, value in (("actor_loss", "awr"), ("beta_schedule", "sigmoid"), ("diffusion_steps", 0),
                         ("time_dim", 5), ("alpha", -1.0)):
        with pytest.raises(QchunkError, match=field):
            agent_config("qsm", "quick", **{field: value})


@pytest.mark.slow
@pytest.mark.parametrize("name", ["qsm", "dac"])
def test_train_offline_then_online_through_the_cli(name, tiny_ogbench_dir, tmp_path):
    """qsm: one seed, then ``qchunk eval`` of the run; dac: two seeds in one process (``--seeds``)."""
    run = tmp_path / name
    seeds = ["--seeds", "0,1"] if name == "dac" else []
    args = [QCHUNK, "train", "--agent", name, "--env", TINY_TASK, "--preset", "quick", "--dataset-dir",
            str(tiny_ogbench_dir), "--offline-steps", "150", "--online-steps", "150", "--eval-every", "150",
            "--eval-episodes", "1", "--episode-length", "30", "--start-training", "20", "--log-every", "50",
            "--eval-workers", "1", "--no-progress", "--actor-hidden-dims", "32", "32", "--critic-hidden-dims", "32",
            "32", "--num-critics", "3", "--diffusion-steps", "4", "--batch-size", "32", "--run-dir", str(run), *seeds]
    done = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    for seed_dir in ([run / "seed0", run / "seed1"] if seeds else [run]):
        config = json.loads((seed_dir / "config.json").read_text())
        assert config["agent"]["agent"] == name and config["agent"]["diffusion_steps"] == 4
        rows = read_rows(seed_dir / "train.csv", drop=())
        assert rows and all(math.isfinite(float(r["critic/loss"])) and math.isfinite(float(r["actor/loss"]))
                            for r in rows)
        assert {r["phase"] for r in read_rows(seed_dir / "eval.csv")} == {"offline", "online"}
    if not seeds:
        evaluated = subprocess.run([QCHUNK, "eval", str(run), "--episodes", "1", "--workers", "1",
                                    "--episode-length", "10"], capture_output=True, text=True, timeout=600)
        assert evaluated.returncode == 0, evaluated.stderr


def test_checkpoint_round_trip_resumes_exactly():
    agent = make_agent("dac", OBS, ACT, "quick", seed=3, **TINY)
    batch = synthetic_batch(8, 5, OBS, ACT, 0.99, seed=0)
    agent, _ = agent.update(batch)
    stored = json.loads(json.dumps(dataclasses.asdict(agent.config)))
    template = create_agent(agent_config_from_dict(stored), OBS, ACT, seed=99)
    restored = serialization.from_bytes(template, serialization.to_bytes(agent))
    next_batch = synthetic_batch(8, 5, OBS, ACT, 0.99, seed=1)
    (a1, i1), (a2, i2) = agent.update(next_batch), restored.update(next_batch)
    assert {k: float(v) for k, v in i1.items()} == {k: float(v) for k, v in i2.items()}
    for x, y in zip(jax.tree_util.tree_leaves(a1.params), jax.tree_util.tree_leaves(a2.params), strict=True):
        np.testing.assert_array_equal(x, y)
