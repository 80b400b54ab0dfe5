"""The tanh-Gaussian edit policy on top of a flow's chunk, and FEdit (``fedit``), the flow + edit agent.

**The edit policy** (shared with QAM-E, which edits the fine-tuned flow's chunk instead of the BC flow's):
a tanh-squashed diagonal Gaussian ``e ~ pi_e(. | s, b)`` over the flattened chunk (``P = h*A`` numbers),
conditioned on the state ``s`` and a base chunk ``b`` (its first layer reads both, as if concatenated).
The executed chunk is ``a = clip(b + edit_scale * e, -1, 1)``: every number moves by less than
``edit_scale``. Its log-probability is that of the edit ``e`` by the tanh change of variables
(:func:`qchunk.networks.tanh_gaussian_sample`); the constant ``-P * log(edit_scale)`` of the scaling and
the clip are not part of it, as in the QAM release, so the temperature tunes the entropy of ``e``.
The actor and temperature losses are the SAC family's (:func:`qchunk.agents.losses.sac_actor_loss`,
:func:`qchunk.agents.losses.temperature_loss`).

**FEdit** (EXPO's flow + edit policy, Dong et al. 2025, as the QAM paper runs it; Li & Levine 2026):

* a BC flow over chunks trained by flow matching (:func:`qchunk.agents.common.bc_flow_objective`);
* the base chunk ``b`` is the BC flow's clipped Euler solution from fresh noise, computed without
  gradient; the edit policy maximises ``mean_k Q_k(s, a) - temperature * log pi_e(e | s, b)``;
* a K=10 critic ensemble over (state, chunk) (the flow agents' networks) with the h-step pessimistic
  target ``R + gamma**h * mask * (mean_k Q'_k - rho * std_k Q'_k)(s_{t+h}, a')``, ``a'`` the agent's own
  chunk at ``s_{t+h}`` (:func:`qchunk.agents.td.pessimistic_ensemble`);
* acting and the TD target: ``num_samples`` edited chunks, the highest ensemble-mean online Q kept
  (N = 1 in the QAM runs: the edited chunk itself); evaluation acts the same way.

Losses (one step, one gradient, one Adam, as the other agents; each term reaches only its own network):
``critic + bc_flow + edit_actor + temperature``.
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
    Params,
    as_batch,
    bc_flow_objective,
    chunk_critic_objective,
    critic_info,
    init_module,
    integrate_flow,
    make_optimizer,
    normal,
)
from qchunk.agents.config import FEditAgentConfig
from qchunk.agents.losses import sac_actor_loss, temperature_loss
from qchunk.agents.td import critic_actions
from qchunk.networks import CriticEnsemble, FlowVelocity, TanhGaussianPolicy, tanh_gaussian_sample

__all__ = [
    "FEditAgent",
    "FEditNetworks",
    "best_by_q",
    "build_edit_networks",
    "edit_actor_objective",
    "edit_chunks",
    "edit_policy",
    "fedit_actions",
    "fedit_loss",
]


# ---------------------------------------------------------------------- the edit policy (shared)
def edit_policy(hidden_dims: tuple[int, ...], width: int, layer_norm: bool = False) -> TanhGaussianPolicy:
    """The edit policy's network: a tanh-Gaussian over ``width = P`` numbers with a GELU trunk (the QAM
    release's actor MLP); call it as ``policy.apply(variables, observations, base_chunks)``."""
    return TanhGaussianPolicy(tuple(hidden_dims), width, layer_norm, activation=nn.gelu)


def edit_chunks(policy: TanhGaussianPolicy, policy_params: Params, observations: Array, base: Array,
                key: Array, edit_scale: float) -> tuple[Array, Array]:
    """Edited chunks ``clip(base + edit_scale * e, -1, 1)`` with ``e ~ pi_e(. | s, base)`` reparameterised,
    and ``log pi_e(e | s, base)``.

    Args:
        policy: the edit policy (:func:`edit_policy`).
        policy_params: its parameters (gradients flow through the sample).
        observations: ``(..._s, obs_dim)``, broadcastable against ``base`` (``(B, 1, D)`` for ``(B, N, P)``).
        base: ``(..., P)`` base chunks in [-1, 1] (treated as given: pass them without gradient).
        key: JAX key of the Gaussian noise.
        edit_scale: the largest change per number.
    Returns:
        ``actions (..., P)`` in [-1, 1] and ``log_prob (...)``, the sum over ``P`` of the tanh-Gaussian
        log-density of the edit ``e`` (not of the scaled, clipped chunk).
    """
    mean, log_std = policy.apply({"params": policy_params}, observations, base)
    edit, log_probs = tanh_gaussian_sample(mean, log_std, key)
    return jnp.clip(base + edit_scale * edit, -1.0, 1.0), jnp.sum(log_probs, axis=-1)


