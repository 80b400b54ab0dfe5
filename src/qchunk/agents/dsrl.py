"""DSRL (``dsrl``): SAC in the latent-noise space of a BC flow over chunks, acting through the flow.

Diffusion steering by RL (Wagenmaker et al. 2025) as the QAM paper runs it (Li & Levine 2026):

* a BC flow over chunks trained by flow matching (:func:`qchunk.agents.common.bc_flow_objective`), by
  that loss only: no actor, critic or temperature gradient reaches it, so RL never changes what the flow
  does with a given noise. The map from noise to chunk is the *latent flow*: with
  ``latent_flow='target'`` (the release's default) a Polyak average (rate ``tau``) of the BC flow, so the
  latent space moves slowly; with ``'online'`` the BC flow itself. (The original DSRL freezes a
  pre-trained policy outright; the QAM runs keep training the BC flow on the data offline and online,
  which this follows.)
* the actor is a tanh-Gaussian over the flow's initial noise: ``w = noise_scale * tanh(u)``,
  ``u ~ N(mean(s), std(s))`` (the SAC family's :class:`~qchunk.networks.TanhGaussianPolicy` with the QAM
  release's GELU trunk); the executed chunk is the latent flow's clipped Euler solution from ``w``;
* a K=10 chunk critic ``Q(s, a)`` on the data chunks with the h-step pessimistic target
  ``mean_k Q'_k - rho * std_k Q'_k`` at ``(s_{t+h}, a')``, ``a'`` the agent's own chunk;
* a latent critic ``Q_w(s, w)`` (K members) regressed onto the chunk critic through the latent flow,
  ``Q_w,k(s, w) ~ Q_k(s, flow(s, w))`` with ``w ~ N(0, I)`` (the release's distillation noise); the actor
  maximises ``mean_k Q_w,k(s, w) - temperature * log pi(u | s)`` (the SAC family's actor and temperature
  losses, target entropy ``-0.5 * h * A``);
* acting and the TD target: ``num_samples`` latents, the chunk with the highest ensemble-mean online Q
  kept (N = 1 in the QAM runs); evaluation acts the same way.

Losses (one step, one gradient, one Adam; each term reaches only its own network):
``critic + latent_critic + bc_flow + actor + temperature``; then the target critic (and the target flow)
move towards the pre-step parameters.
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
    bc_flow_objective,
    critic_and_flow,
    critic_info,
    init_module,
    integrate_flow,
    normal,
    seed_keys,
    temperature_objective,
)
from qchunk.agents.config import DsrlAgentConfig
from qchunk.agents.edit import best_by_q
from qchunk.agents.losses import sac_actor_loss
from qchunk.agents.td import critic_actions
from qchunk.networks import CriticEnsemble, FlowVelocity, TanhGaussianPolicy, tanh_gaussian_sample

__all__ = ["DsrlAgent", "DsrlNetworks", "build_dsrl_networks", "dsrl_actions", "dsrl_loss", "latent_noise"]


class DsrlNetworks(NamedTuple):
    """The (stateless) flax module definitions of DSRL."""

    critic: CriticEnsemble
    """K critics over (state, chunk)."""
    latent_critic: CriticEnsemble
    """K critics over (state, latent noise), distilled from ``critic`` through the latent flow."""
    flow: FlowVelocity
    """The BC flow velocity field over chunks."""
    actor: TanhGaussianPolicy
    """The latent policy: a tanh-Gaussian over the flow's initial noise."""


@functools.lru_cache(maxsize=64)
def build_dsrl_networks(config: DsrlAgentConfig, action_dim: int) -> DsrlNetworks:
    """Module definitions for ``config`` with per-step action dimension ``action_dim``."""
    critic, flow = critic_and_flow(config, action_dim)
    actor = TanhGaussianPolicy(config.actor_hidden_dims, flow.action_dim, config.actor_layer_norm, activation=nn.gelu)
    return DsrlNetworks(critic, critic, flow, actor)


