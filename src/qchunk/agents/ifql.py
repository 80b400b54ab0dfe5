"""Implicit flow Q-learning (IFQL; the flow variant of IDQL, as the QAM paper runs it): an IQL critic and value
on chunks, a flow-matching BC policy, and acting by rejection sampling (the best of N flow samples).

Networks (``params``): ``critic`` (K critics over (state, flattened chunk), the flow agents'), ``value`` (a state
value ``V(s)``, :class:`~qchunk.networks.StateValue`) and ``flow`` (the BC velocity field). ``target_params``:
``critic`` (Polyak rate ``tau``); the value has no target copy.

One update (one gradient of the sum, one Adam; each term reaches only its network):

* value: expectile regression (:func:`~qchunk.agents.losses.expectile_loss`, ``kappa``) of ``V(s)`` onto
  ``mean_k Q'_k(s, a) - rho * std_k Q'_k(s, a)``, the target critics at the DATA chunk (no ``valid`` weight);
* critic: ``Q_k(s, a) -> R^h + gamma**h * mask * V(s_{t+h})`` (the value under the current parameters, held
  fixed), squared error weighted by ``valid[:, -1]``: no policy action in the backup;
* BC flow: flow matching on the data chunks (:func:`~qchunk.agents.common.bc_flow_loss`).

Acting: ``N = num_samples`` clipped Euler samples of the BC flow per state, the one with the highest
``select_agg`` (the authors': the minimum) of the online critics kept. The update draws no policy sample.
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
    as_batch,
    bc_flow_loss,
    critic_info,
    draws_loss_fn,
    integrate_flow,
    normal,
    uniform,
)
from qchunk.agents.config import AgentConfig
from qchunk.agents.losses import critic_loss, expectile_loss
from qchunk.agents.td import aggregate_ensemble, critic_actions, pessimistic_ensemble, td_target


@dataclass(frozen=True)
class IfqlAgentConfig(AgentConfig):
    """All settings of IFQL (implicit flow Q-learning, as the QAM paper runs it). The
    defaults are the reference implementation's (github.com/ColinQiyangLi/qam, its IFQL agent, with the
    reproduction script's K=10 and rho=0.5); ``kappa`` and the protocol's ``horizon``, ``discount`` and ``rho`` vary
    per domain (:mod:`qchunk.agents.presets`). ``q_agg`` is unused (the value's target is ``mean - rho * std``)."""

    kappa: float = 0.9
    """The expectile of the value regression: ``V(s)`` tends to the ``kappa``-expectile of the pessimistic target
    critic over the data's chunks (0.5: their mean; towards 1: the best in the data). Per domain (0.7 .. 0.95)."""
    num_samples: int = 32
    """N, BC-flow samples per state when acting; the best under :attr:`select_agg` of the online critics is kept."""
    select_agg: Literal["min", "mean"] = "min"
    """How the K online critics score the N candidates: ``min`` (the reference code) or ``mean``."""
    flow_steps: int = 10
    """Euler steps T of the BC flow's integration from noise (u=0) to chunk (u=1)."""
    rho: float = 0.5
    """Pessimism of the value's target: ``mean_k Q'_k - rho * std_k Q'_k`` (the QAM paper: 0.5, 0 on
    humanoidmaze)."""
    num_critics: int = 10
    """Critic ensemble size K (the QAM protocol: 10)."""
    bc_weighting: Literal["step", "chunk"] = "chunk"
    """The BC flow loss's weighting of steps past an episode end (see
    :class:`~qchunk.agents.config.FlowAgentConfig`); ``chunk``, the QAM code's."""

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            *super()._checks(),
            (0.0 < self.kappa < 1.0, f"kappa must be in (0, 1), got {self.kappa}"),
            (self.num_samples >= 1, f"num_samples must be >= 1, got {self.num_samples}"),
            (self.select_agg in ("min", "mean"), f"select_agg must be 'min' or 'mean', got {self.select_agg!r}"),
            (self.flow_steps >= 1, f"flow_steps must be >= 1, got {self.flow_steps}"),
            (self.bc_weighting in ("step", "chunk"),
             f"bc_weighting must be 'step' or 'chunk', got {self.bc_weighting!r}"),
        ]


class IfqlDraws(NamedTuple):
    """Every random number one IFQL update uses (``B`` batch, ``P`` policy width)."""

    bc_noise: Array
    """``(B, P)`` the start ``x0`` of the flow-matching loss."""
    bc_time: Array
    """``(B, 1)`` the flow times ``u`` of the flow-matching loss."""


