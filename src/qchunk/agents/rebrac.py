"""ReBRAC (Tarasov et al. 2023, revisited behaviour-regularised actor-critic) on chunks, as the QAM paper runs it
(the QAM release's ``agents/rebrac.py``): TD3+BC with LayerNorm critics, a deterministic tanh actor over the
flattened chunk with a squared-distance BC penalty, and clipped Gaussian noise on the TD target's action.

Networks (``params``): ``critic`` (K critics over (state, flattened chunk), the shared ensemble) and ``actor``
(:class:`~qchunk.networks.DeterministicPolicy`). ``target_params``: ``critic`` and ``actor`` (Polyak averages,
rate ``tau``, moved on every ``target_every``-th update only; :attr:`ReBracAgent.target_rate`).

One update (one gradient of the sum, plain Adam):

* critic: the h-step TD loss of :func:`~qchunk.agents.common.chunk_critic_objective` with the pessimistic target
  ``mean_k Q'_k - rho * std_k Q'_k`` at ``s_{t+h}`` and the smoothed target action
  ``clip(mu'(s_{t+h}) + clip(actor_noise * eps, -actor_noise_clip, actor_noise_clip), -1, 1)`` (``mu'`` the
  target actor, ``eps ~ N(0, I)``);
* actor (every update, as the release's code): ``-mean_b Q(s, mu(s)) / mean_b |Q(s, mu(s))|`` (the scale held
  fixed; ``Q = mean - rho * std`` of the online critics, held fixed) plus ``alpha_actor * mean_b valid[b, -1] *
  ||mu(s_b) - data chunk_b||^2`` (:func:`~qchunk.agents.losses.squared_bc_loss`).

Acting: the actor's chunk with the same clipped noise (``actor_noise``; 0 on most of the QAM domains).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp

from qchunk.agents.common import (
    AgentBase,
    Array,
    Batch,
    Params,
    agent_critic_objective,
    as_batch,
    critic_info,
    draws_loss_fn,
    init_module,
    normal,
    seed_keys,
)
from qchunk.agents.config import AgentConfig
from qchunk.agents.losses import q_maximisation_loss, squared_bc_loss
from qchunk.agents.td import critic_actions, pessimistic_ensemble
from qchunk.networks import CriticEnsemble, DeterministicPolicy


@dataclass(frozen=True)
class ReBracAgentConfig(AgentConfig):
    """All settings of ReBRAC as the QAM paper runs it. Every default but ``alpha_actor`` is the QAM release's
    (``agents/rebrac.py``; checked update by update in ``tests/fixtures/fidelity``); ``alpha_actor`` and
    ``actor_noise`` vary per domain (:data:`~qchunk.agents.presets.QAM_METHOD_SETTINGS`)."""

    agent: str = "rebrac"
    num_critics: int = 10
    """Critic ensemble size K (the QAM protocol's 10)."""
    rho: float = 0.5
    """Pessimism of the TD target and of the actor's Q: ``mean_k Q_k - rho * std_k Q_k`` (0 on humanoidmaze)."""
    alpha_actor: float = 0.01
    """Weight of the actor's BC penalty. Not the release's default (0, no penalty: TD3 with LayerNorm): ReBRAC off
    the QAM table (a task without a per-domain value) should keep its behaviour regularisation; 0.01 is the
    reproduction script's value on most domains."""
    actor_noise: float = 0.2
    """Standard deviation of the Gaussian noise on the TD target's action and on the acting action."""
    actor_noise_clip: float = 0.5
    """That noise is clipped to ``[-actor_noise_clip, actor_noise_clip]`` per number."""
    target_every: int = 2
    """The target critic and actor move (rate ``tau``) on every ``target_every``-th update only: the release's
    ``actor_freq``, which in its code gates the target step (its actor is trained on every update)."""
    actor_init_scale: float = 0.01
    """Variance scale of the actor's output layer at initialisation (the release's ``actor_fc_scale``)."""

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            *super()._checks(),
            (self.alpha_actor >= 0.0, f"alpha_actor must be >= 0, got {self.alpha_actor}"),
            (self.actor_noise >= 0.0, f"actor_noise must be >= 0, got {self.actor_noise}"),
            (self.actor_noise_clip >= 0.0, f"actor_noise_clip must be >= 0, got {self.actor_noise_clip}"),
            (self.target_every >= 1, f"target_every must be >= 1, got {self.target_every}"),
            (self.actor_init_scale > 0.0, f"actor_init_scale must be > 0, got {self.actor_init_scale}"),
        ]


class ReBracNetworks(NamedTuple):
    """The (stateless) flax module definitions of a ReBRAC agent."""

    critic: CriticEnsemble
    """K critics over (state, policy output)."""
    actor: DeterministicPolicy
    """The deterministic tanh actor ``mu(s) (P,)``."""


@functools.lru_cache(maxsize=64)
def build_rebrac_networks(config: ReBracAgentConfig, action_dim: int) -> ReBracNetworks:
    """Module definitions for ``config`` with per-step action dimension ``action_dim``."""
    critic = CriticEnsemble(config.critic_hidden_dims, config.num_critics, config.critic_layer_norm)
    actor = DeterministicPolicy(config.actor_hidden_dims, config.policy_dim(action_dim), config.actor_layer_norm,
                                config.actor_init_scale)
    return ReBracNetworks(critic, actor)


