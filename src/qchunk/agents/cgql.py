"""Classifier-guidance Q-learning (CGQL, CGQL-M, CGQL-L; the QAM paper's baselines, Li & Levine 2026,
arXiv 2601.14234): the BC flow steered at sampling time by the critic's action gradient, as classifier guidance.

Networks (``params``): ``critic`` (K *time-conditioned* critics ``Q_k(s, a, t)`` over (state, flattened chunk,
flow time), :class:`~qchunk.networks.CriticEnsemble` with ``time_input``; ``t = 1`` is the noise-free chunk)
and ``flow`` (the BC velocity field, flow matching as every flow agent). ``target_params``: ``critic`` and, with
``target_actor``, ``flow``.

The policy (acting and the TD target): Euler steps ``x_{i+1} = x_i + v_i / T`` from noise with the BC field (the
target one with ``target_actor``) plus, for ``i > 0``,

    ``v_i += guidance_coef * (inv_temp * (1 - u_i) * grad_x mean_k Q_k(s, x_i, t) + x_i) / u_i``

(the score correction of the rectified-flow path; ``t = 1`` in ``mode='simple'``, ``t = u_i`` with a distilled
time-conditioned critic), clipped to [-1, 1], the best of ``num_samples`` under the ensemble mean at ``t = 1``.

One update (one gradient of the sum, plain Adam unless ``max_grad_norm``): the critics' h-step TD loss at
``t = 1`` with the pessimistic target, the BC flow's flow-matching loss, and in modes ``mse`` / ``linex``
``noisy_coef`` times the distillation of the target critics at the data chunk into the critics at a noisy chunk
``(1 - t) z + t a`` (squared error, or :func:`~qchunk.agents.losses.linex_loss`). Equal to the authors'
``agents/cgql.py`` (the fidelity harness).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp

from qchunk.agents.common import (
    Array,
    Batch,
    Params,
    agent_critic_objective,
    bc_flow_loss,
    critic_info,
    init_module,
    normal,
    seed_keys,
    uniform,
)
from qchunk.agents.config import QamAgentConfig
from qchunk.agents.edit import best_by_q
from qchunk.agents.losses import linex_loss
from qchunk.agents.qam import QamAgent
from qchunk.agents.td import critic_actions
from qchunk.networks import CriticEnsemble, FlowVelocity

__all__ = ["CgqlAgent", "CgqlAgentConfig", "CgqlDraws", "CgqlNetworks", "build_cgql_networks", "cgql_loss",
           "guided_chunks", "noisy_critic_objective"]


@dataclass(frozen=True)
class CgqlAgentConfig(QamAgentConfig):
    """All settings of classifier-guidance Q-learning (``cgql``: ``mode='simple'``; ``cgql-m``: ``mse``;
    ``cgql-l``: ``linex``). The defaults are the authors' ``agents/cgql.py``'s; ``inv_temp``, ``guidance_coef``
    and ``noisy_coef`` per domain from the reproduction script (:data:`~qchunk.agents.presets.QAM_VARIANT_SETTINGS`).
    ``target_actor`` is the authors' ``target_guidance`` (the guided sampler integrates the target BC flow).
    QAM's ``adjoint``, ``residual``, ``target_critic_grad`` and ``clip_adjoint`` are not read."""

    mode: Literal["simple", "mse", "linex"] = "simple"
    """How the guidance's critic is time-conditioned: ``simple`` guides with ``Q(s, x_u, 1)`` (no noisy-chunk
    training); ``mse`` / ``linex`` distil the target critics into ``Q(s, x_u, u)`` at noisy chunks by squared
    error / by the LinEx loss, and guide with it."""
    inv_temp: float = 1.0
    """Inverse temperature of the guidance's ``exp(inv_temp * Q)`` (and of the LinEx loss); 0 samples the BC flow.
    10 on every domain of the reproduction script."""
    guidance_coef: float = 0.1
    """Guidance coefficient (the paper's vartheta) scaling the score correction of each Euler step."""
    noisy_coef: float = 0.001
    """Weight of the noisy-chunk distillation loss in ``mse`` / ``linex`` modes."""
    isd_clip: float = 5.0
    """LinEx: above this ``inv_temp * (target - Q)`` the loss is linear (the exponential is cut off)."""
    max_grad_norm: float = 0.0
    """Clip the update's global gradient norm to this value before Adam; 0 (the authors' cgql.py): plain Adam."""

    def _checks(self) -> list[tuple[bool, str]]:
        return [*super()._checks(),
                (self.mode in ("simple", "mse", "linex"), f"mode must be simple, mse or linex, got {self.mode!r}")]