def edit_actor_objective(policy: TanhGaussianPolicy, policy_params: Params, critic: CriticEnsemble,
                         critic_params: Params, observations: Array, base: Array, key: Array, edit_scale: float,
                         temperature: Array) -> tuple[Array, dict[str, Array]]:
    """The edit policy's SAC loss ``mean_b [temperature * log pi_e(e_b | s_b, base_b) - mean_k Q_k(s_b, a_b)]``
    with ``a_b`` the edited chunk of :func:`edit_chunks`; the critic and the temperature are held fixed.

    Args:
        observations: ``(B, obs_dim)``; ``base``: ``(B, P)`` base chunks (no gradient).
        critic_params: the online critic's parameters (stop-gradient applied here).
        temperature: scalar (stop-gradient applied by :func:`~qchunk.agents.losses.sac_actor_loss`).
    Returns:
        ``(loss, terms)`` with ``terms = {"log_prob": (B,), "q": (B,), "actions": (B, P)}``.
    """
    actions, log_prob = edit_chunks(policy, policy_params, observations, jax.lax.stop_gradient(base), key,
                                    edit_scale)
    qs = critic.apply({"params": jax.lax.stop_gradient(critic_params)}, observations, actions)  # (K, B)
    q = jnp.mean(qs, axis=0)
    return sac_actor_loss(log_prob, q, temperature), {"log_prob": log_prob, "q": q, "actions": actions}


def best_by_q(critic: CriticEnsemble, critic_params: Params, observations: Array, candidates: Array) -> Array:
    """The candidate chunk with the highest ensemble-mean online Q per state.

    ``observations (B, D)``, ``candidates (B, N, P)`` -> ``(B, P)``; with ``N = 1`` the candidate itself
    (no critic call)."""
    if candidates.shape[1] == 1:
        return candidates[:, 0]
    q = jnp.mean(critic.apply({"params": critic_params}, observations[:, None, :], candidates), axis=0)
    best = jnp.argmax(q, axis=-1)
    return jnp.take_along_axis(candidates, best[:, None, None], axis=1)[:, 0]


# ---------------------------------------------------------------------- FEdit
class FEditNetworks(NamedTuple):
    """The (stateless) flax module definitions of FEdit."""

    critic: CriticEnsemble
    """K critics over (state, chunk)."""
    flow: FlowVelocity
    """The BC flow velocity field over chunks."""
    edit: TanhGaussianPolicy
    """The edit policy over chunks, conditioned on (state, base chunk)."""


@functools.lru_cache(maxsize=64)
def build_edit_networks(config: FEditAgentConfig, action_dim: int) -> FEditNetworks:
    """Module definitions for ``config`` with per-step action dimension ``action_dim``."""
    width = config.policy_dim(action_dim)
    critic = CriticEnsemble(config.critic_hidden_dims, config.num_critics, config.critic_layer_norm)
    flow = FlowVelocity(config.actor_hidden_dims, width, config.actor_layer_norm)
    return FEditNetworks(critic, flow, edit_policy(config.actor_hidden_dims, width, config.actor_layer_norm))


class FEditAgent(AgentBase):
    """Immutable state of FEdit; ``update`` and ``sample_actions`` are pure and jitted.

    Shapes and the batch contract are those of :class:`~qchunk.agents.flow_agent.FlowAgent`:
    ``B`` batch, ``h = config.horizon``, ``A`` action dimension, ``H = action_horizon``, ``P = H * A``.
    ``params`` holds ``{"critic", "flow", "edit", "log_temperature"}``; ``target_params`` ``{"critic"}``.
    """

    config: FEditAgentConfig = flax.struct.field(pytree_node=False)
    """The resolved settings."""

    loss_fn = staticmethod(lambda params, agent, batch, key: fedit_loss(params, agent, batch, key))

    @classmethod
    def create(cls, config: FEditAgentConfig, observation_dim: int, action_dim: int, seed: int = 0) -> FEditAgent:
        """Initialise networks (target critic = critic), the temperature and Adam from integer ``seed``."""
        nets = build_edit_networks(config, int(action_dim))
        rng = jax.random.PRNGKey(int(seed) % 2**32)
        rng, k_critic, k_flow, k_edit = jax.random.split(rng, 4)
        obs, act = (1, int(observation_dim)), (1, config.policy_dim(int(action_dim)))
        params = {
            "critic": init_module(nets.critic, k_critic, (obs, act)),
            "flow": init_module(nets.flow, k_flow, (obs, act, (1, 1))),
            "edit": init_module(nets.edit, k_edit, (obs, act)),
            "log_temperature": jnp.asarray(np.log(config.init_temperature), jnp.float32),
        }
        return cls(params=params, target_params={"critic": params["critic"]},
                   opt_state=make_optimizer(config.lr).init(params), rng=rng, step=jnp.zeros((), jnp.int32),
                   config=config, observation_dim=int(observation_dim), action_dim=int(action_dim))

    @property
    def networks(self) -> FEditNetworks:
        """The flax module definitions."""
        return build_edit_networks(self.config, self.action_dim)

    @property
    def temperature(self) -> Array:
        """The current entropy temperature ``exp(log_temperature)``."""
        return jnp.exp(self.params["log_temperature"])

    @jax.jit
    def sample_actions(self, observations: Array, rng: Array) -> Array:
        """Edited chunks to execute: ``(obs_dim,) -> (H, A)`` or ``(B, obs_dim) -> (B, H, A)``, in [-1, 1].

        ``rng`` splits into the flow noise and the edit noise (see :func:`fedit_actions`)."""
        obs, single = as_batch(observations)
        actions = fedit_actions(self.networks, self.config, self.params, obs, rng)
        actions = actions.reshape(obs.shape[0], self.action_horizon, self.action_dim)
        return actions[0] if single else actions

    def eval_actions(self, observations: Array, rng: Array) -> Array:
        """Evaluation actions: the same stochastic policy as :meth:`sample_actions` (as the QAM release)."""
        return self.sample_actions(observations, rng)


