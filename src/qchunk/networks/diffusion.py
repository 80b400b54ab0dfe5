"""Noise-prediction network of a diffusion policy: ``eps(s, x_t, t)`` with a learned Fourier time embedding."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from qchunk.networks.mlp import MLP

Array = jax.Array


def mish(x: Array) -> Array:
    """The Mish activation ``x * tanh(softplus(x))``."""
    return x * jnp.tanh(jax.nn.softplus(x))


class FourierTimeFeatures(nn.Module):
    """Learned Fourier features of a time: ``[cos(2 pi t W^T), sin(2 pi t W^T)]``, ``W`` of shape
    ``(features // 2, 1)`` drawn from ``N(0, 0.2^2)``.

    Call: ``times (..., 1)``; returns ``(..., 2 * (features // 2))``.
    """

    features: int = 64
    """Output width (even)."""

    @nn.compact
    def __call__(self, times: Array) -> Array:
        kernel = self.param("kernel", nn.initializers.normal(0.2), (self.features // 2, times.shape[-1]), jnp.float32)
        f = 2.0 * jnp.pi * times @ kernel.T
        return jnp.concatenate([jnp.cos(f), jnp.sin(f)], axis=-1)


class NoisePredictor(nn.Module):
    """``eps(s, x_t, t)``: the time embedding (:class:`FourierTimeFeatures`, then an MLP of ``hidden_dims`` with
    Mish between its layers, ``time_mlp``) and an MLP with Mish (``mlp``, LayerNorm after each activation with
    ``layer_norm``) reading ``(x_t, s, embedding)`` in that order, as the DDPM networks of the QAM authors' code.

    Call: ``observations (..._s, obs_dim)``, ``x (..._x, action_dim)``, ``times (..._t, 1)`` the diffusion step
    ``t`` as a float (a time of shape ``(1,)`` serves a whole batch; its embedding is computed once); leading
    shapes must broadcast. Returns ``(broadcast(...), action_dim)``.
    """

    hidden_dims: Sequence[int]
    """Hidden widths of both MLPs (the embedding MLP's output width is ``hidden_dims[-1]``)."""
    action_dim: int
    """Width of ``x``: ``h * A`` for a chunk policy, ``A`` for a single-action one."""
    time_dim: int = 64
    """Width of the Fourier time features."""
    layer_norm: bool = False
    """LayerNorm after every hidden activation of ``mlp`` (the embedding MLP has none)."""

    @nn.compact
    def __call__(self, observations: Array, x: Array, times: Array) -> Array:
        embedding = FourierTimeFeatures(self.time_dim, name="time_features")(times)
        embedding = MLP(tuple(self.hidden_dims), activation=mish, name="time_mlp")(embedding)
        return MLP((*self.hidden_dims, self.action_dim), activation=mish, layer_norm=self.layer_norm,
                   name="mlp")(x, observations, embedding)
