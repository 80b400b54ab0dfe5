"""An ensemble of K Q-functions over (state, flattened action chunk), as ONE vmapped flax module, and a state value
network V(s) (IFQL, FAWAC)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from qchunk.networks.mlp import MLP

Array = jax.Array


class CriticEnsemble(nn.Module):
    """``K`` independent critics ``Q_k(s, a)`` evaluated in one call.

    The ``K`` MLPs are one ``nn.vmap``-ed module: parameters carry a leading ensemble axis of size
    ``num_critics`` (independently initialised), inputs are shared. ``a`` is a flattened chunk
    ``(h*A,)`` for chunked critics or a single action ``(A,)``.

    Call: ``observations (..._s, obs_dim)``, ``actions (..._a, act_dim)`` with broadcastable leading
    shapes (pass ``(B, 1, obs_dim)`` with ``(B, N, act_dim)`` to score N candidates per state and
    project each state once); returns ``(num_critics, broadcast(..._s, ..._a))``.
    """

    hidden_dims: Sequence[int]
    """Hidden widths of each critic, e.g. ``(512, 512, 512, 512)``; a scalar output layer is added."""
    num_critics: int = 2
    """Ensemble size K."""
    layer_norm: bool = True
    """LayerNorm in every hidden layer (the paper's critics use it)."""
    activation: Callable[[Array], Array] = nn.gelu
    """Hidden nonlinearity: GELU for the flow agents' critics (Q-chunking / FQL reference), ReLU for the
    RLPD family's."""
    norm_before_activation: bool = False
    """Hidden layer order: ``LayerNorm(activation(Dense(x)))`` when False (flow agents),
    ``activation(LayerNorm(Dense(x)))`` when True (RLPD family); see :class:`~qchunk.networks.mlp.MLP`."""

    time_input: bool = False
    """Time-conditioned critics ``Q_k(s, a, t)`` (classifier guidance of a flow by the critic's action gradient): a
    third input of width 1, the flow time, after the action (``t = 1``, the noise-free action, when not given)."""

    @nn.compact
    def __call__(self, observations: Array, actions: Array, times: Array | None = None) -> Array:
        """``times``: ``(..._t, 1)`` broadcastable flow times (only with :attr:`time_input`)."""
        inputs = (observations, actions)
        if self.time_input:
            inputs = (*inputs, jnp.ones((*actions.shape[:-1], 1), actions.dtype) if times is None else times)
        elif times is not None:
            raise ValueError("times given to a critic without time_input")
        ensemble = nn.vmap(
            MLP,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_critics,
        )
        q = ensemble((*self.hidden_dims, 1), activation=self.activation, layer_norm=self.layer_norm,
                     norm_before_activation=self.norm_before_activation, name="critics")(*inputs)
        return q[..., 0]


class StateValue(nn.Module):
    """A state value ``V(s)``: one MLP (the critics' layers: ``hidden_dims``, LayerNorm after the activation) with a
    scalar output, over the state alone (the value network of IFQL and FAWAC).

    Call: ``observations (..., obs_dim)`` -> ``(...)``.
    """

    hidden_dims: Sequence[int]
    """Hidden widths, e.g. ``(512, 512, 512, 512)``; a scalar output layer is added."""
    layer_norm: bool = True
    """LayerNorm in every hidden layer."""
    activation: Callable[[Array], Array] = nn.gelu
    """Hidden nonlinearity."""

    @nn.compact
    def __call__(self, observations: Array) -> Array:
        v = MLP((*self.hidden_dims, 1), activation=self.activation, layer_norm=self.layer_norm,
                name="value")(observations)
        return v[..., 0]
