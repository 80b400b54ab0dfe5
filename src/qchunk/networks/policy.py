"""Policies that map a state (and noise) straight to an action or chunk."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

from qchunk.networks.mlp import MLP

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
