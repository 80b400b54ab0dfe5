"""SAC with prior data over action chunks: RLPD (h=1), RLPD-AC (h=5) and QC-RLPD (RLPD-AC + BC).

One :class:`SacAgent` with different :class:`~qchunk.agents.config.SacAgentConfig` settings, equal update by
update to the authors' code (the QC repo's ``agents/acrlpd.py`` at ``--preset paper``, the QAM repo's
``agents/rlpd.py`` at ``--preset qam``; :mod:`qchunk.fidelity`):

* actor: a tanh-squashed diagonal Gaussian over the flattened chunk (``P = h*A`` numbers): an MLP trunk with
  separate mean and log-std heads, log-std clipped to [-20, 2];
* critic: an ensemble of K critics over (state, chunk). ``config.networks``: ``rlpd`` (paper preset, the QC
  repo's RLPD layers) has ReLU hidden layers ``ReLU(LayerNorm(Dense(x)))`` in critic and actor trunk; ``qam``
  (qam preset, the QAM repo's layers) GELU with the LayerNorm after it, ``LayerNorm(GELU(Dense(x)))``. The TD
  target is the h-step backup of the ``q_agg`` (paper: mean, no clipped double-Q; with ``rho > 0``, the QAM
  protocol's, ``mean - rho * std``) of the target critics at ``s_{t+h}`` with the actor's sample
  ``a' ~ pi(s_{t+h})``, without the entropy bonus unless ``backup_entropy``;
* temperature: ``log t`` is learned so that the policy entropy approaches
  ``target_entropy_per_dim * P``;
* evaluation: ``config.eval_policy`` — actions sampled from the policy (default, as the authors) or its
  squashed mean.

Losses (one step, all from the parameters *before* the step, one gradient, one Adam, as the flow agents):

* ``critic``: :func:`qchunk.agents.common.chunk_critic_objective`;
* ``actor``: ``mean_b [t * log pi(a_b|s_b) - (mean_k Q_k - rho * std_k Q_k)(s_b, a_b)] - bc_coef * LL`` with
  ``a_b ~ pi(s_b)`` reparameterised and the critic and temperature held fixed (``rho`` 0 at the paper preset:
  the plain mean); ``LL`` is :func:`bc_log_likelihood` (``config.bc_mask``);
* ``temperature``: ``t * mean_b (-log pi(a_b|s_b) - target_entropy)`` with the log-probabilities held fixed.

Each term reaches only its own parameters, so the one Adam equals three. The losses take their random numbers as
arrays (:class:`SacDraws`; :meth:`SacAgent.update_draws` draws them from a key).
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
    draws_loss_fn,
    init_module,
    seed_keys,
    temperature_objective,
)
from qchunk.agents.config import SacAgentConfig
from qchunk.agents.losses import behaviour_log_likelihood, sac_actor_loss
from qchunk.agents.td import critic_actions, pessimistic_ensemble
from qchunk.networks import CriticEnsemble, TanhGaussianPolicy, tanh_gaussian_from_noise, tanh_gaussian_log_prob


class SacNetworks(NamedTuple):
    """The (stateless) flax module definitions of a SAC agent."""

    critic: CriticEnsemble
    """K critics over (state, policy output)."""
    actor: TanhGaussianPolicy
    """The tanh-Gaussian policy over policy outputs of width ``P``."""


@functools.lru_cache(maxsize=64)
def build_sac_networks(config: SacAgentConfig, action_dim: int) -> SacNetworks:
    """Module definitions for ``config`` with per-step action dimension ``action_dim``: with
    ``config.networks == "rlpd"`` the QC repo's RLPD layers (ReLU, LayerNorm before it), with ``"qam"`` the QAM
    repo's (GELU, LayerNorm after it) for the critics and the actor's trunk."""
    qam = config.networks == "qam"
    activation = nn.gelu if qam else nn.relu
    critic = CriticEnsemble(config.critic_hidden_dims, config.num_critics, config.critic_layer_norm,
                            activation=activation, norm_before_activation=not qam)
    actor = TanhGaussianPolicy(config.actor_hidden_dims, config.policy_dim(action_dim), config.actor_layer_norm,
                               activation=activation)
    return SacNetworks(critic, actor)


class SacDraws(NamedTuple):
    """The random numbers of one SAC update, as arrays (``B`` batch, ``P`` policy width):
    :meth:`SacAgent.update_draws` makes them from a key; the fidelity harness passes the authors' recorded ones."""

    next_action: Array
    """``(B, P)`` standard normal noise of the TD target's sample ``a' ~ pi(s_{t+h})``."""
    actor: Array
    """``(B, P)`` standard normal noise of the actor loss's reparameterised sample ``a ~ pi(s_t)``."""


