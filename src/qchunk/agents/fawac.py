"""Flow advantage-weighted actor-critic (FAWAC; AWAC with a flow BC policy, as the QAM paper runs it): the chunked
critic ensemble, a state value, and flow matching on the data chunks weighted by ``exp(inv_temp * advantage)``.

Networks (``params``): ``critic`` (K critics over (state, flattened chunk), the flow agents'), ``value`` (a state
value ``V(s)``, :class:`~qchunk.networks.StateValue`) and ``flow`` (the policy's velocity field).
``target_params``: ``critic`` (Polyak rate ``tau``).

One update (one gradient of the sum, one Adam; each term reaches only its network):

* critic: the h-step TD loss of :func:`~qchunk.agents.common.chunk_critic_objective` with the pessimistic target
  ``mean_k Q'_k - rho * std_k Q'_k`` at ``s_{t+h}`` and the flow policy's chunk there;
* value: ``mean_{k,b} valid[b, -1] * (Q'_k(s_b, a_b) - V(s_b))**2``, the target critics at the DATA chunk;
* actor: flow matching on the data chunks, each chunk weighted by
  ``w = min(exp(inv_temp * (mean_k Q_k(s, a) - V(s))), max_weight)`` (online critics and value, held fixed).

Acting and the TD-target action: one Euler solution (``flow_steps``) of the flow from ``N(0, I)``, clipped to
[-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp

from qchunk.agents.common import (
    Array,
    Batch,
    Params,
    ValueFlowAgent,
    agent_critic_objective,
    as_batch,
    bc_flow_loss,
    critic_info,
    draws_loss_fn,
    integrate_flow,
    normal,
    uniform,
)
from qchunk.agents.config import AgentConfig
from qchunk.agents.td import critic_actions


@dataclass(frozen=True)
class FawacAgentConfig(AgentConfig):
    """All settings of FAWAC (advantage-weighted flow matching, as the QAM paper runs it). The defaults are the
    reference implementation's (github.com/ColinQiyangLi/qam, its FAWAC agent, with the reproduction script's K=10
    and rho=0.5); ``inv_temp`` and the protocol's ``horizon``, ``discount`` and ``rho`` vary per domain
    (:mod:`qchunk.agents.presets`)."""

    inv_temp: float = 10.0
    """Inverse temperature of the advantage weights ``exp(inv_temp * (Q - V))`` (per domain: 0.8 or 6.4)."""
    max_weight: float = 100.0
    """Upper clip of the advantage weights (the reference's, after IQL's)."""
    flow_steps: int = 10
    """Euler steps T of the flow's integration from noise (u=0) to chunk (u=1)."""
    rho: float = 0.5
    """Pessimism of the TD target: ``mean_k Q'_k - rho * std_k Q'_k`` (the QAM paper: 0.5, 0 on humanoidmaze).
    Needs ``q_agg='mean'``."""
    num_critics: int = 10
    """Critic ensemble size K (the QAM protocol: 10)."""
    bc_weighting: Literal["step", "chunk"] = "chunk"
    """The flow loss's weighting of steps past an episode end (see
    :class:`~qchunk.agents.config.FlowAgentConfig`); ``chunk``, the QAM code's."""

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            *super()._checks(),
            (self.inv_temp >= 0.0, f"inv_temp must be >= 0, got {self.inv_temp}"),
            (self.max_weight > 0.0, f"max_weight must be > 0, got {self.max_weight}"),
            (self.flow_steps >= 1, f"flow_steps must be >= 1, got {self.flow_steps}"),
            (self.bc_weighting in ("step", "chunk"),
             f"bc_weighting must be 'step' or 'chunk', got {self.bc_weighting!r}"),
        ]


class FawacDraws(NamedTuple):
    """Every random number one FAWAC update uses (``B`` batch, ``P`` policy width)."""

    next_action: Array
    """``(B, P)`` the flow's start noise for the TD-target chunk at ``s_{t+h}``."""
    bc_noise: Array
    """``(B, P)`` the start ``x0`` of the flow-matching loss."""
    bc_time: Array
    """``(B, 1)`` the flow times ``u`` of the flow-matching loss."""


