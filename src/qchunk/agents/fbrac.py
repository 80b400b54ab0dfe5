"""FBRAC (flow behaviour-regularised actor-critic; the flow BRAC baseline of Park et al. 2025) on chunks, as the
QAM paper runs it (the QAM release's ``agents/fbrac.py``): one flow-matching BC policy over flattened chunks,
trained on its BC loss plus ``-Q / alpha`` of its own Euler samples, differentiated through every Euler step.

Networks (``params``): ``critic`` (K critics over (state, flattened chunk), the shared ensemble) and ``flow``
(the velocity field). ``target_params``: ``critic`` (Polyak average, rate ``tau``).

One update (one gradient of the sum, plain Adam):

* critic: the h-step TD loss of :func:`~qchunk.agents.common.chunk_critic_objective` with the pessimistic target
  ``mean_k Q'_k - rho * std_k Q'_k`` at ``s_{t+h}`` and the policy's action there (:meth:`FBracAgent.act`);
* flow: ``bc_flow_loss + (-mean_b Q(s_b, a_b)) / alpha`` with ``a_b`` the clipped Euler sample of the flow
  from fresh noise (:func:`~qchunk.agents.common.flow_policy_q`; ``Q`` the ensemble mean of the online critics,
  held fixed) and the flow-matching loss of :func:`~qchunk.agents.common.bc_flow_loss`.

Acting and the TD-target action: the best of ``num_samples`` clipped Euler samples of the flow under the
ensemble-mean online Q (the paper: N=1, one sample).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

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
    bc_flow_loss,
    critic_and_flow,
    critic_info,
    draws_loss_fn,
    flow_policy_q,
    init_module,
    integrate_flow,
    normal,
    seed_keys,
    uniform,
)
from qchunk.agents.config import AgentConfig
from qchunk.agents.losses import q_maximisation_loss
from qchunk.agents.td import critic_actions
from qchunk.networks import CriticEnsemble, FlowVelocity


@dataclass(frozen=True)
class FBracAgentConfig(AgentConfig):
    """All settings of FBRAC as the QAM paper runs it. Every default is the QAM release's (``agents/fbrac.py``;
    checked update by update in ``tests/fixtures/fidelity``); ``alpha`` varies per domain
    (:data:`~qchunk.agents.presets.QAM_METHOD_SETTINGS`)."""

    agent: str = "fbrac"
    num_critics: int = 10
    """Critic ensemble size K (the QAM protocol's 10)."""
    rho: float = 0.5
    """Pessimism of the TD target: ``mean_k Q'_k - rho * std_k Q'_k`` (0 on humanoidmaze)."""
    alpha: float = 100.0
    """BC strength: the flow's loss is ``bc_flow_loss - mean Q / alpha`` (per domain, 0.03 .. 100)."""
    flow_steps: int = 10
    """Euler steps T of the flow, in acting and in the differentiated samples of the policy objective."""
    num_samples: int = 1
    """N flow samples per state for acting and the TD target, the best under the ensemble-mean online Q kept."""
    bc_weighting: Literal["step", "chunk"] = "chunk"
    """How the flow-matching loss weights steps past an episode end (:func:`~qchunk.agents.losses.flow_matching_loss`):
    ``chunk``, the QAM code's (a chunk crossing an episode end dropped), or ``step``, the Q-chunking code's."""

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            *super()._checks(),
            (self.alpha > 0.0, f"alpha must be > 0 (the Q term is divided by it), got {self.alpha}"),
            (self.flow_steps >= 1, f"flow_steps must be >= 1, got {self.flow_steps}"),
            (self.num_samples >= 1, f"num_samples must be >= 1, got {self.num_samples}"),
            (self.bc_weighting in ("step", "chunk"),
             f"bc_weighting must be 'step' or 'chunk', got {self.bc_weighting!r}"),
        ]


class FBracNetworks(NamedTuple):
    """The (stateless) flax module definitions of an FBRAC agent."""

    critic: CriticEnsemble
    """K critics over (state, policy output)."""
    flow: FlowVelocity
    """The flow policy's velocity field."""


@functools.lru_cache(maxsize=64)
def build_fbrac_networks(config: FBracAgentConfig, action_dim: int) -> FBracNetworks:
    """Module definitions for ``config`` with per-step action dimension ``action_dim``."""
    return FBracNetworks(*critic_and_flow(config, action_dim))


class FBracDraws(NamedTuple):
    """Every random number one FBRAC update uses (``B`` batch, ``N`` samples, ``P`` policy width), in the release's
    call order."""

    next_action: Array
    """``(B, N, P)`` the TD-target policy's start noises at ``s_{t+h}``."""
    bc_noise: Array
    """``(B, P)`` the start ``x0`` of the flow-matching loss."""
    bc_time: Array
    """``(B, 1)`` its flow times ``u``."""
    actor_noise: Array
    """``(B, P)`` the start noises of the differentiated policy samples."""


