"""Flow-matching behaviour policy: a velocity field over flattened chunks and its Euler integration."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from qchunk.networks.mlp import MLP

Array = jax.Array


class FlowVelocity(nn.Module):
    """Velocity field ``v(s, x_u, u)`` of a rectified flow from N(0, I) noise (u=0) to data (u=1).

    Call: ``observations (..._s, obs_dim)``, ``x (..._x, action_dim)`` the point on the path,
    ``times (..._u, 1)`` the flow time ``u`` in [0, 1]; leading shapes must broadcast (a time of shape
    ``(1,)`` serves a whole batch). Returns ``(broadcast(...), action_dim)``.
    """

    hidden_dims: Sequence[int]
    """Hidden widths, e.g. ``(512, 512, 512, 512)``."""
    action_dim: int
    """Width of ``x``: ``h * A`` for a chunk policy, ``A`` for a single-action policy."""
    layer_norm: bool = False
    """LayerNorm after every hidden activation (off in the paper's actors)."""

    @nn.compact
    def __call__(self, observations: Array, x: Array, times: Array) -> Array:
        return MLP((*self.hidden_dims, self.action_dim), layer_norm=self.layer_norm, name="mlp")(
            observations, x, times
        )


def euler_integrate(velocity: Callable[[Array, Array], Array], noise: Array, steps: int = 10) -> Array:
    """Integrate ``dx/du = velocity(x, u)`` from ``x(0) = noise`` to ``u = 1`` with ``steps`` Euler steps.

    ``x_{i+1} = x_i + velocity(x_i, u_i) / steps`` with ``u_i = i / steps``; ``u_i`` is passed as an array
    of shape ``(1,)`` that broadcasts over the batch. The loop is unrolled (``steps`` is static), which
    lets XLA fuse across steps and compute state-only products once. No clipping here.

    Args:
        velocity: ``(x (..., D), u (1,)) -> (..., D)``.
        noise: ``(..., D)`` the starting points.
        steps: number of Euler steps T (static; the paper uses 10).
    Returns:
        ``(..., D)`` the end points.
    """
    if steps < 1:
        raise ValueError(f"Euler integration needs at least one step, got {steps}")
    x = noise
    for i in range(steps):
        u = jnp.full((1,), i / steps, dtype=noise.dtype)
        x = x + velocity(x, u) / steps
    return x