class IfqlAgent(ValueFlowAgent):
    """Immutable state of an IFQL agent; ``update`` and ``sample_actions`` are pure and jitted. Shapes and the batch
    contract are those of :class:`~qchunk.agents.flow_agent.FlowAgent` (``P = action_horizon * A``)."""

    config: IfqlAgentConfig = flax.struct.field(pytree_node=False)
    """The resolved settings."""

    loss_fn = staticmethod(draws_loss_fn)
    loss_from_draws = staticmethod(lambda params, agent, batch, draws: ifql_loss(params, agent, batch, draws))

    @jax.jit
    def sample_actions(self, observations: Array, rng: Array) -> Array:
        """Actions to execute: ``(obs_dim,) -> (H, A)`` or ``(B, obs_dim) -> (B, H, A)``, in [-1, 1]: the best of
        ``num_samples`` BC-flow samples. ``rng`` is a JAX key, used once."""
        obs, single = as_batch(observations)
        return self.as_chunks(self.act(self.params, obs, self.policy_noise(rng, obs.shape[0])), single)

    def policy_noise(self, rng: Array, batch: int) -> Array:
        """The random numbers one policy call uses for ``batch`` states: ``normal(rng, (B, N, P))``, the start
        noises of the ``N = num_samples`` candidates."""
        return normal(rng, (batch, self.config.num_samples, self.networks.flow.action_dim))

    def act(self, params: Params, obs: Array, noise: Array) -> Array:
        """The policy for given start noises ``noise (B, N, P)``: ``obs (B, D) -> (B, P)`` in [-1, 1], the best
        clipped Euler sample of the BC flow under the ``select_agg`` of the online critics (no gradient use)."""
        nets, obs_b = self.networks, obs[:, None, :]  # one state projection serves its N candidates
        candidates = integrate_flow(nets.flow, params["flow"], obs_b, noise, self.config.flow_steps)
        scores = aggregate_ensemble(nets.critic.apply({"params": params["critic"]}, obs_b, candidates),
                                    self.config.select_agg)  # (B, N)
        best = jnp.argmax(scores, axis=-1)
        return jnp.take_along_axis(candidates, best[:, None, None], axis=1)[:, 0]

    def update_draws(self, rng: Array, batch: int) -> IfqlDraws:
        """All random numbers of one update on ``batch`` states, drawn from ``rng`` (:class:`IfqlDraws`)."""
        k_noise, k_time = jax.random.split(rng)
        return IfqlDraws(normal(k_noise, (batch, self.networks.flow.action_dim)), uniform(k_time, (batch, 1)))


def ifql_loss(params: Params, agent: IfqlAgent, batch: Batch, draws: IfqlDraws) -> tuple[Array, dict[str, Array]]:
    """``value_loss + critic_loss + bc_flow_loss`` of one update for given ``draws``; metrics ``value/*``,
    ``critic/*`` (with ``critic/target_max``, ``critic/target_min``) and ``actor/bc_flow_loss``."""
    config, nets = agent.config, agent.networks
    obs = batch["observations"]
    data = critic_actions(batch["actions"], config.chunked)  # (B, P): flat chunk or first action

    target_qs = nets.critic.apply({"params": agent.target_params["critic"]}, obs, data)  # (K, B)
    v = nets.value.apply({"params": params["value"]}, obs)  # (B,)
    v_loss = expectile_loss(jax.lax.stop_gradient(pessimistic_ensemble(target_qs, config.rho)) - v, config.kappa)

    next_v = nets.value.apply({"params": jax.lax.stop_gradient(params["value"])}, batch["next_observations"][:, -1])
    target = td_target(batch["rewards"], batch["masks"], next_v, config.discount)  # (B,)
    q = nets.critic.apply({"params": params["critic"]}, obs, data)  # (K, B)
    c_loss = critic_loss(q, target, batch["valid"][:, -1])

    bc_loss = bc_flow_loss(nets.flow, params["flow"], batch, data, config.action_horizon, agent.action_dim,
                           draws.bc_noise, draws.bc_time, config.bc_weighting)
    info = critic_info(c_loss, {"q": q, "target": target, "next_q": next_v})
    info.update({"critic/target_max": jnp.max(target), "critic/target_min": jnp.min(target),
                 "value/loss": v_loss, "value/v_mean": jnp.mean(v), "value/v_max": jnp.max(v),
                 "value/v_min": jnp.min(v), "actor/bc_flow_loss": bc_loss, "actor/loss": bc_loss})
    return v_loss + c_loss + bc_loss, info


__all__ = ["IfqlAgent", "IfqlAgentConfig", "IfqlDraws", "ifql_loss"]
