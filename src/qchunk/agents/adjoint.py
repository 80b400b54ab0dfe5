"""Adjoint matching for flow policies: the memoryless SDE, the lean adjoint and the matching loss.

Pure functions of velocity fields (no networks, no agent), used by :mod:`qchunk.agents.qam` and tested
in closed form. Conventions: flow time ``u`` runs from noise (``u = 0``) to action (``u = 1``) along the
rectified-flow path ``x_u = (1 - u) x0 + u x1``; ``T`` Euler steps of size ``h = 1 / T`` at times
``u_i = i h``; ``B`` batch, ``P`` the flattened policy output (``h_chunk * A``). A *velocity* is a callable
``(x (B, P), u (1,)) -> (B, P)`` (the state is closed over), as for
:func:`qchunk.networks.euler_integrate`.

The maths (Domingo-Enrich et al. 2024, "Adjoint Matching"; Li & Levine 2026, "Q-learning with Adjoint
Matching"): for the rectified-flow path the SDE

    dX = b(X, u) du + sigma(u) dW,   b(x, u) = 2 v(x, u) - x / u,   sigma(u)**2 = 2 (1 - u) / u

has the marginals of the flow ``v`` and is *memoryless* (``X_1`` is independent of ``X_0``). Fine-tuning
``v_base`` into ``v_fine`` so that the endpoint law becomes ``p_base(x) exp(r(x)) / Z`` (here
``r = inv_temp * Q(s, .)``) is a stochastic optimal control problem whose optimum satisfies
``v_fine = v_base - sigma**2 / 2 * E[a | X_u]``, with ``a`` the *lean adjoint*:

    da/du = -(d b_base / dx)(X_u, u)^T a,   a(1) = -grad r(X_1),

integrated backwards along a trajectory of the fine-tuned SDE. Adjoint matching regresses
``(2 / sigma) (v_fine - v_base)`` onto ``-sigma a`` at every step, without backpropagating through the
sampling chain (the trajectory and the adjoint are constants of the loss).

Discretisation (the reference implementation's unless ``scheme="exact"``):

* ``sigma_i = sqrt(2 (1 - u_i + h) / (u_i + h))`` and the drift's ``x / (u_i + h)``: the schedule with
  ``u`` shifted by one step, finite at ``u = 0``;
* Euler-Maruyama steps ``x_{i+1} = x_i + h b_fine(x_i, u_i) + sqrt(h) sigma_i xi_i`` for ``i < T - 1``,
  and a deterministic last step with the base field, ``x_T = x_{T-1} + h v_base(x_{T-1}, u_{T-1})``;
* the adjoint, ``scheme="authors"`` (the reference code's, the default): every backward step, the last one
  included, is ``a_i = a_{i+1} + h J_i^T a_{i+1}`` with ``J_i`` the Jacobian of the SDE drift
  ``2 v_base(x, u_i + h) - x / (u_i + h)`` at ``x_i``: the base field at the *next* grid time;
* ``scheme="exact"``: the exact discrete adjoint of the sampling steps with the base drift, ``J_i`` the
  Jacobian of ``2 v_base(x, u_i) - x / (u_i + h)`` at ``x_i`` for ``i < T - 1`` and of the ODE step's
  ``v_base(x, u_{T-1})`` for the last one; for a linear base field it equals the gradient of ``-r(x_T)``
  through the base chain exactly (tested). Both are O(h) from the continuous adjoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp

Array = jax.Array
Velocity = Callable[[Array, Array], Array]
"""``(x (B, P), u (1,)) -> (B, P)``: a velocity field at flow time ``u``."""

__all__ = [
    "Control",
    "adjoint_matching_loss",
    "base_last_step",
    "flow_times",
    "lean_adjoint",
    "memoryless_sigma",
    "memoryless_step",
    "sample_controlled",
    "sample_memoryless",
    "tilted_velocity",
]


def flow_times(steps: int) -> Array:
    """The Euler grid ``u_i = i / T`` for ``i = 0 .. T-1``: shape ``(T,)``."""
    return jnp.arange(steps, dtype=jnp.float32) / steps


def memoryless_sigma(times: Array, steps: int) -> Array:
    """Noise scale ``sigma(u) = sqrt(2 (1 - u + h) / (u + h))`` with ``h = 1 / steps``, elementwise on
    ``times`` (any shape): the memoryless schedule ``2 (1 - u) / u`` of the rectified-flow path with
    ``u`` shifted by one step so it is finite at ``u = 0``."""
    h = 1.0 / steps
    return jnp.sqrt(2.0 * (1.0 - times + h) / (times + h))


def sample_memoryless(fine: Velocity, base: Velocity, noise: Array, step_noise: Array) -> tuple[Array, Array]:
    """A trajectory of the fine-tuned memoryless SDE (Euler-Maruyama), last step deterministic with
    ``base``. The stochastic steps run in one ``lax.scan`` (one compiled step, whatever ``T``).

    Args:
        fine: the fine-tuned velocity (the field being trained; pass it without gradient).
        base: the behaviour-cloning velocity.
        noise: ``(B, P)`` the start ``x_0 ~ N(0, I)``.
        step_noise: ``(T - 1, B, P)`` standard normal increments ``xi_i`` (``T`` = flow steps).
    Returns:
        ``states (T, B, P)``, the points ``x_0 .. x_{T-1}`` at which the loss is evaluated, and
        ``final (B, P)``, the endpoint ``x_T`` (unclipped).
    """
    steps = step_noise.shape[0] + 1

    def sde_step(x: Array, inputs: tuple[Array, Array]) -> tuple[Array, Array]:
        u, xi = inputs
        return memoryless_step(x, fine(x, u[None]), u[None], xi, steps), x

    last, states = jax.lax.scan(sde_step, noise, (flow_times(steps)[:-1], step_noise))
    return jnp.concatenate([states, last[None]]), base_last_step(base, last, steps)


def memoryless_step(x: Array, velocity: Array, u: Array, xi: Array, steps: int) -> Array:
    """One Euler-Maruyama step of the memoryless SDE at grid time ``u``: ``x + h (2 v - x / (u + h)) +
    sqrt(h) sigma(u) xi`` for ``x, velocity, xi (B, P)`` and ``u (1,)``; returns ``(B, P)``."""
    h = 1.0 / steps
    return x + h * (2.0 * velocity - x / (u + h)) + jnp.sqrt(h) * memoryless_sigma(u, steps) * xi


def base_last_step(base: Velocity, x: Array, steps: int) -> Array:
    """The deterministic last step ``x + h v_base(x, u_{T-1})`` of :func:`sample_memoryless`: ``(B, P)``."""
    h = 1.0 / steps
    return x + h * base(x, jnp.full((1,), (steps - 1) * h, x.dtype))


Control = Callable[[Array, Array], tuple[Array, Array]]
"""``(x (B, P), u (1,)) -> (v_fine, v_fine - v_base)``, both ``(B, P)``: a fine-tuned velocity and its control."""


def sample_controlled(control: Control, base: Velocity, noise: Array, step_noise: Array) -> tuple[Array, Array]:
    """The endpoint of the fine-tuned memoryless SDE of :func:`sample_memoryless` (same steps, last one with
    ``base``) and the control cost of the path, both differentiable through every step (backpropagation through
    the sampling chain, basic adjoint matching's objective).

    The cost is ``sum_{i < T-1} (2 / sigma_i**2) ||v_fine - v_base||**2 (x_i, u_i)`` per sample (the reference
    code's scaling: the path KL's ``h / 2 * ||2 (v_fine - v_base)||**2 / sigma**2`` without the step ``h``).

    Args:
        control: the fine-tuned field and its difference from ``base`` (:data:`Control`).
        base: the behaviour-cloning velocity (last step).
        noise: ``(B, P)`` the start; step_noise: ``(T - 1, B, P)`` the increments.
    Returns:
        ``final (B, P)`` (unclipped) and ``cost (B,)``.
    """
    steps = step_noise.shape[0] + 1

    def sde_step(carry: tuple[Array, Array], inputs: tuple[Array, Array]) -> tuple[tuple[Array, Array], None]:
        x, cost = carry
        u, xi = inputs
        v, diff = control(x, u[None])
        cost = cost + jnp.sum(jnp.square(diff), axis=-1) * 2.0 / jnp.square(memoryless_sigma(u, steps))
        return (memoryless_step(x, v, u[None], xi, steps), cost), None

    start = (noise, jnp.zeros(noise.shape[:-1], noise.dtype))
    # unrolled: backpropagating through a rolled scan stores and reloads every step's residuals, which made BAM's
    # update 1.2-1.5x slower on a CPU (tools/fidelity/update_ratios.py, bam at the quick and qam presets)
    (last, cost), _ = jax.lax.scan(sde_step, start, (flow_times(steps)[:-1], step_noise), unroll=True)
    return base_last_step(base, last, steps), cost


def lean_adjoint(base: Velocity, states: Array, final_adjoint: Array,
                 scheme: Literal["authors", "exact"] = "authors") -> Array:
    """The lean adjoint along a trajectory, integrated backwards through the base field with vector-Jacobian
    products, in one reverse ``lax.scan``.

    ``a_T = final_adjoint`` and, for ``i = T-1 .. 0``, ``a_i = a_{i+1} + h J_i^T a_{i+1}``:

    * ``authors`` (the reference code): ``J_i^T a = 2 (dv/dx)^T a - a / (u_i + h)`` with ``dv/dx`` at
      ``(x_i, u_i + h)``, for every step;
    * ``exact`` (the discrete adjoint of :func:`sample_memoryless`'s steps, base drift): the same at
      ``(x_i, u_i)`` for ``i < T - 1``, and ``J_{T-1}^T a = (dv/dx)^T a`` at ``(x_{T-1}, u_{T-1})`` for the
      deterministic last step.

    Args:
        base: the behaviour-cloning velocity (its parameters fixed).
        states: ``(T, B, P)`` the trajectory points ``x_0 .. x_{T-1}``.
        final_adjoint: ``(B, P)`` ``a_T = -grad_x r(x_T)`` (``-inv_temp * grad_a Q(s, x_T)``).
        scheme: ``authors`` or ``exact``, above.
    Returns:
        ``(T, B, P)`` the adjoints ``a_0 .. a_{T-1}`` paired with ``states`` (no gradient).
    """
    steps = states.shape[0]
    h = 1.0 / steps
    states = jax.lax.stop_gradient(states)
    a_last = jax.lax.stop_gradient(final_adjoint)

    def vjp(x: Array, u: Array, a: Array) -> Array:
        return jax.vjp(lambda y: base(y, u), x)[1](a)[0]

    def sde_back_step(a: Array, inputs: tuple[Array, Array]) -> tuple[Array, Array]:
        u, x = inputs
        u = u[None]
        at = u + h if scheme == "authors" else u
        a = a + h * (2.0 * vjp(x, at, a) - a / (u + h))
        return a, a

    times = flow_times(steps)
    if scheme == "authors":
        _, adjoints = jax.lax.scan(sde_back_step, a_last, (times, states), reverse=True)
        return jax.lax.stop_gradient(adjoints)
    a_last = a_last + h * vjp(states[-1], times[-1:], a_last)  # the deterministic (ODE) last step
    _, earlier = jax.lax.scan(sde_back_step, a_last, (times[:-1], states[:-1]), reverse=True)
    return jax.lax.stop_gradient(jnp.concatenate([earlier, a_last[None]]))


def adjoint_matching_loss(fine_minus_base: Array, adjoints: Array, sigmas: Array) -> Array:
    """The adjoint-matching regression ``mean_b sum_{i,p} ((2 / sigma_i) d[i,b,p] + sigma_i a[i,b,p])**2``.

    Its minimiser over the fine-tuned field is ``d = v_fine - v_base = -sigma**2 / 2 * E[a | x_i]``
    (:func:`tilted_velocity`); summed over steps and dimensions, averaged over the batch (the reference
    weighting).

    Args:
        fine_minus_base: ``(T, B, P)`` ``v_fine(x_i, u_i) - v_base(x_i, u_i)`` (with gradient into the
            fine field; for a residual parameterisation, the residual itself).
        adjoints: ``(T, B, P)`` the lean adjoints (constants).
        sigmas: ``(T, 1, 1)`` (or broadcastable) noise scales ``sigma_i``.
    """
    residual = (2.0 / sigmas) * fine_minus_base + sigmas * jax.lax.stop_gradient(adjoints)
    return jnp.mean(jnp.sum(jnp.square(residual), axis=(0, 2)))


def tilted_velocity(base_velocity: Array, adjoints: Array, sigmas: Array) -> Array:
    """The field at which :func:`adjoint_matching_loss` is zero: ``v_base - sigma**2 / 2 * a``.

    Shapes as in :func:`adjoint_matching_loss`; returns ``(T, B, P)``."""
    return base_velocity - 0.5 * jnp.square(sigmas) * adjoints