class CgqlNetworks(NamedTuple):
    """The (stateless) flax module definitions of a CGQL agent."""

    critic: CriticEnsemble
    """K time-conditioned critics ``Q_k(s, a, t)``."""
    flow: FlowVelocity
    """The BC flow velocity field."""


@functools.lru_cache(maxsize=64)
def build_cgql_networks(config: CgqlAgentConfig, action_dim: int) -> CgqlNetworks:
    """Module definitions for ``config`` with per-step action dimension ``action_dim``."""
    critic = CriticEnsemble(config.critic_hidden_dims, config.num_critics, config.critic_layer_norm, time_input=True)
    return CgqlNetworks(critic, FlowVelocity(config.actor_hidden_dims, config.policy_dim(action_dim),
                                             config.actor_layer_norm))


class CgqlDraws(NamedTuple):
    """Every random number one CGQL update uses (``B`` batch, ``N`` samples, ``P`` policy width)."""

    next_action: Array
    """``(B, N, P)`` the TD-target policy's start noises at ``s_{t+h}``."""
    noisy_time: Array | None
    """``(B, 1)`` the noisy chunks' times (None in ``simple`` mode)."""
    noisy_noise: Array | None
    """``(B, P)`` the noisy chunks' noise (None in ``simple`` mode)."""
    bc_noise: Array
    """``(B, P)`` the start of the flow-matching loss."""
    bc_time: Array
    """``(B, 1)`` the flow times of the flow-matching loss."""


class CgqlAgent(QamAgent):
    """Immutable state of a CGQL agent: ``params`` ``critic`` and ``flow``; acting, the key->draws layer and
    the optimizer as :class:`~qchunk.agents.qam.QamAgent` (``policy_noise`` ``(B, N, P)``); shapes as there."""

    config: CgqlAgentConfig = flax.struct.field(pytree_node=False)
    """The resolved settings."""

    loss_from_draws = staticmethod(lambda params, agent, batch, draws: cgql_loss(params, agent, batch, draws))

    @classmethod
    def create(cls, config: CgqlAgentConfig, observation_dim: int, action_dim: int, seed: int = 0) -> CgqlAgent:
        """Initialise the critics and the BC flow (independently), the targets (copies) and Adam from ``seed``."""
        nets = build_cgql_networks(config, int(action_dim))
        rng, k_critic, k_flow = seed_keys(seed, 2)
        obs, act = (1, int(observation_dim)), (1, config.policy_dim(int(action_dim)))
        params = {"critic": init_module(nets.critic, k_critic, (obs, act)),
                  "flow": init_module(nets.flow, k_flow, (obs, act, (1, 1)))}
        targets = {"critic": params["critic"], **({"flow": params["flow"]} if config.target_actor else {})}
        return cls.from_params(config, observation_dim, action_dim, params, targets, rng)

    @property
    def networks(self) -> CgqlNetworks:
        """The flax module definitions."""
        return build_cgql_networks(self.config, self.action_dim)

    def act(self, params: Params, obs: Array, noise: Array) -> Array:
        """The policy for ``obs (B, D)`` and start noises ``noise (B, N, P)``: ``(B, P)`` in [-1, 1], the best
        (ensemble mean at ``t = 1``) of the ``N`` clipped :func:`guided_chunks`."""
        base = self.target_params["flow"] if self.config.target_actor else params["flow"]
        candidates = guided_chunks(self.networks, self.config, params["critic"], base, obs[:, None, :], noise)
        return best_by_q(self.networks.critic, params["critic"], obs, candidates)

    def update_draws(self, rng: Array, batch: int) -> CgqlDraws:
        """All random numbers of one update on ``batch`` states, drawn from ``rng`` (:class:`CgqlDraws`)."""
        keys = jax.random.split(rng, 5)
        width = self.networks.flow.action_dim
        noisy = self.config.mode != "simple"
        return CgqlDraws(self.policy_noise(keys[0], batch), uniform(keys[1], (batch, 1)) if noisy else None,
                         normal(keys[2], (batch, width)) if noisy else None, normal(keys[3], (batch, width)),
                         uniform(keys[4], (batch, 1)))


