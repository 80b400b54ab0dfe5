"""Loss functions and TD machinery against hand-computed numpy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qchunk.agents.losses import (
    critic_loss,
    distillation_loss,
    flow_interpolant,
    flow_matching_loss,
    q_maximisation_loss,
    squared_bc_loss,
)
from qchunk.agents.td import aggregate_ensemble, critic_actions, polyak_update, scan_updates, td_target


def test_td_target_uses_last_step_mask_and_discount_power():
    rewards = np.array([[-1.0, -1.99, -2.9701], [0.0, -0.99, -0.99], [-1.0, -1.0, -1.0]], np.float32)
    masks = np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]], np.float32)
    next_q = np.array([-10.0, -20.0, -30.0], np.float32)
    out = np.asarray(td_target(jnp.asarray(rewards), jnp.asarray(masks), jnp.asarray(next_q), 0.9))
    expected = np.array([-2.9701 + 0.9**3 * -10.0, -0.99 + 0.0, -1.0 + 0.0])
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    # h = 1: the ordinary one-step target r + gamma * mask * Q'
    out1 = np.asarray(td_target(jnp.asarray(rewards[:, :1]), jnp.asarray(masks[:, :1]), jnp.asarray(next_q), 0.9))
    np.testing.assert_allclose(out1, rewards[:, 0] + 0.9 * next_q, rtol=1e-6)


def test_aggregate_ensemble_mean_and_min():
    qs = jnp.array([[1.0, -2.0, 3.0], [3.0, 0.0, -1.0]])
    np.testing.assert_allclose(np.asarray(aggregate_ensemble(qs, "mean")), [2.0, -1.0, 1.0])
    np.testing.assert_allclose(np.asarray(aggregate_ensemble(qs, "min")), [1.0, -2.0, -1.0])
    with pytest.raises(ValueError):
        aggregate_ensemble(qs, "max")


def test_critic_loss_weights_and_normalisation():
    q = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 2.5, 3.0, -1.0]], np.float32)
    target = np.array([0.5, 2.0, 0.0, 1.0], np.float32)
    weights = np.array([1.0, 1.0, 0.0, 1.0], np.float32)
    expected = np.mean(weights[None] * (q - target[None]) ** 2)  # divides by K*B = 8
    out = float(critic_loss(jnp.asarray(q), jnp.asarray(target), jnp.asarray(weights)))
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    # the invalid sample's huge error changes nothing
    q2 = q.copy()
    q2[:, 2] = 1e4
    np.testing.assert_allclose(float(critic_loss(jnp.asarray(q2), jnp.asarray(target), jnp.asarray(weights))),
                               expected, rtol=1e-6)
    # no gradient into the target
    g = jax.grad(lambda t: critic_loss(jnp.asarray(q), t, jnp.asarray(weights)))(jnp.asarray(target))
    assert not np.any(np.asarray(g))


def test_flow_interpolant_path_and_velocity():
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((5, 4)).astype(np.float32)
    x1 = rng.uniform(-1, 1, (5, 4)).astype(np.float32)
    u = rng.uniform(size=(5, 1)).astype(np.float32)
    x_u, vel = flow_interpolant(jnp.asarray(x0), jnp.asarray(x1), jnp.asarray(u))
    np.testing.assert_allclose(np.asarray(x_u), (1 - u) * x0 + u * x1, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(vel), x1 - x0, rtol=1e-6, atol=1e-6)
    ends0, _ = flow_interpolant(jnp.asarray(x0), jnp.asarray(x1), jnp.zeros((5, 1)))
    ends1, _ = flow_interpolant(jnp.asarray(x0), jnp.asarray(x1), jnp.ones((5, 1)))
    np.testing.assert_allclose(np.asarray(ends0), x0)
    np.testing.assert_allclose(np.asarray(ends1), x1, atol=1e-7)


def test_flow_matching_loss_weights_steps_as_each_paper():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((3, 4, 2)).astype(np.float32)
    t = rng.standard_normal((3, 4, 2)).astype(np.float32)
    w = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], np.float32)
    sq = ((v - t) ** 2).mean(-1)  # (3, 4)
    step = (sq * w).sum() / w.size  # Q-chunking: zero the steps past the end, mean over all numbers
    chunk = (sq.mean(-1) * w[:, -1]).sum() / 3  # QAM: drop a chunk whose last step is past the end
    np.testing.assert_allclose(float(flow_matching_loss(jnp.asarray(v), jnp.asarray(t), jnp.asarray(w))), step,
                               rtol=1e-6)
    np.testing.assert_allclose(float(flow_matching_loss(jnp.asarray(v), jnp.asarray(t), jnp.asarray(w), "chunk")),
                               chunk, rtol=1e-6)
    np.testing.assert_allclose(float(flow_matching_loss(jnp.asarray(v), jnp.asarray(t))), sq.mean(), rtol=1e-6)
    # steps past the episode end may hold anything
    v2 = v.copy()
    v2[1, 2:] = 100.0
    v2[2, 1:] = 100.0
    for how, expected in (("step", step), ("chunk", chunk)):
        np.testing.assert_allclose(float(flow_matching_loss(jnp.asarray(v2), jnp.asarray(t), jnp.asarray(w), how)),
                                   expected, rtol=1e-6)


def test_distillation_loss_mean_over_dims_and_no_target_gradient():
    a = jnp.array([[0.5, -0.5, 2.0], [0.0, 1.0, -1.0]])
    target = jnp.array([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(float(distillation_loss(a, target)), np.mean((np.asarray(a - target)) ** 2))
    g_target = jax.grad(lambda t: distillation_loss(a, t))(target)
    assert not np.any(np.asarray(g_target))
    g_a = jax.grad(lambda x: distillation_loss(x, target))(a)
    np.testing.assert_allclose(np.asarray(g_a), 2 * np.asarray(a - target) / a.size, rtol=1e-6)


def test_q_maximisation_loss_and_normalisation():
    q = jnp.array([-2.0, -4.0, 0.0, 2.0])
    np.testing.assert_allclose(float(q_maximisation_loss(q)), 1.0)
    np.testing.assert_allclose(float(q_maximisation_loss(q, normalize=True)), 1.0 / 2.0, rtol=1e-5)
    # the scale is a constant: d/dq = -1 / (B * mean|q|)
    g = jax.grad(lambda x: q_maximisation_loss(x, normalize=True))(q)
    np.testing.assert_allclose(np.asarray(g), np.full(4, -1.0 / (4 * 2.0)), rtol=1e-5)


def test_q_maximisation_loss_eps_of_the_scale():
    q = jnp.array([-2.0, -4.0, 0.0, 2.0])
    np.testing.assert_allclose(float(q_maximisation_loss(q, normalize=True, eps=0.0)), 0.5, rtol=1e-7)
    np.testing.assert_allclose(float(q_maximisation_loss(q, normalize=True, eps=2.0)), 1.0 / 4.0, rtol=1e-6)


def test_squared_bc_loss_sums_dims_weights_samples_and_averages_the_batch():
    rng = np.random.default_rng(0)
    a, d = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    w = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    want = np.mean(w * np.sum((a - d) ** 2, axis=-1))
    got = squared_bc_loss(jnp.asarray(a, jnp.float32), jnp.asarray(d, jnp.float32), jnp.asarray(w, jnp.float32))
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    g = jax.grad(lambda x: squared_bc_loss(x, jnp.asarray(d, jnp.float32), jnp.asarray(w, jnp.float32)))(
        jnp.asarray(a, jnp.float32))
    np.testing.assert_allclose(np.asarray(g), 2 * w[:, None] * (a - d) / 6, rtol=1e-5, atol=1e-7)


def test_critic_actions_chunk_or_first_action():
    actions = jnp.arange(2 * 3 * 2, dtype=jnp.float32).reshape(2, 3, 2)
    np.testing.assert_array_equal(np.asarray(critic_actions(actions, True)), np.asarray(actions).reshape(2, 6))
    np.testing.assert_array_equal(np.asarray(critic_actions(actions, False)), np.asarray(actions)[:, 0])


def test_polyak_update():
    online = {"a": jnp.array([1.0, 2.0]), "b": {"c": jnp.array(4.0)}}
    target = {"a": jnp.array([0.0, 0.0]), "b": {"c": jnp.array(2.0)}}
    out = polyak_update(online, target, 0.25)
    np.testing.assert_allclose(np.asarray(out["a"]), [0.25, 0.5])
    np.testing.assert_allclose(float(out["b"]["c"]), 2.5)


def test_scan_updates_runs_in_order_and_stacks_metrics():
    def update(state, batch):
        new = state * 2.0 + batch["x"]
        return new, {"value": new}

    batches = {"x": jnp.array([1.0, 2.0, 3.0])}
    state, info = jax.jit(lambda s, b: scan_updates(update, s, b))(jnp.array(0.0), batches)
    # 0 -> 1 -> 4 -> 11
    assert float(state) == 11.0
    np.testing.assert_array_equal(np.asarray(info["value"]), [1.0, 4.0, 11.0])
