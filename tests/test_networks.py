"""Networks: multi-input MLPs equal a plain MLP on concatenated inputs; ensembles; Euler integration."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qchunk.networks import MLP, CriticEnsemble, FlowVelocity, OneStepPolicy, concat_inputs, euler_integrate


def np_gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def np_mlp(params, x, n_layers, layer_norm, activate_final=False):
    """Independent numpy forward pass of qchunk's MLP on an already concatenated input."""
    x = np.asarray(x, np.float64)
    for i in range(n_layers):
        layer = params[f"dense_{i}"]
        x = x @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"], np.float64)
        if i + 1 < n_layers or activate_final:
            x = np_gelu(x)
            if layer_norm:
                ln = params[f"layer_norm_{i}"]
                mu = x.mean(-1, keepdims=True)
                var = x.var(-1, keepdims=True)
                x = (x - mu) / np.sqrt(var + 1e-6) * np.asarray(ln["scale"]) + np.asarray(ln["bias"])
    return x


@pytest.mark.parametrize("layer_norm", [False, True])
def test_mlp_multi_input_equals_numpy_on_concatenation(layer_norm):
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((4, 3)).astype(np.float32)
    act = rng.standard_normal((4, 5)).astype(np.float32)
    t = rng.uniform(size=(4, 1)).astype(np.float32)
    mlp = MLP((16, 16, 2), layer_norm=layer_norm)
    params = mlp.init(jax.random.PRNGKey(0), obs, act, t)["params"]
    # One kernel over the concatenated width, initialised with zero biases.
    assert params["dense_0"]["kernel"].shape == (3 + 5 + 1, 16)
    assert not np.any(np.asarray(params["dense_0"]["bias"]))
    assert ("layer_norm_0" in params) == layer_norm
    out = jax.jit(mlp.apply)({"params": params}, obs, act, t)
    ref = np_mlp(params, np.concatenate([obs, act, t], -1), 3, layer_norm)
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5, atol=1e-5)


def test_mlp_broadcasts_shared_inputs():
    rng = np.random.default_rng(1)
    obs = rng.standard_normal((3, 1, 4)).astype(np.float32)
    act = rng.standard_normal((3, 6, 2)).astype(np.float32)
    mlp = MLP((8, 1))
    params = jax.jit(mlp.init)(jax.random.PRNGKey(1), obs, act)
    apply = jax.jit(mlp.apply)
    out = apply(params, obs, act)
    assert out.shape == (3, 6, 1)
    repeated = apply(params, concat_inputs(obs, act)[..., :4], act)
    np.testing.assert_allclose(np.asarray(out), np.asarray(repeated), rtol=1e-6, atol=1e-6)
    ref = np_mlp(params["params"], np.asarray(concat_inputs(obs, act)), 2, False)
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5, atol=1e-5)


def test_mlp_initialiser_is_glorot_uniform():
    mlp = MLP((256, 256))
    params = mlp.init(jax.random.PRNGKey(0), jnp.zeros((1, 256)))["params"]
    kernel = np.asarray(params["dense_1"]["kernel"])
    limit = np.sqrt(6.0 / (256 + 256))
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.95 * limit  # uniform on [-limit, limit], not a narrower init
    np.testing.assert_allclose(kernel.std(), limit / np.sqrt(3.0), rtol=0.02)


def test_critic_ensemble_members_are_independent_mlps():
    rng = np.random.default_rng(2)
    obs = rng.standard_normal((5, 3)).astype(np.float32)
    act = rng.uniform(-1, 1, (5, 4)).astype(np.float32)
    critic = CriticEnsemble((8, 8), num_critics=3, layer_norm=True)
    params = jax.jit(critic.init)(jax.random.PRNGKey(0), obs, act)["params"]
    apply = jax.jit(critic.apply)
    q = np.asarray(apply({"params": params}, obs, act))
    assert q.shape == (3, 5)
    members = params["critics"]
    assert members["dense_0"]["kernel"].shape == (3, 7, 8)
    for k in range(3):
        member = jax.tree_util.tree_map(lambda x, k=k: x[k], members)
        ref = np_mlp(member, np.concatenate([obs, act], -1), 3, True)[:, 0]
        np.testing.assert_allclose(q[k], ref, rtol=1e-5, atol=1e-5)
    assert not np.allclose(q[0], q[1])  # independently initialised
    # N candidates per state with a broadcast state give the same values as repeated states.
    cands = rng.uniform(-1, 1, (5, 6, 4)).astype(np.float32)
    q_b = apply({"params": params}, obs[:, None], cands)
    q_r = apply({"params": params}, np.repeat(obs[:, None], 6, 1), cands)
    assert q_b.shape == (3, 5, 6)
    np.testing.assert_allclose(np.asarray(q_b), np.asarray(q_r), rtol=1e-6, atol=1e-6)


def test_flow_and_policy_shapes():
    obs = jnp.ones((7, 3))
    flow = FlowVelocity((8, 8), action_dim=10)
    fp = flow.init(jax.random.PRNGKey(0), obs, jnp.zeros((7, 10)), jnp.zeros((7, 1)))
    assert flow.apply(fp, obs, jnp.zeros((7, 10)), jnp.full((1,), 0.3)).shape == (7, 10)
    assert fp["params"]["mlp"]["dense_0"]["kernel"].shape == (3 + 10 + 1, 8)
    policy = OneStepPolicy((8,), action_dim=10)
    pp = policy.init(jax.random.PRNGKey(0), obs, jnp.zeros((7, 10)))
    assert policy.apply(pp, obs, jnp.zeros((7, 10))).shape == (7, 10)
    assert pp["params"]["mlp"]["dense_0"]["kernel"].shape == (3 + 10, 8)


