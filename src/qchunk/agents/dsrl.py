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
  release's GELU trunk, without LayerNorm whatever ``actor_layer_norm`` says, as the release's latent actor:
  that switch reaches the BC flow only); the executed chunk is the latent flow's clipped Euler solution
  from ``w``;
* a K=10 chunk critic ``Q(s, a)`` on the data chunks with the h-step pessimistic target
  ``mean_k Q'_k - rho * std_k Q'_k`` at ``(s_{t+h}, a')``, ``a'`` the agent's own chunk;
* a latent critic ``Q_w(s, w)`` (K members) regressed onto the chunk critic through the latent flow,
  ``Q_w,k(s, w) ~ Q_k(s, flow(s, w))`` with ``w ~ N(0, I)`` (the release's distillation noise); the actor
  maximises ``mean_k Q_w,k(s, w) - temperature * log pi(u | s)`` (the SAC family's actor and temperature
  losses, target entropy ``-0.5 * h * A``);
* acting and the TD target: ``num_samples`` latents, the chunk with the highest ensemble-mean online Q
  kept (N = 1 in the QAM runs); evaluation acts the same way.

The losses take their random numbers as arrays (:class:`DsrlDraws`, made from a key by
:meth:`DsrlAgent.update_draws`; the policy's by :meth:`DsrlAgent.policy_noise`), so that the fidelity harness
(:mod:`qchunk.fidelity`) can replay the authors' recorded draws (``github:ColinQiyangLi/qam``,
``agents/dsrl.py``; every switch of it matches update for update).

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
    bc_flow_loss,
    critic_and_flow,
    critic_info,
    draws_loss_fn,
    init_module,
    integrate_flow,
    normal,
    seed_keys,
    temperature_objective,
    uniform,
)
from qchunk.agents.config import DsrlAgentConfig
from qchunk.agents.edit import best_by_q
from qchunk.agents.losses import sac_actor_loss
from qchunk.agents.td import critic_actions
from qchunk.networks import CriticEnsemble, FlowVelocity, TanhGaussianPolicy, tanh_gaussian_from_noise

__all__ = ["DsrlAgent", "DsrlDraws", "DsrlNetworks", "build_dsrl_networks", "dsrl_actions", "dsrl_loss",
           "latent_flow_params", "latent_noise"]


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
    """Module definitions for ``config`` with per-step action dimension ``action_dim`` (``actor_layer_norm``
    reaches the BC flow only: the latent actor has no LayerNorm, as the release's ``TanhNormal``)."""
    critic, flow = critic_and_flow(config, action_dim)
    actor = TanhGaussianPolicy(config.actor_hidden_dims, flow.action_dim, False, activation=nn.gelu)
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

    loss_fn = staticmethod(draws_loss_fn)
    loss_from_draws = staticmethod(lambda params, agent, batch, draws: dsrl_loss(params, agent, batch, draws))

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
        state, ``u = mean + std * eps`` with ``eps = jax.random.normal(rng, (B, P))``)."""
        obs, _ = as_batch(observations)
        eps = jax.random.normal(rng, (obs.shape[0], self.networks.flow.action_dim), jnp.float32)
        return latent_noise(self.networks, self.config, self.params["actor"], obs, eps)[0]

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
        return self.as_chunks(self.act(self.params, obs, self.policy_noise(rng, obs.shape[0])), single)

    def act(self, params: Params, obs: Array, noise: Array) -> Array:
        """The policy under ``params`` for given draws ``noise (B, N, P)`` (:meth:`policy_noise`'s):
        ``obs (B, D) -> (B, P)`` (:func:`dsrl_actions`)."""
        return dsrl_actions(self.networks, self.config, params, self.target_params, obs, noise)

    def policy_noise(self, rng: Array, batch: int) -> Array:
        """The draws of one policy call on ``batch`` states: ``eps (B, N, P) ~ N(0, I)``, the latent actor's
        reparameterisation noise for ``N = num_samples`` latents per state."""
        shape = (batch, self.config.num_samples, self.networks.flow.action_dim)
        return jax.random.normal(rng, shape, jnp.float32)

    def update_draws(self, rng: Array, batch: int) -> DsrlDraws:
        """All random numbers of one update on ``batch`` states, drawn from ``rng`` split in five
        (:class:`DsrlDraws`, in its field order)."""
        keys = jax.random.split(rng, 5)
        shape = (batch, self.networks.flow.action_dim)
        return DsrlDraws(self.policy_noise(keys[0], batch), normal(keys[1], shape), normal(keys[2], shape),
                         uniform(keys[3], (batch, 1)), jax.random.normal(keys[4], shape, jnp.float32))


def latent_flow_params(config: DsrlAgentConfig, params: Params, target_params: Params) -> Params:
    """The parameters of the latent flow: ``target_params["flow"]`` or ``params["flow"]`` by
    ``config.latent_flow``."""
    return target_params["flow"] if config.latent_flow == "target" else params["flow"]


def latent_noise(nets: DsrlNetworks, config: DsrlAgentConfig, actor_params: Params, obs: Array,
                 eps: Array) -> tuple[Array, Array, Array]:
    """Reparameterised latents ``w = noise_scale * tanh(mean + std * eps)`` for ``obs (..., D)`` and the noise
    ``eps (..., P)`` (``obs`` broadcasts against it: ``(B, 1, D)`` for ``(B, N, P)``).

    Returns ``w (..., P)``, ``log pi(u | s) (...)`` (the log-density of the tanh sample, before the constant
    scaling, as the release) and the actor's standard deviations ``exp(log_std) (..._s, P)``."""
    mean, log_std = nets.actor.apply({"params": actor_params}, obs)
    squashed, log_probs = tanh_gaussian_from_noise(mean, log_std, eps)
    return config.noise_scale * squashed, jnp.sum(log_probs, axis=-1), jnp.exp(log_std)


def dsrl_actions(nets: DsrlNetworks, config: DsrlAgentConfig, params: Params, target_params: Params,
                 obs: Array, noise: Array) -> Array:
    """DSRL's policy for ``obs (B, D)`` and the actor's noise ``noise (B, N, P)``: ``(B, P)`` in [-1, 1] (no
    gradient use). ``N = num_samples`` latents per state (:func:`latent_noise`), decoded by the latent flow;
    :func:`best_by_q` keeps one."""
    obs_b = obs[:, None, :]
    latents, _, _ = latent_noise(nets, config, params["actor"], obs_b, noise)
    chunks = integrate_flow(nets.flow, latent_flow_params(config, params, target_params), obs_b, latents,
                            config.flow_steps)
    return best_by_q(nets.critic, params["critic"], obs, chunks)


class DsrlDraws(NamedTuple):
    """Every random number one DSRL update uses (``B`` batch, ``N = num_samples``, ``P`` policy width); made
    from a key by :meth:`DsrlAgent.update_draws`, or the authors' recorded ones in the fidelity harness."""

    next_action: Array
    """``(B, N, P)`` the actor's noise for the agent's chunk at ``s_{t+h}`` (the TD target)."""
    distill_noise: Array
    """``(B, P)`` latents ``w ~ N(0, I)`` of the latent critic's distillation."""
    bc_noise: Array
    """``(B, P)`` the start ``x0`` of the flow-matching loss."""
    bc_time: Array
    """``(B, 1)`` the flow times ``u`` of the flow-matching loss."""
    actor: Array
    """``(B, P)`` the standard normal noise of the actor's reparameterised latent sample."""


def dsrl_loss(params: Params, agent: DsrlAgent, batch: Batch,
              draws: DsrlDraws) -> tuple[Array, dict[str, Array]]:
    """Critic + latent critic + BC flow + actor + temperature loss of one update for given ``draws`` (module
    docstring)."""
    config, nets = agent.config, agent.networks
    fixed = jax.lax.stop_gradient(params)
    temperature = jnp.exp(fixed["log_temperature"])
    flow_params = latent_flow_params(config, fixed, agent.target_params)
    obs = batch["observations"]
    data = critic_actions(batch["actions"], config.chunked)  # (B, P)

    next_actions = dsrl_actions(nets, config, fixed, agent.target_params, batch["next_observations"][:, -1],
                                draws.next_action)
    c_loss, terms = agent_critic_objective(agent, params["critic"], batch, next_actions)
    info = critic_info(c_loss, terms)

    # Latent critic: Q_w,k(s, w) regressed onto Q_k(s, flow(s, w)), member by member.
    w = draws.distill_noise
    target_qs = nets.critic.apply({"params": fixed["critic"]}, obs,
                                  integrate_flow(nets.flow, flow_params, obs, w, config.flow_steps))
    latent_qs = nets.latent_critic.apply({"params": params["latent_critic"]}, obs, w)  # (K, B)
    distill_loss = jnp.mean(jnp.square(latent_qs - target_qs))

    bc_loss = bc_flow_loss(nets.flow, params["flow"], batch, data, config.action_horizon, agent.action_dim,
                           draws.bc_noise, draws.bc_time, config.bc_weighting)

    latents, log_prob, std = latent_noise(nets, config, params["actor"], obs, draws.actor)
    q_pi = jnp.mean(nets.latent_critic.apply({"params": fixed["latent_critic"]}, obs, latents), axis=0)
    a_loss = sac_actor_loss(log_prob, q_pi, temperature)
    t_loss, t_info = temperature_objective(params["log_temperature"], log_prob, config.target_entropy(agent.action_dim))
    info.update({
        "critic/latent_distill_loss": distill_loss,
        "actor/bc_flow_loss": bc_loss,
        "actor/loss": a_loss,
        "actor/q_mean": jnp.mean(q_pi),
        "actor/entropy": -jnp.mean(log_prob),
        "actor/std_mean": jnp.mean(jax.lax.stop_gradient(std)),
        "actor/latent_abs_mean": jnp.mean(jnp.abs(latents)),
        **t_info,
    })
    return c_loss + distill_loss + bc_loss + a_loss + t_loss, info
