"""A tanh-squashed diagonal Gaussian policy (the SAC / RLPD actor) and its distribution maths.

The policy outputs ``mean`` and ``log_std`` of a Gaussian over pre-squash values ``u``; actions are
``a = tanh(u)`` in (-1, 1). Its density follows from the change of variables
``log pi(a|s) = sum_i [log N(u_i; mean_i, std_i) - log(1 - tanh(u_i)**2)]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from qchunk.networks.mlp import MLP

Array = jax.Array

LOG_STD_MIN = -5.0
"""Lower clamp of the policy's log standard deviation."""
LOG_STD_MAX = 2.0
"""Upper clamp of the policy's log standard deviation."""
ACTION_EPS = 1e-5
"""Data actions are clipped to ``[-1 + eps, 1 - eps]`` before ``atanh`` in :func:`tanh_gaussian_log_prob`
(datasets hold actions exactly at the bounds, whose pre-image is infinite)."""


class TanhGaussianPolicy(nn.Module):
    """``pi(a|s)``: an MLP from the state to ``(mean, log_std)`` of a diagonal Gaussian, squashed by tanh.

    Call: ``observations (..., obs_dim)`` -> ``mean (..., action_dim)``, ``log_std (..., action_dim)``
    (clamped to ``[LOG_STD_MIN, LOG_STD_MAX]``). ``action_dim`` is ``h * A`` for a chunk policy.
    """

    hidden_dims: Sequence[int]
    """Hidden widths, e.g. ``(512, 512, 512, 512)``."""
    action_dim: int
    """Width of the policy output (a flattened chunk for chunked agents)."""
    layer_norm: bool = False
    """LayerNorm after every hidden activation."""

    @nn.compact
    def __call__(self, observations: Array) -> tuple[Array, Array]:
        out = MLP((*self.hidden_dims, 2 * self.action_dim), layer_norm=self.layer_norm, name="mlp")(observations)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


def _log_one_minus_tanh_sq(u: Array) -> Array:
    # log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)), exact and stable for large |u|
    return 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))


def _gaussian_log_density(u: Array, mean: Array, log_std: Array) -> Array:
    """Elementwise ``log N(u; mean, exp(log_std)**2)``."""
    z = (u - mean) * jnp.exp(-log_std)
    return -0.5 * jnp.square(z) - log_std - 0.5 * math.log(2.0 * math.pi)


def tanh_gaussian_sample(mean: Array, log_std: Array, key: Array) -> tuple[Array, Array]:
    """A reparameterised sample ``a = tanh(mean + std * eps)`` and its per-dimension log-density.

    Args:
        mean, log_std: ``(..., P)`` from :class:`TanhGaussianPolicy`.
        key: JAX key for ``eps ~ N(0, I)``.
    Returns:
        ``actions (..., P)`` in (-1, 1) and ``log_probs (..., P)``; ``log_probs.sum(-1)`` is
        ``log pi(a|s)``. Gradients flow through ``mean`` and ``log_std`` (reparameterisation).
    """
    eps = jax.random.normal(key, mean.shape, mean.dtype)
    u = mean + jnp.exp(log_std) * eps
    return jnp.tanh(u), _gaussian_log_density(u, mean, log_std) - _log_one_minus_tanh_sq(u)


def tanh_gaussian_log_prob(mean: Array, log_std: Array, actions: Array) -> Array:
    """Per-dimension log-density ``(..., P)`` of given ``actions (..., P)`` in [-1, 1] under the squashed
    Gaussian (sum over the last axis for ``log pi(a|s)``). Actions are clipped by :data:`ACTION_EPS`."""
    a = jnp.clip(actions, -1.0 + ACTION_EPS, 1.0 - ACTION_EPS)
    u = jnp.arctanh(a)
    return _gaussian_log_density(u, mean, log_std) - _log_one_minus_tanh_sq(u)
