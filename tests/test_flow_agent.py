"""The flow agent: TD target and critic loss against numpy, best-of-N, -n variants, determinism."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qchunk.agents import common, flow_agent, make_agent
from qchunk.agents.flow_agent import critic_objective, loss_keys
from qchunk.errors import QchunkError

OBS, ACT = 3, 2
TINY = {"actor_hidden_dims": (16, 16), "critic_hidden_dims": (16, 16), "flow_steps": 3, "num_samples": 4}


@functools.cache
def _tiny(name, seed, overrides):
    return make_agent(name, OBS, ACT, preset="quick", seed=seed, **{**TINY, **dict(overrides)})


def tiny(name, seed=0, **overrides):
    """A small agent; identical settings share one instance (agents are immutable) and compilations."""
    return _tiny(name, seed, tuple(sorted(overrides.items())))


def np_gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def np_critics(params, obs, act):
    """Independent numpy forward of the K critics (gelu + LayerNorm after each hidden layer)."""
    members = params["critics"]
    n_layers = len([k for k in members if k.startswith("dense_")])
    out = []
    for k in range(members["dense_0"]["kernel"].shape[0]):
        x = np.concatenate([obs, act], -1).astype(np.float64)
        for i in range(n_layers):
            x = x @ np.asarray(members[f"dense_{i}"]["kernel"][k]) + np.asarray(members[f"dense_{i}"]["bias"][k])
            if i + 1 < n_layers:
                x = np_gelu(x)
                ln = members[f"layer_norm_{i}"]
                x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6)
                x = x * np.asarray(ln["scale"][k]) + np.asarray(ln["bias"][k])
        out.append(x[:, 0])
    return np.stack(out)


def make_batch(h, size=6, seed=0):
    rng = np.random.default_rng(seed)
    r = -rng.uniform(0.0, 1.0, (size, h))
    disc = 0.99 ** np.arange(h)
    masks = np.ones((size, h))
    masks[1, h - 1:] = 0.0  # success at the last step of sample 1
    valid = np.ones((size, h))
    if h > 1:
        masks[2, 1:] = 0.0  # success inside the window of sample 2
        valid[3, 2:] = 0.0  # episode boundary inside the window of sample 3
    return {
        "observations": rng.standard_normal((size, OBS)),
        "actions": rng.uniform(-1, 1, (size, h, ACT)),
        "rewards": np.cumsum(r * disc, axis=1),
        "masks": masks,
        "valid": valid,
        "next_observations": rng.standard_normal((size, h, OBS)),
    }


def f32(batch):
    return {k: np.asarray(v, np.float32) for k, v in batch.items()}


@pytest.mark.parametrize(
    ("name", "q_agg"), [("qc", "mean"), ("qc", "min"), ("bfn-n", "mean"), ("fql", "min"), ("qc-fql", "mean")]
)
def test_critic_loss_and_target_match_numpy(name, q_agg):
    agent = tiny(name, q_agg=q_agg)
    # a target critic that differs from the online one, to see which is used where
    agent = agent.replace(target_params={"critic": tiny(name, seed=7, q_agg=q_agg).params["critic"]})
    h = agent.config.horizon
    batch = make_batch(h)
    width = agent.config.policy_dim(ACT)
    next_actions = np.random.default_rng(5).uniform(-1, 1, (6, width)).astype(np.float32)
    loss, terms = jax.jit(critic_objective)(agent, agent.params["critic"], f32(batch), jnp.asarray(next_actions))

    data = batch["actions"].reshape(6, -1) if agent.config.chunked else batch["actions"][:, 0]
    q = np_critics(agent.params["critic"], batch["observations"], data)
    next_qs = np_critics(agent.target_params["critic"], batch["next_observations"][:, -1], next_actions)
    next_q = next_qs.mean(0) if q_agg == "mean" else next_qs.min(0)
    target = batch["rewards"][:, -1] + 0.99**h * batch["masks"][:, -1] * next_q
    expected = np.mean(batch["valid"][:, -1][None] * (q - target[None]) ** 2)

    np.testing.assert_allclose(np.asarray(terms["q"]), q, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(terms["target"]), target, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-4, atol=1e-6)
    if h == 1:  # the h=1 variants are plain one-step TD
        one_step = batch["rewards"][:, 0] + 0.99 * batch["masks"][:, 0] * next_q
        np.testing.assert_allclose(np.asarray(terms["target"]), one_step, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("q_agg", ["mean", "min"])
def test_best_of_n_returns_highest_aggregated_q_candidate(q_agg):
    agent = tiny("qc", num_samples=8, q_agg=q_agg)  # N=8 (more than the tiny default) for a real choice
    obs = jnp.asarray(np.random.default_rng(0).standard_normal((16, OBS)), jnp.float32)
    key = jax.random.PRNGKey(3)
    cands, scores = agent.sample_candidates(obs, key)
    chosen = agent.sample_actions(obs, key)
    assert cands.shape == (16, 8, 5, ACT) and scores.shape == (16, 8) and chosen.shape == (16, 5, ACT)
    qs = np_critics(agent.params["critic"], np.repeat(np.asarray(obs), 8, 0),
                    np.asarray(cands).reshape(16 * 8, -1)).reshape(-1, 16, 8)
    agg = qs.mean(0) if q_agg == "mean" else qs.min(0)
    np.testing.assert_allclose(np.asarray(scores), agg, rtol=1e-4, atol=1e-5)
    best = agg.argmax(1)
    assert len(set(best.tolist())) > 1  # the pick depends on the state, not a fixed index
    np.testing.assert_array_equal(np.asarray(chosen), np.asarray(cands)[np.arange(16), best])
    q_chosen = np.asarray(agent.q_values(obs, chosen))  # (K, 16) from (16, H, A) chunks
    q_chosen = q_chosen.mean(0) if q_agg == "mean" else q_chosen.min(0)
    np.testing.assert_allclose(q_chosen, agg.max(1), rtol=1e-4, atol=1e-5)
    assert np.all(np.abs(np.asarray(cands)) <= 1.0)
    # one observation -> one chunk
    single = agent.sample_actions(obs[0], key)
    assert single.shape == (5, ACT)


@pytest.mark.slow
def test_td_target_action_is_the_best_of_n_chunk():
    agent = tiny("qc")
    batch = f32(make_batch(5))
    new_agent, info = agent.update(batch)
    key = jax.random.split(agent.rng)[1]
    next_actions = agent.sample_actions(batch["next_observations"][:, -1], loss_keys(key).next_action)
    loss, _ = jax.jit(critic_objective)(agent, agent.params["critic"], batch, next_actions.reshape(6, -1))
    np.testing.assert_allclose(float(info["critic/loss"]), float(loss), rtol=1e-5)
    assert int(new_agent.step) == 1


@pytest.mark.parametrize(("name", "reads_rest"), [("bfn-n", False), ("fql-n", False), ("qc", True)])
def test_n_step_variants_read_only_the_first_action(name, reads_rest):
    agent = tiny(name)
    batch = make_batch(5)
    other = dict(batch)
    other["actions"] = batch["actions"].copy()
    other["actions"][:, 1:] = np.random.default_rng(9).uniform(-1, 1, other["actions"][:, 1:].shape)
    a1, _ = agent.update(f32(batch))
    a2, _ = agent.update(f32(other))
    same = jax.tree_util.tree_all(jax.tree_util.tree_map(np.array_equal, a1.params, a2.params))
    assert same != reads_rest
    assert agent.action_horizon == (5 if reads_rest else 1)


def test_window_reads_only_last_next_observation_and_return():
    agent = tiny("qc")
    batch = make_batch(5)
    other = {k: v.copy() for k, v in batch.items()}
    other["next_observations"][:, :-1] += 5.0
    other["rewards"][:, :-1] -= 3.0
    other["masks"][:, :-1] = 1.0 - other["masks"][:, :-1]
    a1, i1 = agent.update(f32(batch))
    a2, _ = agent.update(f32(other))
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(np.array_equal, a1.params, a2.params))
    # ...but the last entries matter
    other["rewards"][:, -1] -= 3.0
    _, i3 = agent.update(f32(other))
    assert float(i3["critic/loss"]) != float(i1["critic/loss"])


def test_chunks_with_invalid_last_step_do_not_train_the_critic():
    agent = tiny("qc")
    batch = make_batch(5)  # sample 3 crosses an episode end: valid[3, -1] == 0
    other = {k: v.copy() for k, v in batch.items()}
    other["rewards"][3] -= 100.0
    other["next_observations"][3, -1] += 10.0
    a1, i1 = agent.update(f32(batch))
    a2, i2 = agent.update(f32(other))
    np.testing.assert_array_equal(float(i1["critic/loss"]), float(i2["critic/loss"]))
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(np.array_equal, a1.params, a2.params))
    other["rewards"][0] -= 100.0  # a valid chunk does matter
    _, i3 = agent.update(f32(other))
    assert float(i3["critic/loss"]) > float(i1["critic/loss"])


def test_distill_losses_reach_only_their_own_networks():
    agent = tiny("qc-fql")  # alpha = 300
    batch = {k: jnp.asarray(v) for k, v in f32(make_batch(5)).items()}
    key = jax.random.PRNGKey(1)

    def terms(params):
        _, info = flow_agent.FlowAgent.loss_fn(params, agent, batch, key)
        policy = 300.0 * info["actor/distill_loss"] + info["actor/q_loss"]
        return jnp.stack([info["critic/loss"], info["actor/bc_flow_loss"], policy]), info

    def term_grads(params):  # one backward pass per term, batched (one compilation)
        _, pullback, info = jax.vjp(terms, params, has_aux=True)
        (grads,) = jax.vmap(pullback)(jnp.eye(3))
        return [jax.tree_util.tree_map(lambda g, i=i: g[i], grads) for i in range(3)], info

    (critic, bc, policy), info = jax.jit(term_grads)(agent.params)

    def nonzero(tree):
        return any(np.any(np.asarray(x)) for x in jax.tree_util.tree_leaves(tree))

    # TD loss -> critic only; BC flow loss -> flow only; -Q + alpha * distill -> one-step policy only
    # (the flow target and the critic inside the actor loss are constants).
    assert [nonzero(critic[k]) for k in ("critic", "flow", "onestep")] == [True, False, False]
    assert [nonzero(bc[k]) for k in ("critic", "flow", "onestep")] == [False, True, False]
    assert [nonzero(policy[k]) for k in ("critic", "flow", "onestep")] == [False, False, True]
    assert float(info["actor/distill_loss"]) > 0.0
    np.testing.assert_allclose(
        float(info["actor/loss"]),
        float(info["actor/bc_flow_loss"]) + 300.0 * float(info["actor/distill_loss"]) + float(info["actor/q_loss"]),
        rtol=1e-5,
    )
    np.testing.assert_allclose(float(info["actor/q_loss"]), -float(info["actor/q_mean"]), rtol=1e-6)


def test_polyak_target_follows_the_pre_update_critic():
    agent = tiny("fql", q_agg="min")
    agent = agent.replace(target_params={"critic": tiny("fql", seed=7, q_agg="min").params["critic"]})
    new, _ = agent.update(f32(make_batch(1)))
    tau = agent.config.tau
    expected = jax.tree_util.tree_map(lambda p, t: tau * p + (1 - tau) * t,
                                      agent.params["critic"], agent.target_params["critic"])
    for got, want in zip(jax.tree_util.tree_leaves(new.target_params["critic"]),
                         jax.tree_util.tree_leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-7)
    # the online critic did move
    assert not np.array_equal(np.asarray(jax.tree_util.tree_leaves(new.params["critic"])[0]),
                              np.asarray(jax.tree_util.tree_leaves(agent.params["critic"])[0]))


def test_same_seed_gives_bitwise_identical_parameters_after_10_updates():
    batches = [f32(make_batch(5, seed=i)) for i in range(10)]

    def run(seed):
        agent = tiny("qc-fql", seed=seed)
        for b in batches:
            agent, _ = agent.update(b)
        return agent

    a, b, c = run(0), run(0), run(1)
    leaves_a = jax.tree_util.tree_leaves((a.params, a.target_params, a.opt_state, a.rng))
    leaves_b = jax.tree_util.tree_leaves((b.params, b.target_params, b.opt_state, b.rng))
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not np.array_equal(np.asarray(jax.tree_util.tree_leaves(a.params)[0]),
                              np.asarray(jax.tree_util.tree_leaves(c.params)[0]))


def test_update_many_equals_sequential_updates():
    agent = tiny("qc")
    batches = [f32(make_batch(5, seed=i)) for i in range(3)]
    seq = agent
    losses = []
    for b in batches:
        seq, info = seq.update(b)
        losses.append(float(info["critic/loss"]))
    stacked = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
    many, info_many = agent.update_many(stacked)
    assert int(many.step) == 3
    for x, y in zip(jax.tree_util.tree_leaves(seq.params), jax.tree_util.tree_leaves(many.params), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)
    assert info_many["critic/loss"].shape == (3,)
    np.testing.assert_allclose(np.asarray(info_many["critic/loss"]), losses, rtol=1e-4)


def test_info_metrics_are_namespaced_scalars():
    _, info = tiny("qc-fql").update(f32(make_batch(5)))
    expected = {"critic/loss", "critic/q_mean", "critic/target_mean", "actor/loss", "actor/bc_flow_loss",
                "actor/distill_loss", "actor/q_loss", "optim/grad_norm"}
    assert expected <= set(info)
    assert all(np.shape(v) == () and np.isfinite(float(v)) for v in info.values())


def test_tiled_best_of_n_equals_one_pass(monkeypatch):
    agent = tiny("qc", num_samples=8)
    obs = jnp.asarray(np.random.default_rng(4).standard_normal((256, OBS)), jnp.float32)
    key = jax.random.PRNGKey(11)
    assert flow_agent._num_tiles(256, 8) == 2 and flow_agent._num_tiles(1, 32) == 1
    assert flow_agent._num_tiles(255, 32) == 5  # always a divisor of the batch

    def run():
        fn = jax.jit(lambda p, o, k: flow_agent._best_of_n(agent.networks, agent.config, p, o, k))
        return fn(agent.params, obs, agent.policy_noise(key, 256))

    tiled = run()
    monkeypatch.setattr(flow_agent, "_TILE_ROWS", 10**9)
    assert flow_agent._num_tiles(256, 8) == 1
    single = run()
    for a, b in zip(tiled, single, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_batch_contract_is_checked():
    agent = tiny("qc")
    batch = f32(make_batch(5))
    with pytest.raises(QchunkError, match="masks"):
        agent.update({k: v for k, v in batch.items() if k != "masks"})
    short = dict(batch, actions=batch["actions"][:, :3])
    with pytest.raises(QchunkError, match=r"actions.*\(6, 5, 2\)"):
        agent.update(short)


def test_bc_flow_loss_regresses_x1_minus_x0_on_valid_steps():
    agent = tiny("qc")
    batch = make_batch(5)  # sample 3 has invalid steps 2..4
    key = jax.random.PRNGKey(21)
    _, info = jax.jit(flow_agent.FlowAgent.loss_fn)(agent.params, agent, f32(batch), key)
    keys = loss_keys(key)
    x1 = batch["actions"].reshape(6, -1)
    x0 = np.asarray(common.normal(keys.bc_noise, x1.shape), np.float64)
    u = np.asarray(common.uniform(keys.bc_time, (6, 1)), np.float64)
    x_u = (1 - u) * x0 + u * x1
    # independent numpy forward of the flow MLP (gelu, no LayerNorm) on [s, x_u, u]
    p = agent.params["flow"]["mlp"]
    h = np.concatenate([batch["observations"], x_u, u], -1)
    for i in range(3):
        h = h @ np.asarray(p[f"dense_{i}"]["kernel"]) + np.asarray(p[f"dense_{i}"]["bias"])
        if i < 2:
            h = np_gelu(h)
    per_step = ((h - (x1 - x0)) ** 2).reshape(6, 5, ACT).mean(-1)
    expected = (per_step * batch["valid"]).mean()  # acfql: invalid steps zeroed, the mean over all B*h
    np.testing.assert_allclose(float(info["actor/bc_flow_loss"]), expected, rtol=1e-4)