def fedit_actions(nets: FEditNetworks, config: FEditAgentConfig, params: Params, obs: Array, rng: Array) -> Array:
    """FEdit's policy for ``obs (B, D)``: ``(B, P)`` in [-1, 1] (no gradient use).

    ``rng`` splits into ``(k_noise, k_edit)``: ``N = num_samples`` base chunks are the BC flow's clipped
    Euler solutions from ``normal(k_noise, (B, N, P))``, each is edited with the noise of ``k_edit``
    (:func:`edit_chunks`), and :func:`best_by_q` keeps one."""
    k_noise, k_edit = jax.random.split(rng)
    obs_b = obs[:, None, :]
    noise = normal(k_noise, (obs.shape[0], config.num_samples, nets.flow.action_dim))
    base = integrate_flow(nets.flow, params["flow"], obs_b, noise, config.flow_steps)
    candidates, _ = edit_chunks(nets.edit, params["edit"], obs_b, base, k_edit, config.edit_scale)
    return best_by_q(nets.critic, params["critic"], obs, candidates)


class FEditKeys(NamedTuple):
    """The keys one FEdit update draws from (split from the agent's key in this order)."""

    next_action: Array
    """The agent's chunk at ``s_{t+h}`` for the TD target."""
    bc_noise: Array
    """Noise ``x0`` of the flow-matching loss."""
    bc_time: Array
    """Flow times ``u`` of the flow-matching loss."""
    base_noise: Array
    """Noise of the base chunks the edit policy is trained on."""
    edit: Array
    """Noise of the edit policy's reparameterised sample."""


def fedit_loss(params: Params, agent: FEditAgent, batch: Batch, rng: Array) -> tuple[Array, dict[str, Array]]:
    """Critic + BC flow + edit actor + temperature loss of one update (see the module docstring)."""
    config, nets = agent.config, agent.networks
    keys = FEditKeys(*jax.random.split(rng, 5))
    fixed = jax.lax.stop_gradient(params)
    temperature = jnp.exp(fixed["log_temperature"])
    obs = batch["observations"]
    data = critic_actions(batch["actions"], config.chunked)  # (B, P)

    next_actions = fedit_actions(nets, config, fixed, batch["next_observations"][:, -1], keys.next_action)
    c_loss, terms = chunk_critic_objective(
        nets.critic, params["critic"], agent.target_params["critic"], batch, next_actions,
        discount=config.discount, q_agg=config.q_agg, chunked=config.chunked, rho=config.rho)
    info = critic_info(c_loss, terms)

    bc_loss = bc_flow_objective(nets.flow, params["flow"], batch, data, config.action_horizon, agent.action_dim,
                                keys.bc_noise, keys.bc_time)
    base = integrate_flow(nets.flow, fixed["flow"], obs, normal(keys.base_noise, data.shape), config.flow_steps)
    a_loss, actor = edit_actor_objective(nets.edit, params["edit"], nets.critic, fixed["critic"], obs, base,
                                         keys.edit, config.edit_scale, temperature)
    t_loss = temperature_loss(params["log_temperature"], jax.lax.stop_gradient(actor["log_prob"]),
                              config.target_entropy(agent.action_dim))
    info.update({
        "actor/bc_flow_loss": bc_loss,
        "actor/loss": a_loss,
        "actor/q_mean": jnp.mean(actor["q"]),
        "actor/entropy": -jnp.mean(actor["log_prob"]),
        "actor/edit_abs_mean": jnp.mean(jnp.abs(actor["actions"] - base)),
        "temperature/loss": t_loss,
        "temperature/value": temperature,
    })
    return c_loss + bc_loss + a_loss + t_loss, info