class DsrlAgent(AgentBase, LearnedTemperature):
    """Immutable state of DSRL; ``update`` and ``sample_actions`` are pure and jitted.

    Shapes and the batch contract are those of :class:`~qchunk.agents.flow_agent.FlowAgent`:
    ``B`` batch, ``h = config.horizon``, ``A`` action dimension, ``H = action_horizon``, ``P = H * A``.
    ``params`` holds ``{"critic", "latent_critic", "flow", "actor", "log_temperature"}``;
    ``target_params`` ``{"critic", "flow"}`` (``{"critic"}`` with ``latent_flow='online'``).
    """

    config: DsrlAgentConfig = flax.struct.field(pytree_node=False)
    """The resolved settings."""

    loss_fn = staticmethod(lambda params, agent, batch, key: dsrl_loss(params, agent, batch, key))

    @classmethod
    def create(cls, config: DsrlAgentConfig, observation_dim: int, action_dim: int, seed: int = 0) -> DsrlAgent:
        """Initialise networks (targets = online copies), the temperature and Adam from integer ``seed``."""
        nets = build_dsrl_networks(config, int(action_dim))
        rng, k_critic, k_latent, k_flow, k_actor = seed_keys(seed, 4)
        obs, act = (1, int(observation_dim)), (1, config.policy_dim(int(action_dim)))
        params = {
            "critic": init_module(nets.critic, k_critic, (obs, act)),
            "latent_critic": init_module(nets.latent_critic, k_latent, (obs, act)),
            "flow": init_module(nets.flow, k_flow, (obs, act, (1, 1))),
            "actor": init_module(nets.actor, k_actor, (obs,)),
            "log_temperature": jnp.asarray(np.log(config.init_temperature), jnp.float32),
        }
        targets = {"critic": params["critic"]}
        if config.latent_flow == "target":
            targets["flow"] = params["flow"]
        return cls.from_params(config, observation_dim, action_dim, params, targets, rng)

    @property
    def networks(self) -> DsrlNetworks:
        """The flax module definitions."""
        return build_dsrl_networks(self.config, self.action_dim)

    @property
    def latent_flow_params(self) -> Params:
        """Parameters of the flow that maps latent noise to chunks (the target or the online BC flow)."""
        return latent_flow_params(self.config, self.params, self.target_params)

    @jax.jit
    def sample_latents(self, observations: Array, rng: Array) -> Array:
        """The actor's latent noise ``w = noise_scale * tanh(u)``: ``(B, obs_dim) -> (B, P)`` (one draw per
        state, ``u`` from ``jax.random.normal(rng, (B, P))`` as :func:`qchunk.networks.tanh_gaussian_sample`)."""
        obs, _ = as_batch(observations)
        return latent_noise(self.networks, self.config, self.params["actor"], obs, rng)[0]

    @jax.jit
    def decode(self, observations: Array, latents: Array) -> Array:
        """The latent flow's clipped Euler solution from ``latents (B, P)`` at ``observations (B, obs_dim)``:
        ``(B, P)`` chunks in [-1, 1]."""
        return integrate_flow(self.networks.flow, self.latent_flow_params, observations, latents,
                              self.config.flow_steps)

    @jax.jit
    def sample_actions(self, observations: Array, rng: Array) -> Array:
        """Chunks to execute: ``(obs_dim,) -> (H, A)`` or ``(B, obs_dim) -> (B, H, A)``, in [-1, 1]; with
        ``num_samples = 1`` exactly ``decode(obs, sample_latents(obs, rng))``."""
        obs, single = as_batch(observations)
        return self.as_chunks(dsrl_actions(self.networks, self.config, self.params, self.target_params, obs, rng),
                              single)


def latent_flow_params(config: DsrlAgentConfig, params: Params, target_params: Params) -> Params:
    """The parameters of the latent flow: ``target_params["flow"]`` or ``params["flow"]`` by
    ``config.latent_flow``."""
    return target_params["flow"] if config.latent_flow == "target" else params["flow"]


def latent_noise(nets: DsrlNetworks, config: DsrlAgentConfig, actor_params: Params, obs: Array,
                 key: Array) -> tuple[Array, Array]:
    """Reparameterised latents ``w = noise_scale * tanh(u)`` for ``obs (..., D)`` and ``log pi(u | s)``:
    ``(..., P)`` and ``(...)`` (the log-density of the tanh sample, before the constant scaling)."""
    mean, log_std = nets.actor.apply({"params": actor_params}, obs)
    squashed, log_probs = tanh_gaussian_sample(mean, log_std, key)
    return config.noise_scale * squashed, jnp.sum(log_probs, axis=-1)