def smoothed_actions(actions: Array, noise: Array, scale: float, clip: float) -> Array:
    """TD3's target-policy smoothing: ``clip(actions + clip(scale * noise, -clip, clip), -1, 1)``, all ``(B, P)``
    (``noise ~ N(0, I)``)."""
    return jnp.clip(actions + jnp.clip(noise * scale, -clip, clip), -1.0, 1.0)


class ReBracDraws(NamedTuple):
    """Every random number one ReBRAC update uses: ``next_action (B, P)``, the standard normals of the TD target's
    action noise (:meth:`ReBracAgent.update_draws`; the fidelity harness passes the authors' recorded ones)."""

    next_action: Array


class ReBracAgent(AgentBase):
    """Immutable state of a ReBRAC agent; ``update`` and ``sample_actions`` are pure and jitted. ``B`` batch,
    ``h = config.horizon``, ``A`` action dimension, ``P = action_horizon * A``."""

    config: ReBracAgentConfig = flax.struct.field(pytree_node=False)
    """The resolved settings."""

    loss_fn = staticmethod(draws_loss_fn)
    loss_from_draws = staticmethod(lambda params, agent, batch, draws: rebrac_loss(params, agent, batch, draws))

    @classmethod
    def create(cls, config: ReBracAgentConfig, observation_dim: int, action_dim: int, seed: int = 0) -> ReBracAgent:
        """Initialise critic and actor (independently), their targets (copies) and Adam from ``seed``."""
        nets = build_rebrac_networks(config, int(action_dim))
        rng, k_critic, k_actor = seed_keys(seed, 2)
        obs, act = (1, int(observation_dim)), (1, config.policy_dim(int(action_dim)))
        params = {"critic": init_module(nets.critic, k_critic, (obs, act)),
                  "actor": init_module(nets.actor, k_actor, (obs,))}
        return cls.from_params(config, observation_dim, action_dim, params, dict(params), rng)

    @property
    def networks(self) -> ReBracNetworks:
        """The flax module definitions."""
        return build_rebrac_networks(self.config, self.action_dim)

    @property
    def target_rate(self) -> Array:
        """``tau`` on every ``target_every``-th update (counting from 1, as the release's ``i % actor_freq == 0``),
        else 0 (the targets stay)."""
        return jnp.where((self.step + 1) % self.config.target_every == 0, self.config.tau, 0.0)

    @jax.jit
    def sample_actions(self, observations: Array, rng: Array) -> Array:
        """Actions to execute: ``(obs_dim,) -> (H, A)`` or ``(B, obs_dim) -> (B, H, A)``, in [-1, 1]: the actor's
        chunk plus clipped noise. ``rng`` is a JAX key, used once."""
        obs, single = as_batch(observations)
        return self.as_chunks(self.act(self.params, obs, self.policy_noise(rng, obs.shape[0])), single)

    def policy_noise(self, rng: Array, batch: int) -> Array:
        """The standard normals ``(B, P)`` of one policy call for ``batch`` states."""
        return normal(rng, (batch, self.config.policy_dim(self.action_dim)))

    def act(self, params: Params, obs: Array, noise: Array) -> Array:
        """The acting policy for given draws: ``obs (B, D)``, ``noise (B, P)`` -> :func:`smoothed_actions` of the
        actor ``params['actor']`` (``(B, P)``)."""
        mode = self.networks.actor.apply({"params": params["actor"]}, obs)
        return smoothed_actions(mode, noise, self.config.actor_noise, self.config.actor_noise_clip)

    def update_draws(self, rng: Array, batch: int) -> ReBracDraws:
        """All random numbers of one update on ``batch`` states, drawn from ``rng``."""
        return ReBracDraws(next_action=self.policy_noise(rng, batch))


def rebrac_loss(params: Params, agent: ReBracAgent, batch: Batch, draws: ReBracDraws) -> tuple[Array, dict[str, Any]]:
    """``critic_loss + actor_loss`` of one update for given ``draws`` (each term reaches only its network): the TD
    target acts with the target actor (smoothed by ``draws.next_action``), the actor's Q term sees the online
    critics held fixed."""
    config, nets = agent.config, agent.networks
    next_obs = batch["next_observations"][:, -1]
    next_mode = nets.actor.apply({"params": agent.target_params["actor"]}, next_obs)
    next_actions = smoothed_actions(next_mode, draws.next_action, config.actor_noise, config.actor_noise_clip)
    c_loss, terms = agent_critic_objective(agent, params["critic"], batch, next_actions)
    info = critic_info(c_loss, terms)

    obs = batch["observations"]
    actions = nets.actor.apply({"params": params["actor"]}, obs)  # (B, P)
    qs = nets.critic.apply({"params": jax.lax.stop_gradient(params["critic"])}, obs, actions)  # (K, B)
    q = pessimistic_ensemble(qs, config.rho)
    q_loss = q_maximisation_loss(q, normalize=True, eps=0.0)
    mse = squared_bc_loss(actions, critic_actions(batch["actions"], config.chunked), batch["valid"][:, -1])
    bc_loss = config.alpha_actor * mse
    info.update({"actor/loss": q_loss + bc_loss, "actor/q_loss": q_loss, "actor/bc_loss": bc_loss,
                 "actor/mse": mse, "actor/q_mean": jnp.mean(q)})
    return c_loss + q_loss + bc_loss, info


__all__ = ["ReBracAgent", "ReBracAgentConfig", "ReBracDraws", "ReBracNetworks", "build_rebrac_networks",
           "rebrac_loss", "smoothed_actions"]
