"""Policies that map a state (and noise) straight to an action or chunk."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from qchunk.networks.mlp import MLP, default_init

Array = jax.Array


class OneStepPolicy(nn.Module):
    """Noise-conditioned one-step policy ``mu(s, z)`` (FQL): one network pass from noise to action.

    Call: ``observations (..._s, obs_dim)``, ``noise (..._z, action_dim)`` with ``z ~ N(0, I)``;
    returns ``(broadcast(...), action_dim)``, unbounded (callers clip to [-1, 1] where the method says).
    """

    hidden_dims: Sequence[int]
    """Hidden widths, e.g. ``(512, 512, 512, 512)``."""
    action_dim: int
    """Output width: ``h * A`` for a chunk policy, ``A`` for a single-action policy."""
    layer_norm: bool = False
    """LayerNorm after every hidden activation (off in the paper's actors)."""

    @nn.compact
    def __call__(self, observations: Array, noise: Array) -> Array:
        return MLP((*self.hidden_dims, self.action_dim), layer_norm=self.layer_norm, name="mlp")(
            observations, noise
        )


class DeterministicPolicy(nn.Module):
    """Deterministic tanh policy ``mu(s) = tanh(W h(s) + b)`` (ReBRAC's actor: the mode of the QAM release's
    constant-std tanh-Gaussian ``Actor``, which is all ReBRAC uses of it).

    Parameters: ``trunk`` (an :class:`~qchunk.networks.mlp.MLP` of ``hidden_dims``, GELU and optional LayerNorm
    after every layer, the last one included) and ``mean`` (dense ``(hidden_dims[-1], action_dim)``, initialised
    with variance scale ``final_init_scale``). Call: ``observations (..., obs_dim)`` -> ``(..., action_dim)`` in
    (-1, 1).
    """

    hidden_dims: Sequence[int]
    """Hidden widths of the trunk, e.g. ``(512, 512, 512, 512)``."""
    action_dim: int
    """Output width: ``h * A`` for a chunk policy, ``A`` for a single-action policy."""
    layer_norm: bool = False
    """LayerNorm after every trunk activation (off in the QAM release's ReBRAC)."""
    final_init_scale: float = 1e-2
    """Variance scale of the output layer's initialiser (the release's ``actor_fc_scale``, 0.01)."""

    @nn.compact
    def __call__(self, observations: Array) -> Array:
        x = MLP(tuple(self.hidden_dims), activate_final=True, layer_norm=self.layer_norm, name="trunk")(observations)
        return jnp.tanh(nn.Dense(self.action_dim, kernel_init=default_init(self.final_init_scale), name="mean")(x))
