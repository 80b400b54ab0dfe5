"""SAC with prior data over action chunks: RLPD (h=1), RLPD-AC (h=5) and QC-RLPD (RLPD-AC + BC).

One :class:`SacAgent` with different :class:`~qchunk.agents.config.SacAgentConfig` settings:

* actor: a tanh-squashed diagonal Gaussian over the flattened chunk (``P = h*A`` numbers): a ReLU MLP
  trunk with separate mean and log-std heads, log-std clipped to [-20, 2];
* critic: an ensemble of K critics over (state, chunk), each hidden layer ``ReLU(LayerNorm(Dense(x)))``
  (the networks of the authors' RLPD; the flow agents keep theirs); the TD target is the h-step backup of
  the ``q_agg`` (paper: mean, no clipped double-Q; with ``rho > 0``, the QAM protocol's, ``mean - rho * std``)
  of the target critics at ``s_{t+h}`` with the actor's sample ``a' ~ pi(s_{t+h})``, without the entropy bonus
  unless ``backup_entropy``;
* temperature: ``log t`` is learned so that the policy entropy approaches
  ``target_entropy_per_dim * P``;
* evaluation: ``config.eval_policy`` — actions sampled from the policy (default, as the authors) or its
  squashed mean.

Losses (one step, all from the parameters *before* the step, one gradient, one Adam, as the flow agents):

* ``critic``: :func:`qchunk.agents.common.chunk_critic_objective`;
* ``actor``: ``mean_b [t * log pi(a_b|s_b) - mean_k Q_k(s_b, a_b)] - bc_coef * mean_b log pi(data_b|s_b)``
  with ``a_b ~ pi(s_b)`` reparameterised and the critic and temperature held fixed;
* ``temperature``: ``t * mean_b (-log pi(a_b|s_b) - target_entropy)`` with the log-probabilities held fixed.

Each term reaches only its own parameters, so the one Adam equals three.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from qchunk.agents.common import (
    AgentBase,
    Array,
    Batch,
    LearnedTemperature,
    Params,
    agent_critic_objective,
    as_batch,
    critic_info,
    init_module,
    seed_keys,
    temperature_objective,
)
from qchunk.agents.config import SacAgentConfig
from qchunk.agents.losses import behaviour_log_likelihood, sac_actor_loss
from qchunk.agents.td import critic_actions
from qchunk.networks import CriticEnsemble, TanhGaussianPolicy, tanh_gaussian_log_prob, tanh_gaussian_sample


class SacNetworks(NamedTuple):
    """The (stateless) flax module definitions of a SAC agent."""

    critic: CriticEnsemble
    """K critics over (state, policy output)."""
    actor: TanhGaussianPolicy
    """The tanh-Gaussian policy over policy outputs of width ``P``."""


@functools.lru_cache(maxsize=64)
def build_sac_networks(config: SacAgentConfig, action_dim: int) -> SacNetworks:
    """Module definitions for ``config`` with per-step action dimension ``action_dim``."""
    critic = CriticEnsemble(config.critic_hidden_dims, config.num_critics, config.critic_layer_norm,
                            activation=nn.relu, norm_before_activation=True)
    actor = TanhGaussianPolicy(config.actor_hidden_dims, config.policy_dim(action_dim), config.actor_layer_norm)
    return SacNetworks(critic, actor)


class SacAgent(AgentBase, LearnedTemperature):
    """Immutable state of a SAC agent; ``update`` and ``sample_actions`` are pure and jitted.

    Shapes and the batch contract are those of :class:`~qchunk.agents.flow_agent.FlowAgent`:
    ``B`` batch, ``h = config.horizon``, ``A`` action dimension, ``H = action_horizon``, ``P = H * A``.
    ``params`` holds ``{"critic", "actor", "log_temperature"}``.
    """

    config: SacAgentConfig = flax.struct.field(pytree_node=False)
    """The resolved settings."""

    loss_fn = staticmethod(lambda params, agent, batch, key: sac_loss(params, agent, batch, key))

    @classmethod
    def create(cls, config: SacAgentConfig, observation_dim: int, action_dim: int, seed: int = 0) -> SacAgent:
        """Initialise networks (target critic = critic), the temperature and Adam from integer ``seed``."""
        nets = build_sac_networks(config, int(action_dim))
        rng, k_critic, k_actor = seed_keys(seed, 2)
        obs, act = (1, int(observation_dim)), (1, config.policy_dim(int(action_dim)))
        params = {
            "critic": init_module(nets.critic, k_critic, (obs, act)),
            "actor": init_module(nets.actor, k_actor, (obs,)),
            "log_temperature": jnp.asarray(np.log(config.init_temperature), jnp.float32),
        }
        return cls.from_params(config, observation_dim, action_dim, params, {"critic": params["critic"]}, rng)

    @property
    def networks(self) -> SacNetworks:
        """The flax module definitions."""
        return build_sac_networks(self.config, self.action_dim)

    @jax.jit
    def sample_actions(self, observations: Array, rng: Array) -> Array:
        """Exploration actions ``a ~ pi(s)``: ``(obs_dim,) -> (H, A)`` or ``(B, obs_dim) -> (B, H, A)``."""
        obs, single = as_batch(observations)
        mean, log_std = self.networks.actor.apply({"params": self.params["actor"]}, obs)
        actions, _ = tanh_gaussian_sample(mean, log_std, rng)
        return self.as_chunks(actions, single)

    @jax.jit
    def eval_actions(self, observations: Array, rng: Array) -> Array:
        """Evaluation actions, shaped as :meth:`sample_actions`: with ``config.eval_policy == "sample"`` a
        draw ``a ~ pi(s)`` (exactly :meth:`sample_actions` with the same ``rng``), with ``"mean"`` the
        deterministic squashed mean ``tanh(mean(s))`` (``rng`` unused)."""
        if self.config.eval_policy == "sample":
            return self.sample_actions(observations, rng)
        obs, single = as_batch(observations)
        mean, _ = self.networks.actor.apply({"params": self.params["actor"]}, obs)
        return self.as_chunks(jnp.tanh(mean), single)


def sac_loss(params: Params, agent: SacAgent, batch: Batch, rng: Array) -> tuple[Array, dict[str, Array]]:
    """Critic + actor + temperature loss of one update (see the module docstring) and its metrics."""
    config, nets = agent.config, agent.networks
    k_next, k_pi = jax.random.split(rng)
    fixed = jax.lax.stop_gradient(params)
    temperature = jnp.exp(fixed["log_temperature"])
    obs = batch["observations"]

    # Critic: h-step backup to the target critics at s_{t+h} with a' ~ pi(s_{t+h}).
    next_mean, next_log_std = nets.actor.apply({"params": fixed["actor"]}, batch["next_observations"][:, -1])
    next_actions, next_log_probs = tanh_gaussian_sample(next_mean, next_log_std, k_next)
    bonus = -temperature * jnp.sum(next_log_probs, -1) if config.backup_entropy else None
    c_loss, terms = agent_critic_objective(agent, params["critic"], batch, next_actions, next_q_bonus=bonus)
    info = critic_info(c_loss, terms)

    # Actor: reparameterised sample scored by the mean of the (fixed) critics, minus the entropy bonus.
    mean, log_std = nets.actor.apply({"params": params["actor"]}, obs)
    actions, log_probs = tanh_gaussian_sample(mean, log_std, k_pi)
    log_prob = jnp.sum(log_probs, -1)  # (B,)
    q_pi = jnp.mean(nets.critic.apply({"params": fixed["critic"]}, obs, actions), axis=0)
    actor_loss = sac_actor_loss(log_prob, q_pi, temperature)
    info["actor/q_mean"] = jnp.mean(q_pi)
    info["actor/entropy"] = -jnp.mean(log_prob)
    if config.bc_coef > 0.0:
        steps = config.action_horizon
        data = critic_actions(batch["actions"], config.chunked)  # (B, P)
        per_dim = tanh_gaussian_log_prob(mean, log_std, data).reshape(obs.shape[0], steps, agent.action_dim)
        bc_ll = behaviour_log_likelihood(per_dim, batch["valid"][:, :steps])
        actor_loss = actor_loss - config.bc_coef * bc_ll
        info["actor/bc_log_likelihood"] = bc_ll
    info["actor/loss"] = actor_loss

    # Temperature: towards the target entropy (log-probabilities held fixed).
    t_loss, t_info = temperature_objective(params["log_temperature"], log_prob, config.target_entropy(agent.action_dim))
    info.update(t_info)
    return c_loss + actor_loss + t_loss, info


__all__ = ["SacAgent", "SacNetworks", "build_sac_networks", "sac_loss"]