def dsrl_actions(nets: DsrlNetworks, config: DsrlAgentConfig, params: Params, target_params: Params,
                 obs: Array, rng: Array) -> Array:
    """DSRL's policy for ``obs (B, D)``: ``(B, P)`` in [-1, 1] (no gradient use). ``N = num_samples``
    latents per state (N = 1: ``latent_noise(obs, rng)``), decoded by the latent flow; :func:`best_by_q`
    keeps one."""
    size, n = obs.shape[0], config.num_samples
    obs_n = obs if n == 1 else jnp.broadcast_to(obs[:, None, :], (size, n, obs.shape[-1]))
    latents, _ = latent_noise(nets, config, params["actor"], obs_n, rng)
    latents = latents.reshape(size, n, -1)
    chunks = integrate_flow(nets.flow, latent_flow_params(config, params, target_params), obs[:, None, :],
                            latents, config.flow_steps)
    return best_by_q(nets.critic, params["critic"], obs, chunks)


class DsrlKeys(NamedTuple):
    """The keys one DSRL update draws from (split from the agent's key in this order)."""

    next_action: Array
    """The agent's chunk at ``s_{t+h}`` for the TD target."""
    distill_noise: Array
    """Latents ``w ~ N(0, I)`` of the latent critic's distillation."""
    bc_noise: Array
    """Noise ``x0`` of the flow-matching loss."""
    bc_time: Array
    """Flow times ``u`` of the flow-matching loss."""
    actor: Array
    """The actor's reparameterised latent sample."""


def dsrl_loss(params: Params, agent: DsrlAgent, batch: Batch, rng: Array) -> tuple[Array, dict[str, Array]]:
    """Critic + latent critic + BC flow + actor + temperature loss of one update (module docstring)."""
    config, nets = agent.config, agent.networks
    keys = DsrlKeys(*jax.random.split(rng, 5))
    fixed = jax.lax.stop_gradient(params)
    temperature = jnp.exp(fixed["log_temperature"])
    flow_params = latent_flow_params(config, fixed, agent.target_params)
    obs = batch["observations"]
    data = critic_actions(batch["actions"], config.chunked)  # (B, P)

    next_actions = dsrl_actions(nets, config, fixed, agent.target_params, batch["next_observations"][:, -1],
                                keys.next_action)
    c_loss, terms = agent_critic_objective(agent, params["critic"], batch, next_actions)
    info = critic_info(c_loss, terms)

    # Latent critic: Q_w,k(s, w) regressed onto Q_k(s, flow(s, w)), member by member.
    w = normal(keys.distill_noise, data.shape)
    target_qs = nets.critic.apply({"params": fixed["critic"]}, obs,
                                  integrate_flow(nets.flow, flow_params, obs, w, config.flow_steps))
    latent_qs = nets.latent_critic.apply({"params": params["latent_critic"]}, obs, w)  # (K, B)
    distill_loss = jnp.mean(jnp.square(latent_qs - target_qs))

    bc_loss = bc_flow_objective(nets.flow, params["flow"], batch, data, config.action_horizon, agent.action_dim,
                                keys.bc_noise, keys.bc_time)

    latents, log_prob = latent_noise(nets, config, params["actor"], obs, keys.actor)
    q_pi = jnp.mean(nets.latent_critic.apply({"params": fixed["latent_critic"]}, obs, latents), axis=0)
    a_loss = sac_actor_loss(log_prob, q_pi, temperature)
    t_loss, t_info = temperature_objective(params["log_temperature"], log_prob, config.target_entropy(agent.action_dim))
    info.update({
        "critic/latent_distill_loss": distill_loss,
        "actor/bc_flow_loss": bc_loss,
        "actor/loss": a_loss,
        "actor/q_mean": jnp.mean(q_pi),
        "actor/entropy": -jnp.mean(log_prob),
        "actor/latent_abs_mean": jnp.mean(jnp.abs(latents)),
        **t_info,
    })
    return c_loss + distill_loss + bc_loss + a_loss + t_loss, info