class FBracAgent(AgentBase):
    """Immutable state of an FBRAC agent; ``update`` and ``sample_actions`` are pure and jitted. ``B`` batch,
    ``h = config.horizon``, ``A`` action dimension, ``P = action_horizon * A``."""

    config: FBracAgentConfig = flax.struct.field(pytree_node=False)
    """The resolved settings."""

    loss_fn = staticmethod(draws_loss_fn)
    loss_from_draws = staticmethod(lambda params, agent, batch, draws: fbrac_loss(params, agent, batch, draws))

    @classmethod
    def create(cls, config: FBracAgentConfig, observation_dim: int, action_dim: int, seed: int = 0) -> FBracAgent:
        """Initialise critic and flow (independently), the target critic (a copy) and Adam from ``seed``."""
        nets = build_fbrac_networks(config, int(action_dim))
        rng, k_critic, k_flow = seed_keys(seed, 2)
        obs, act, time = (1, int(observation_dim)), (1, config.policy_dim(int(action_dim))), (1, 1)
        params = {"critic": init_module(nets.critic, k_critic, (obs, act)),
                  "flow": init_module(nets.flow, k_flow, (obs, act, time))}
        return cls.from_params(config, observation_dim, action_dim, params, {"critic": params["critic"]}, rng)

    @property
    def networks(self) -> FBracNetworks:
        """The flax module definitions."""
        return build_fbrac_networks(self.config, self.action_dim)

    @jax.jit
    def sample_actions(self, observations: Array, rng: Array) -> Array:
        """Actions to execute: ``(obs_dim,) -> (H, A)`` or ``(B, obs_dim) -> (B, H, A)``, in [-1, 1]: the best of
        ``num_samples`` flow samples. ``rng`` is a JAX key, used once."""
        obs, single = as_batch(observations)
        return self.as_chunks(self.act(self.params, obs, self.policy_noise(rng, obs.shape[0])), single)

    def policy_noise(self, rng: Array, batch: int) -> Array:
        """The start noises ``(B, N, P)`` of one policy call for ``batch`` states."""
        return normal(rng, (batch, self.config.num_samples, self.config.policy_dim(self.action_dim)))

    def act(self, params: Params, obs: Array, noise: Array) -> Array:
        """The policy for given start noises: ``obs (B, D)``, ``noise (B, N, P)`` -> ``(B, P)`` in [-1, 1], the
        clipped Euler sample with the highest ensemble-mean Q of the critics ``params['critic']`` (no gradient use)."""
        nets, steps = self.networks, self.config.flow_steps
        if noise.shape[1] == 1:  # one sample: nothing to choose
            return integrate_flow(nets.flow, params["flow"], obs, noise[:, 0], steps)
        obs_b = obs[:, None, :]  # one state projection serves its N candidates
        candidates = integrate_flow(nets.flow, params["flow"], obs_b, noise, steps)  # (B, N, P)
        scores = jnp.mean(nets.critic.apply({"params": params["critic"]}, obs_b, candidates), axis=0)  # (B, N)
        best = jnp.argmax(scores, axis=-1)
        return jnp.take_along_axis(candidates, best[:, None, None], axis=1)[:, 0]

    def update_draws(self, rng: Array, batch: int) -> FBracDraws:
        """All random numbers of one update on ``batch`` states, drawn from ``rng``."""
        keys = jax.random.split(rng, 4)
        width = self.config.policy_dim(self.action_dim)
        return FBracDraws(next_action=self.policy_noise(keys[0], batch), bc_noise=normal(keys[1], (batch, width)),
                          bc_time=uniform(keys[2], (batch, 1)), actor_noise=normal(keys[3], (batch, width)))


def fbrac_loss(params: Params, agent: FBracAgent, batch: Batch, draws: FBracDraws) -> tuple[Array, dict[str, Any]]:
    """``critic_loss + bc_flow_loss - mean Q / alpha`` of one update for given ``draws`` (the critic term reaches the
    critic only, the others the flow only)."""
    config, nets = agent.config, agent.networks
    fixed = jax.lax.stop_gradient(params)
    next_actions = agent.act(fixed, batch["next_observations"][:, -1], draws.next_action)
    c_loss, terms = agent_critic_objective(agent, params["critic"], batch, next_actions)
    info = critic_info(c_loss, terms)
    data = critic_actions(batch["actions"], config.chunked)  # (B, P): flat chunk or first action
    bc_loss = bc_flow_loss(nets.flow, params["flow"], batch, data, config.action_horizon, agent.action_dim,
                           draws.bc_noise, draws.bc_time, config.bc_weighting)
    q = flow_policy_q(nets.flow, params["flow"], nets.critic, params["critic"], batch["observations"],
                      draws.actor_noise, config.flow_steps)
    q_loss = q_maximisation_loss(q)
    actor_loss = bc_loss + q_loss / config.alpha
    info.update({"actor/loss": actor_loss, "actor/bc_flow_loss": bc_loss, "actor/q_loss": q_loss,
                 "actor/q_mean": jnp.mean(q)})
    return c_loss + actor_loss, info


__all__ = ["FBracAgent", "FBracAgentConfig", "FBracDraws", "FBracNetworks", "build_fbrac_networks", "fbrac_loss"]
