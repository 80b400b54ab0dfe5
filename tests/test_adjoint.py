"""Adjoint matching maths (qchunk.agents.adjoint) against closed forms: linear BC fields, quadratic critics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qchunk.agents.adjoint import (
    adjoint_matching_loss,
    flow_times,
    lean_adjoint,
    memoryless_sigma,
    sample_controlled,
    sample_memoryless,
    tilted_velocity,
)

P, B = 2, 4
A0 = np.array([[-0.8, 0.3], [0.1, -0.5]])
A1 = np.array([[0.6, -0.2], [0.4, 0.9]])
C0 = np.array([0.2, -0.1])


def linear_field(x, u):
    """v(x, u) = (A0 + u A1) x + (1 - u) C0: a linear, time-dependent BC field."""
    a = jnp.asarray(A0, x.dtype) + u[0] * jnp.asarray(A1, x.dtype)
    return x @ a.T + (1.0 - u[0]) * jnp.asarray(C0, x.dtype)


def test_sigma_is_the_shifted_memoryless_schedule():
    t = np.array([0.0, 0.25, 0.9])
    np.testing.assert_allclose(memoryless_sigma(jnp.asarray(t), 10), np.sqrt(2 * (1 - t + 0.1) / (t + 0.1)), rtol=1e-6)
    np.testing.assert_allclose(flow_times(4), [0.0, 0.25, 0.5, 0.75])


def test_sampling_follows_euler_maruyama_with_a_deterministic_base_last_step():
    steps = 4
    rng = np.random.default_rng(0)
    x0, xi = rng.standard_normal((B, P)), rng.standard_normal((steps - 1, B, P))
    fine = lambda x, u: linear_field(x, u) + 0.3  # noqa: E731
    states, final = sample_memoryless(fine, linear_field, jnp.asarray(x0, jnp.float32), jnp.asarray(xi, jnp.float32))
    h, x, expected = 1 / steps, x0, []
    for i in range(steps):
        u = i * h
        expected.append(x)
        v_base = x @ (A0 + u * A1).T + (1 - u) * C0
        if i < steps - 1:
            sigma = np.sqrt(2 * (1 - u + h) / (u + h))
            x = x + h * (2 * (v_base + 0.3) - x / (u + h)) + np.sqrt(h) * sigma * xi[i]
        else:
            x = x + h * v_base
    np.testing.assert_allclose(states, np.stack(expected), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(final, x, rtol=1e-5, atol=1e-5)


def numpy_controlled(x0, xi, offset, steps):
    """The controlled chain of :func:`sample_controlled` in float64 numpy: fine = linear field + offset(u)."""
    h, x, cost = 1 / steps, x0, np.zeros(x0.shape[0])
    for i in range(steps):
        u = i * h
        v_base = x @ (A0 + u * A1).T + (1 - u) * C0
        if i == steps - 1:
            return x + h * v_base, cost
        sigma2 = 2 * (1 - u + h) / (u + h)
        d = offset[i]
        cost = cost + np.sum(d ** 2) * 2 / sigma2
        x = x + h * (2 * (v_base + d) - x / (u + h)) + np.sqrt(h * sigma2) * xi[i]


def test_controlled_chain_and_its_cost_match_numpy_and_differentiate_through_every_step():
    steps = 4
    rng = np.random.default_rng(1)
    x0, xi = rng.standard_normal((B, P)), rng.standard_normal((steps - 1, B, P))
    offset = 0.3 * rng.standard_normal((steps - 1, P))  # the control at each stochastic step: a parameter

    def run(off):
        def control(x, u):
            d = off[jnp.minimum(jnp.round(u[0] * steps).astype(jnp.int32), steps - 2)]
            return linear_field(x, u) + d, jnp.broadcast_to(d, x.shape)
        return sample_controlled(control, linear_field, jnp.asarray(x0, jnp.float32), jnp.asarray(xi, jnp.float32))

    final, cost = run(jnp.asarray(offset, jnp.float32))
    want_final, want_cost = numpy_controlled(x0, xi, offset, steps)
    np.testing.assert_allclose(final, want_final, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cost, want_cost, rtol=1e-5, atol=1e-6)
    # with no control the endpoint is that of sample_memoryless with the base field as the fine one
    _, plain = sample_memoryless(linear_field, linear_field, jnp.asarray(x0, jnp.float32), jnp.asarray(xi, jnp.float32))
    np.testing.assert_allclose(run(jnp.zeros_like(jnp.asarray(offset, jnp.float32)))[0], plain, rtol=1e-5, atol=1e-6)
    # d/d(offset) of sum(final) + mean(cost) by the chain rule through the steps = central differences
    objective = lambda off: jnp.sum(run(off)[0]) + jnp.mean(run(off)[1])  # noqa: E731
    grad = np.asarray(jax.grad(objective)(jnp.asarray(offset, jnp.float32)))
    numeric = np.zeros_like(offset)
    for idx in np.ndindex(offset.shape):
        bump = np.zeros_like(offset)
        bump[idx] = 1e-6
        ends = (numpy_controlled(x0, xi, offset + s * bump, steps) for s in (1, -1))
        f = [np.sum(a) + np.mean(c) for a, c in ends]
        numeric[idx] = (f[0] - f[1]) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("scheme", ["authors", "exact"])
@pytest.mark.parametrize("steps", [1, 3, 10])
def test_lean_adjoint_is_the_analytic_adjoint_at_every_step(steps, scheme):
    # Linear BC field, quadratic critic Q(x) = -1/2 (x - g)^T K (x - g), reward beta * Q: the adjoint is
    # a_T = beta K (x_T - g) carried back by transposed one-step Jacobians M_i. The authors' scheme uses the
    # SDE drift with the field at the next grid time for every step, M_i = I + h (2 A(u_i + h) - I / (u_i + h));
    # the exact scheme the sampling chain's own steps, M_i = I + h (2 A(u_i) - I / (u_i + h)) and
    # I + h A(u_{T-1}) for the deterministic last step.
    rng = np.random.default_rng(steps)
    beta, g = 2.5, np.array([0.3, -0.4])
    k = np.array([[2.0, 0.5], [0.5, 1.0]])
    x0, xi = rng.standard_normal((B, P)), rng.standard_normal((steps - 1, B, P))
    fine = lambda x, u: 0.7 * linear_field(x, u) - 0.2  # noqa: E731  (any fine field: the path only)
    states, final = sample_memoryless(fine, linear_field, jnp.asarray(x0, jnp.float32), jnp.asarray(xi, jnp.float32))
    q = lambda x: -0.5 * jnp.sum(((x - g) @ k) * (x - g))  # noqa: E731
    final_adjoint = -beta * jax.grad(q)(final)
    adjoints = np.asarray(lean_adjoint(linear_field, states, final_adjoint, scheme))

    h = 1 / steps
    a = beta * (np.asarray(final, np.float64) - g) @ k  # rows: a_T per sample (K symmetric)
    for i in reversed(range(steps)):
        u = i * h
        if scheme == "authors":
            jac = h * (2 * (A0 + (u + h) * A1) - np.eye(P) / (u + h))
        elif i == steps - 1:
            jac = h * (A0 + u * A1)
        else:
            jac = h * (2 * (A0 + u * A1) - np.eye(P) / (u + h))
        a = a + a @ jac  # row-vector form of a <- (I + J)^T a
        np.testing.assert_allclose(adjoints[i], a, rtol=2e-5, atol=2e-5, err_msg=f"step {i}")
    if scheme == "authors":
        return

    # Sampled with the base field itself, the discrete adjoint is exactly the gradient of -beta Q(x_T) with
    # respect to x_i through the sampling chain (same noise).
    states, final = sample_memoryless(linear_field, linear_field, jnp.asarray(x0, jnp.float32),
                                      jnp.asarray(xi, jnp.float32))
    adjoints = np.asarray(lean_adjoint(linear_field, states, -beta * jax.grad(q)(final), "exact"))

    def chain_from(i, x):
        for j in range(i, steps):
            u = jnp.full((1,), j * h, jnp.float32)
            if j < steps - 1:
                x = x + h * (2 * linear_field(x, u) - x / (u + h)) + np.sqrt(h) * memoryless_sigma(u, steps) * xi[j]
            else:
                x = x + h * linear_field(x, u)
        return x

    for i in range(steps):
        grad = jax.grad(lambda x, i=i: -beta * q(chain_from(i, x)))(states[i])
        np.testing.assert_allclose(adjoints[i], grad, rtol=2e-5, atol=2e-5)


def test_loss_matches_numpy_and_is_zero_exactly_at_the_tilted_field():
    # A linear critic Q(x) = c.x makes the adjoint path-independent, so the optimum is a field: the loss of
    # v_fine = v_base - sigma^2/2 a is zero on every trajectory, and a constant offset eps costs sum (2 eps/sigma)^2.
    steps, beta, c = 6, 1.5, np.array([0.8, -0.3])
    rng = np.random.default_rng(3)
    x0, xi = rng.standard_normal((B, P)), rng.standard_normal((steps - 1, B, P))
    states, _ = sample_memoryless(linear_field, linear_field, jnp.asarray(x0, jnp.float32),
                                      jnp.asarray(xi, jnp.float32))
    adjoints = lean_adjoint(linear_field, states, jnp.broadcast_to(-beta * c, (B, P)).astype(jnp.float32))
    np.testing.assert_allclose(adjoints, np.broadcast_to(adjoints[:, :1], adjoints.shape), rtol=1e-5, atol=1e-6)
    times = flow_times(steps)[:, None, None]
    sigmas = memoryless_sigma(times, steps)
    base = jnp.stack([linear_field(states[i], times[i, 0]) for i in range(steps)])
    optimum = tilted_velocity(base, adjoints, sigmas)
    assert float(adjoint_matching_loss(optimum - base, adjoints, sigmas)) == pytest.approx(0.0, abs=1e-9)

    eps = 0.05
    perturbed = float(adjoint_matching_loss(optimum + eps - base, adjoints, sigmas))
    assert perturbed == pytest.approx(P * np.sum((2 * eps / np.asarray(sigmas)) ** 2), rel=1e-4)
    # generic inputs against numpy: mean over b of sum over (i, p) of ((2/sigma) d + sigma a)^2
    d, a = rng.standard_normal((steps, B, P)), rng.standard_normal((steps, B, P))
    s = np.asarray(sigmas, np.float64)
    expected = np.mean(np.sum(((2 / s) * d + s * a) ** 2, axis=(0, 2)))
    got = float(adjoint_matching_loss(jnp.asarray(d, jnp.float32), jnp.asarray(a, jnp.float32), sigmas))
    assert got == pytest.approx(expected, rel=1e-5)


def gaussian_field(m, s):
    """The exact rectified-flow field of data N(m, s^2) per dimension: E[x1 - x0 | x_u = x]."""

    def v(x, u):
        u = u[0]
        slope = (u * s * s - (1 - u)) / (u * u * s * s + (1 - u) ** 2)
        return m + slope * (x - u * m)

    return v


@pytest.mark.parametrize("scheme", ["authors", "exact"])
def test_the_zero_loss_field_is_the_flow_of_the_tilted_gaussian(scheme):
    # BC data N(m, s^2), Q(x) = c x: the target exp(beta Q) N(m, s^2) is N(m + beta s^2 c, s^2), whose own
    # rectified-flow field is known in closed form. The zero-loss field v_base - sigma^2/2 a (fine time grid)
    # must equal it away from u = 0, where the shifted schedule differs.
    m, s, beta, c, steps = -0.3, 0.4, 2.0, 1.0, 400
    base = gaussian_field(m, s)
    tilted = gaussian_field(m + beta * s * s * c, s)
    rng = np.random.default_rng(0)
    x0 = jnp.asarray(rng.standard_normal((8, 1)), jnp.float32)
    xi = jnp.asarray(rng.standard_normal((steps - 1, 8, 1)), jnp.float32)
    states, final = sample_memoryless(base, base, x0, xi)
    adjoints = lean_adjoint(base, states, jnp.full_like(final, -beta * c), scheme)
    times = flow_times(steps)[:, None, None]
    v_base = jnp.stack([base(states[i], times[i, 0]) for i in range(steps)])
    optimum = tilted_velocity(v_base, adjoints, memoryless_sigma(times, steps))
    want = jnp.stack([tilted(states[i], times[i, 0]) for i in range(steps)])
    late = slice(steps // 10, steps)  # u >= 0.1
    gap = np.max(np.abs(np.asarray(optimum - want)[late]))
    shift = np.max(np.abs(np.asarray(want - v_base)[late]))
    assert shift > 0.3  # the tilt moves the field by a lot ...
    assert gap < 10 / steps  # ... and adjoint matching's optimum follows it to O(h) (measured 0.016 at h=1/400)