def test_euler_constant_velocity_is_exact():
    x0 = jnp.asarray(np.random.default_rng(3).standard_normal((4, 6)), jnp.float32)
    c = jnp.linspace(-1.0, 1.0, 6)
    out = euler_integrate(lambda x, u: jnp.broadcast_to(c, x.shape), x0, steps=10)
    np.testing.assert_allclose(np.asarray(out), np.asarray(x0 + c), rtol=1e-6, atol=1e-6)


def test_euler_uses_left_endpoint_times_and_linear_recursion():
    # v(x, u) = a * x + u: Euler gives x_{i+1} = x_i + (a x_i + i/T) / T exactly.
    a, steps = -0.7, 7
    x0 = np.array([[0.5, -2.0]], np.float32)
    out = euler_integrate(lambda x, u: a * x + u, jnp.asarray(x0), steps)
    ref = x0.astype(np.float64)
    for i in range(steps):
        ref = ref + (a * ref + i / steps) / steps
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5, atol=1e-6)
    # time-only field u: sum_i (i/T)/T = (T-1)/(2T), not the exact integral 1/2
    out_t = euler_integrate(lambda x, u: jnp.broadcast_to(u, x.shape), jnp.zeros((1, 1)), steps)
    np.testing.assert_allclose(float(out_t[0, 0]), (steps - 1) / (2 * steps), rtol=1e-6)


def test_euler_through_flow_module_with_constant_output():
    flow = FlowVelocity((4,), action_dim=3)
    obs = jnp.ones((2, 5))
    params = flow.init(jax.random.PRNGKey(0), obs, jnp.zeros((2, 3)), jnp.zeros((2, 1)))["params"]
    # zero the output kernel and set its bias: the field is the constant (0.1, -0.2, 0.3)
    params = jax.tree_util.tree_map(lambda x: x, params)
    params["mlp"]["dense_1"]["kernel"] = jnp.zeros_like(params["mlp"]["dense_1"]["kernel"])
    params["mlp"]["dense_1"]["bias"] = jnp.array([0.1, -0.2, 0.3])
    x0 = jnp.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    out = euler_integrate(lambda x, u: flow.apply({"params": params}, obs, x, u), x0, 10)
    np.testing.assert_allclose(np.asarray(out), np.asarray(x0) + np.array([0.1, -0.2, 0.3]), atol=1e-6)


def test_euler_rejects_zero_steps():
    with pytest.raises(ValueError):
        euler_integrate(lambda x, u: x, jnp.zeros(2), 0)


def test_mlp_norm_before_activation_is_activation_of_layernorm_of_dense():
    import flax.linen as nn

    rng = np.random.default_rng(5)
    obs = rng.standard_normal((4, 3)).astype(np.float32)
    act = rng.standard_normal((4, 2)).astype(np.float32)
    mlp = MLP((16, 16, 1), activation=nn.relu, layer_norm=True, norm_before_activation=True)
    params = mlp.init(jax.random.PRNGKey(0), obs, act)["params"]
    params = jax.tree_util.tree_map(lambda x: x + 0.2 * jnp.asarray(rng.standard_normal(x.shape), x.dtype), params)
    x = np.concatenate([obs, act], -1).astype(np.float64)
    for i in range(2):
        x = x @ np.asarray(params[f"dense_{i}"]["kernel"], np.float64) + np.asarray(params[f"dense_{i}"]["bias"])
        ln = params[f"layer_norm_{i}"]
        x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6)
        x = np.maximum(x * np.asarray(ln["scale"]) + np.asarray(ln["bias"]), 0.0)
    ref = x @ np.asarray(params["dense_2"]["kernel"], np.float64) + np.asarray(params["dense_2"]["bias"])
    np.testing.assert_allclose(np.asarray(mlp.apply({"params": params}, obs, act)), ref, rtol=1e-4, atol=1e-5)
    # the default order (LayerNorm after the activation) is a different function of the same parameters
    after = MLP((16, 16, 1), activation=nn.relu, layer_norm=True)
    assert not np.allclose(np.asarray(after.apply({"params": params}, obs, act)), ref, atol=1e-3)
    # without LayerNorm the option changes nothing
    plain = MLP((16, 16, 1), activation=nn.relu)
    plain_first = MLP((16, 16, 1), activation=nn.relu, norm_before_activation=True)
    p = plain.init(jax.random.PRNGKey(1), obs, act)
    np.testing.assert_array_equal(np.asarray(plain.apply(p, obs, act)), np.asarray(plain_first.apply(p, obs, act)))


def test_tanh_gaussian_policy_heads_and_log_std_clip():
    from qchunk.networks import TanhGaussianPolicy

    policy = TanhGaussianPolicy((8, 8), action_dim=3)
    obs = jnp.ones((2, 4))
    params = policy.init(jax.random.PRNGKey(0), obs)["params"]
    assert set(params) == {"trunk", "mean", "log_std"}
    assert params["mean"]["kernel"].shape == params["log_std"]["kernel"].shape == (8, 3)
    for bias, expected in ((-1e3, -20.0), (1e3, 2.0), (-7.0, -7.0)):
        p = {**params, "log_std": {"kernel": jnp.zeros((8, 3)), "bias": jnp.full((3,), bias)}}
        _, log_std = policy.apply({"params": p}, obs)
        np.testing.assert_allclose(np.asarray(log_std), expected)