class SacAgent(AgentBase, LearnedTemperature):
    """Immutable state of a SAC agent; ``update`` and ``sample_actions`` are pure and jitted.

    Shapes and the batch contract are those of :class:`~qchunk.agents.flow_agent.FlowAgent`:
    ``B`` batch, ``h = config.horizon``, ``A`` action dimension, ``H = action_horizon``, ``P = H * A``.
    ``params`` holds ``{"critic", "actor", "log_temperature"}``.
    """

    config: SacAgentConfig = flax.struct.field(pytree_node=False)
    """The resolved settings."""

    loss_fn = staticmethod(draws_loss_fn)
    loss_from_draws = staticmethod(lambda params, agent, batch, draws: sac_loss(params, agent, batch, draws))

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

    def policy_noise(self, rng: Array, batch: int) -> Array:
        """The standard normal noise ``(B, P)`` one policy call uses for ``batch`` states, drawn from ``rng``."""
        return jax.random.normal(rng, (batch, self.config.policy_dim(self.action_dim)), jnp.float32)

    def act(self, params: Params, obs: Array, noise: Array) -> Array:
        """The policy's sample for given noise: ``obs (B, D)``, ``noise (B, P)`` -> ``tanh(mean + std * noise)``
        ``(B, P)`` in (-1, 1)."""
        mean, log_std = self.networks.actor.apply({"params": params["actor"]}, obs)
        return tanh_gaussian_from_noise(mean, log_std, noise)[0]

    def update_draws(self, rng: Array, batch: int) -> SacDraws:
        """All random numbers of one update on ``batch`` states, drawn from ``rng`` (:class:`SacDraws`)."""
        k_next, k_pi = jax.random.split(rng)
        return SacDraws(self.policy_noise(k_next, batch), self.policy_noise(k_pi, batch))

    @jax.jit
    def sample_actions(self, observations: Array, rng: Array) -> Array:
        """Exploration actions ``a ~ pi(s)``: ``(obs_dim,) -> (H, A)`` or ``(B, obs_dim) -> (B, H, A)``."""
        obs, single = as_batch(observations)
        return self.as_chunks(self.act(self.params, obs, self.policy_noise(rng, obs.shape[0])), single)

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


def bc_log_likelihood(config: SacAgentConfig, mean: Array, log_std: Array, batch: Batch,
                      action_dim: int) -> Array:
    """The BC term's log-likelihood of the data under the policy ``(mean, log_std) (B, P)`` (data actions
    clipped to +-(1 - 1e-5)), weighted as ``config.bc_mask`` says: ``none`` (the QC code) ``mean_b log pi(data_b)``
    over the whole flattened chunk; ``chunk`` (the QAM code) the same times ``valid[b, -1]``; ``step`` only the
    steps inside the episode, ``mean_b sum_j valid[b, j] log pi(data_bj)``."""
    data = critic_actions(batch["actions"], config.chunked)  # (B, P)
    per_dim = tanh_gaussian_log_prob(mean, log_std, data)  # (B, P)
    if config.bc_mask == "step":
        steps = config.action_horizon
        return behaviour_log_likelihood(per_dim.reshape(data.shape[0], steps, action_dim), batch["valid"][:, :steps])
    log_prob = jnp.sum(per_dim, -1)
    if config.bc_mask == "chunk":
        log_prob = log_prob * batch["valid"][:, -1]
    return jnp.mean(log_prob)


def sac_loss(params: Params, agent: SacAgent, batch: Batch, draws: SacDraws) -> tuple[Array, dict[str, Array]]:
    """Critic + actor + temperature loss of one update (see the module docstring) and its metrics, for the
    random numbers ``draws``."""
    config, nets = agent.config, agent.networks
    fixed = jax.lax.stop_gradient(params)
    temperature = jnp.exp(fixed["log_temperature"])
    obs = batch["observations"]

    # Critic: h-step backup to the target critics at s_{t+h} with a' ~ pi(s_{t+h}).
    next_mean, next_log_std = nets.actor.apply({"params": fixed["actor"]}, batch["next_observations"][:, -1])
    next_actions, next_log_probs = tanh_gaussian_from_noise(next_mean, next_log_std, draws.next_action)
    bonus = -temperature * jnp.sum(next_log_probs, -1) if config.backup_entropy else None
    c_loss, terms = agent_critic_objective(agent, params["critic"], batch, next_actions, next_q_bonus=bonus)
    info = critic_info(c_loss, terms)

    # Actor: reparameterised sample scored by mean_k Q - rho * std_k Q of the (fixed) critics, minus the entropy.
    mean, log_std = nets.actor.apply({"params": params["actor"]}, obs)
    actions, log_probs = tanh_gaussian_from_noise(mean, log_std, draws.actor)
    log_prob = jnp.sum(log_probs, -1)  # (B,)
    q_pi = pessimistic_ensemble(nets.critic.apply({"params": fixed["critic"]}, obs, actions), config.rho)
    actor_loss = sac_actor_loss(log_prob, q_pi, temperature)
    info["actor/policy_loss"] = actor_loss
    info["actor/q_mean"] = jnp.mean(q_pi)
    info["actor/entropy"] = -jnp.mean(log_prob)
    if config.bc_coef > 0.0:
        bc_ll = bc_log_likelihood(config, mean, log_std, batch, agent.action_dim)
        actor_loss = actor_loss - config.bc_coef * bc_ll
        info["actor/bc_log_likelihood"] = bc_ll
    info["actor/loss"] = actor_loss

    # Temperature: towards the target entropy (log-probabilities held fixed).
    t_loss, t_info = temperature_objective(params["log_temperature"], log_prob, config.target_entropy(agent.action_dim))
    info.update(t_info)
    return c_loss + actor_loss + t_loss, info


__all__ = ["SacAgent", "SacDraws", "SacNetworks", "bc_log_likelihood", "build_sac_networks", "sac_loss"]