def guided_chunks(nets: CgqlNetworks, config: CgqlAgentConfig, critic_params: Params, flow_params: Params,
                  obs: Array, noise: Array) -> Array:
    """The classifier-guided Euler solution from ``noise (..., P)`` for states ``obs`` broadcasting against it
    (``(B, 1, D)`` for ``(B, N, P)``), clipped to [-1, 1]: ``(..., P)`` (no gradient use). The guidance (for
    steps ``i > 0`` when ``inv_temp > 0``) uses the critics ``critic_params``; the field is ``flow_params``'."""
    steps = config.flow_steps
    critic_vars, flow_vars = {"params": critic_params}, {"params": flow_params}

    def q_sum(x: Array, t: Array) -> Array:
        return jnp.sum(jnp.mean(nets.critic.apply(critic_vars, obs, x, t), axis=0))

    x = noise
    for i in range(steps):  # unrolled: T is static and small
        u = jnp.full((1,), i / steps, noise.dtype)
        v = nets.flow.apply(flow_vars, obs, x, u)
        if config.inv_temp > 0.0 and i > 0:
            score = jax.grad(q_sum)(x, jnp.ones_like(u) if config.mode == "simple" else u)
            v = v + (score * (1.0 - u) * config.inv_temp + x) * config.guidance_coef / u
        x = x + v / steps
    return jnp.clip(x, -1.0, 1.0)


def noisy_critic_objective(nets: CgqlNetworks, config: CgqlAgentConfig, critic_params: Params,
                           target_critic_params: Params, batch: Batch, data: Array, time: Array,
                           noise: Array) -> tuple[Array, dict[str, Array]]:
    """The time-conditioned critics' distillation on noisy chunks ``(1 - t) z + t a`` (``data (B, P)``,
    ``time (B, 1)``, ``noise (B, P)``) towards the target critics at ``(s, a, 1)``: squared error (``mse``) or
    :func:`~qchunk.agents.losses.linex_loss` (``linex``), weighted by ``valid[:, -1]``. Returns the scalar loss
    and ``critic/noisy_critic_loss`` (and ``critic/exp_bias`` with ``linex``)."""
    obs, weights = batch["observations"], batch["valid"][:, -1]
    noisy = (1.0 - time) * noise + time * data
    target = nets.critic.apply({"params": target_critic_params}, obs, data)  # (K, B), t = 1
    q = nets.critic.apply({"params": critic_params}, obs, noisy, time)
    if config.mode == "mse":
        loss = jnp.mean(jnp.square(q - jax.lax.stop_gradient(target)) * weights[None, :])
        return loss, {"critic/noisy_critic_loss": loss}
    loss = linex_loss(q, target, weights, config.inv_temp, config.isd_clip)
    bias = jnp.mean(jnp.exp(q * config.inv_temp) - jnp.exp(target * config.inv_temp))
    return loss, {"critic/noisy_critic_loss": loss, "critic/exp_bias": bias}


def cgql_loss(params: Params, agent: CgqlAgent, batch: Batch, draws: CgqlDraws) -> tuple[Array, dict[str, Array]]:
    """``critic_loss (+ noisy_coef * noisy_critic_loss) + bc_flow_loss`` of one update for given ``draws``; the
    TD-target action is the guided policy's (:meth:`CgqlAgent.act` under the fixed parameters)."""
    config, nets = agent.config, agent.networks
    fixed = jax.lax.stop_gradient(params)
    next_actions = agent.act(fixed, batch["next_observations"][:, -1], draws.next_action)
    c_loss, terms = agent_critic_objective(agent, params["critic"], batch, next_actions)
    info = critic_info(c_loss, terms)
    data = critic_actions(batch["actions"], config.chunked)  # (B, P)
    loss = c_loss
    if config.mode != "simple":
        noisy, noisy_info = noisy_critic_objective(nets, config, params["critic"], agent.target_params["critic"],
                                                   batch, data, draws.noisy_time, draws.noisy_noise)
        info.update(noisy_info)
        loss = loss + config.noisy_coef * noisy
    bc_loss = bc_flow_loss(nets.flow, params["flow"], batch, data, config.action_horizon, agent.action_dim,
                           draws.bc_noise, draws.bc_time, config.bc_weighting)
    info["actor/bc_flow_loss"] = info["actor/loss"] = bc_loss
    return loss + bc_loss, info