class FawacAgent(ValueFlowAgent):
    """Immutable state of a FAWAC agent; ``update`` and ``sample_actions`` are pure and jitted. Shapes and the batch
    contract are those of :class:`~qchunk.agents.flow_agent.FlowAgent` (``P = action_horizon * A``)."""

    config: FawacAgentConfig = flax.struct.field(pytree_node=False)
    """The resolved settings."""

    loss_fn = staticmethod(draws_loss_fn)
    loss_from_draws = staticmethod(lambda params, agent, batch, draws: fawac_loss(params, agent, batch, draws))

    @jax.jit
    def sample_actions(self, observations: Array, rng: Array) -> Array:
        """Actions to execute: ``(obs_dim,) -> (H, A)`` or ``(B, obs_dim) -> (B, H, A)``, in [-1, 1]: one sample of
        the flow policy. ``rng`` is a JAX key, used once."""
        obs, single = as_batch(observations)
        return self.as_chunks(self.act(self.params, obs, self.policy_noise(rng, obs.shape[0])), single)

    def policy_noise(self, rng: Array, batch: int) -> Array:
        """The random numbers one policy call uses for ``batch`` states: the flow's start noise ``(B, P)``."""
        return normal(rng, (batch, self.networks.flow.action_dim))

    def act(self, params: Params, obs: Array, noise: Array) -> Array:
        """The policy for given start noises ``noise (B, P)``: ``obs (B, D) -> (B, P)``, the flow's clipped Euler
        solution (no gradient use)."""
        return integrate_flow(self.networks.flow, params["flow"], obs, noise, self.config.flow_steps)

    def update_draws(self, rng: Array, batch: int) -> FawacDraws:
        """All random numbers of one update on ``batch`` states, drawn from ``rng`` (:class:`FawacDraws`)."""
        k_next, k_noise, k_time = jax.random.split(rng, 3)
        width = self.networks.flow.action_dim
        return FawacDraws(self.policy_noise(k_next, batch), normal(k_noise, (batch, width)),
                          uniform(k_time, (batch, 1)))


def fawac_loss(params: Params, agent: FawacAgent, batch: Batch, draws: FawacDraws) -> tuple[Array, dict[str, Array]]:
    """``critic_loss + value_loss + weighted flow loss`` of one update for given ``draws``; metrics ``critic/*``,
    ``value/loss``, ``actor/loss`` and ``actor/weight_mean``, ``actor/weight_max``."""
    config, nets = agent.config, agent.networks
    obs, valid = batch["observations"], batch["valid"][:, -1]
    data = critic_actions(batch["actions"], config.chunked)  # (B, P): flat chunk or first action
    fixed = jax.lax.stop_gradient(params)

    next_actions = agent.act(fixed, batch["next_observations"][:, -1], draws.next_action)
    c_loss, terms = agent_critic_objective(agent, params["critic"], batch, next_actions)

    target_qs = nets.critic.apply({"params": agent.target_params["critic"]}, obs, data)  # (K, B)
    v = nets.value.apply({"params": params["value"]}, obs)  # (B,)
    v_loss = jnp.mean(jnp.square(target_qs - v) * valid)  # target critic: not among the differentiated params

    q_data = jnp.mean(nets.critic.apply({"params": fixed["critic"]}, obs, data), axis=0)  # (B,)
    advantage = q_data - nets.value.apply({"params": fixed["value"]}, obs)
    weights = jnp.minimum(jnp.exp(advantage * config.inv_temp), config.max_weight)
    a_loss = bc_flow_loss(nets.flow, params["flow"], batch, data, config.action_horizon, agent.action_dim,
                          draws.bc_noise, draws.bc_time, config.bc_weighting, weights)
    info = critic_info(c_loss, terms)
    info.update({"value/loss": v_loss, "actor/loss": a_loss, "actor/weight_mean": jnp.mean(weights),
                 "actor/weight_max": jnp.max(weights)})
    return c_loss + v_loss + a_loss, info


__all__ = ["FawacAgent", "FawacAgentConfig", "FawacDraws", "fawac_loss"]
