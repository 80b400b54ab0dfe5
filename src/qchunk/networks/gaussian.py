"""A tanh-squashed diagonal Gaussian policy (the SAC / RLPD actor) and its distribution maths.

The policy outputs ``mean`` and ``log_std`` of a Gaussian over pre-squash values ``u``; actions are
``a = tanh(u)`` in (-1, 1). Its density follows from the change of variables
``log pi(a|s) = sum_i [log N(u_i; mean_i, std_i) - log(1 - tanh(u_i)**2)]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from qchunk.networks.mlp import MLP, default_init

Array = jax.Array

LOG_STD_MIN = -20.0
"""Lower clip of the policy's log standard deviation (the RLPD reference actor's)."""
LOG_STD_MAX = 2.0
"""Upper clip of the policy's log standard deviation (the RLPD reference actor's)."""
ACTION_EPS = 1e-5
"""Data actions are clipped to ``[-1 + eps, 1 - eps]`` before ``atanh`` in :func:`tanh_gaussian_log_prob`
(datasets hold actions exactly at the bounds, whose pre-image is infinite)."""


class TanhGaussianPolicy(nn.Module):
    """``pi(a|s)``: a ReLU MLP trunk and two dense heads giving ``(mean, log_std)`` of a diagonal Gaussian,
    squashed by tanh — the layout of the RLPD reference actor.

    Parameters: ``trunk`` (an :class:`~qchunk.networks.mlp.MLP` of ``hidden_dims`` with the activation after
    its last layer too), ``mean`` and ``log_std`` (dense ``(hidden_dims[-1], action_dim)`` each).
    Call: ``observations (..., obs_dim)`` -> ``mean (..., action_dim)``, ``log_std (..., action_dim)``
    (clipped to ``[LOG_STD_MIN, LOG_STD_MAX] = [-20, 2]``). ``action_dim`` is ``h * A`` for a chunk policy.
    Further inputs ``(..., d)`` after the observations condition the policy too (read by the first layer as
    if concatenated, e.g. the base chunk of an edit policy); leading shapes broadcast.
    """

    hidden_dims: Sequence[int]
    """Hidden widths of the trunk, e.g. ``(512, 512, 512, 512)``."""
    action_dim: int
    """Width of the policy output (a flattened chunk for chunked agents)."""
    layer_norm: bool = False
    """LayerNorm in every trunk layer, before the activation (off in the reference actor)."""
    activation: Callable[[Array], Array] = nn.relu
    """Trunk nonlinearity: ReLU in the RLPD reference actor, GELU in the QAM release's tanh-Gaussian
    actors (FEdit's edit policy, DSRL's latent policy)."""

    @nn.compact
    def __call__(self, observations: Array, *conditions: Array) -> tuple[Array, Array]:
        x = MLP(tuple(self.hidden_dims), activation=self.activation, activate_final=True,
                layer_norm=self.layer_norm, norm_before_activation=True, name="trunk")(observations, *conditions)
        mean = nn.Dense(self.action_dim, kernel_init=default_init(), name="mean")(x)
        log_std = nn.Dense(self.action_dim, kernel_init=default_init(), name="log_std")(x)
        return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


def _log_one_minus_tanh_sq(u: Array) -> Array:
    # log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)), exact and stable for large |u|
    return 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))


def _gaussian_log_density(u: Array, mean: Array, log_std: Array) -> Array:
    """Elementwise ``log N(u; mean, exp(log_std)**2)``."""
    z = (u - mean) * jnp.exp(-log_std)
    return -0.5 * jnp.square(z) - log_std - 0.5 * math.log(2.0 * math.pi)


def tanh_gaussian_sample(mean: Array, log_std: Array, key: Array) -> tuple[Array, Array]:
    """A reparameterised sample ``a = tanh(mean + std * eps)`` and its per-dimension log-density, with
    ``eps ~ N(0, I)`` drawn from ``key`` (:func:`tanh_gaussian_from_noise` for given ``eps``).

    Args:
        mean, log_std: ``(..., P)`` from :class:`TanhGaussianPolicy`.
        key: JAX key for ``eps ~ N(0, I)``.
    Returns:
        ``actions (..., P)`` in (-1, 1) and ``log_probs (..., P)``; ``log_probs.sum(-1)`` is
        ``log pi(a|s)``. Gradients flow through ``mean`` and ``log_std`` (reparameterisation).
    """
    return tanh_gaussian_from_noise(mean, log_std, jax.random.normal(key, mean.shape, mean.dtype))


def tanh_gaussian_from_noise(mean: Array, log_std: Array, eps: Array) -> tuple[Array, Array]:
    """:func:`tanh_gaussian_sample` for a given standard normal ``eps`` (broadcastable to ``mean``): the sample
    ``tanh(mean + exp(log_std) * eps)`` and its per-dimension log-density."""
    u = mean + jnp.exp(log_std) * eps
    return jnp.tanh(u), _gaussian_log_density(u, mean, log_std) - _log_one_minus_tanh_sq(u)


def tanh_gaussian_log_prob(mean: Array, log_std: Array, actions: Array) -> Array:
    """Per-dimension log-density ``(..., P)`` of given ``actions (..., P)`` in [-1, 1] under the squashed
    Gaussian (sum over the last axis for ``log pi(a|s)``). Actions are clipped by :data:`ACTION_EPS`."""
    a = jnp.clip(actions, -1.0 + ACTION_EPS, 1.0 - ACTION_EPS)
    u = jnp.arctanh(a)
    return _gaussian_log_density(u, mean, log_std) - _log_one_minus_tanh_sq(u)
