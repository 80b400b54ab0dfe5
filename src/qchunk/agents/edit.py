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
from collections.abc import Callable
from typing import Any, NamedTuple

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
from qchunk.agents.config import FEditAgentConfig
from qchunk.agents.losses import sac_actor_loss
from qchunk.agents.td import critic_actions
from qchunk.networks import CriticEnsemble, FlowVelocity, TanhGaussianPolicy, tanh_gaussian_from_noise

__all__ = [
    "EditNoise",
    "FEditAgent",
    "FEditDraws",
    "FEditNetworks",
    "best_by_q",
    "best_edited_chunk",
    "build_edit_networks",
    "edit_actor_objective",
    "edit_chunks",
    "edit_noise",
    "edit_policy",
    "edit_temperature_objective",
    "fedit_actions",
    "fedit_loss",
]


# ---------------------------------------------------------------------- the edit policy (shared)
def edit_policy(hidden_dims: tuple[int, ...], width: int, layer_norm: bool = False) -> TanhGaussianPolicy:
    """The edit policy's network: a tanh-Gaussian over ``width = P`` numbers with a GELU trunk (the QAM
    release's actor MLP); call it as ``policy.apply(variables, observations, base_chunks)``."""
    return TanhGaussianPolicy(tuple(hidden_dims), width, layer_norm, activation=nn.gelu)


def edit_chunks(policy: TanhGaussianPolicy, policy_params: Params, observations: Array, base: Array,
                eps: Array, edit_scale: float) -> tuple[Array, Array]:
    """Edited chunks ``clip(base + edit_scale * e, -1, 1)`` with ``e ~ pi_e(. | s, base)`` reparameterised,
    and ``log pi_e(e | s, base)``.

    Args:
        policy: the edit policy (:func:`edit_policy`).
        policy_params: its parameters (gradients flow through the sample).
        observations: ``(..._s, obs_dim)``, broadcastable against ``base`` (``(B, 1, D)`` for ``(B, N, P)``).
        base: ``(..., P)`` base chunks in [-1, 1] (treated as given: pass them without gradient).
        eps: ``(..., P)`` the standard normal noise of the reparameterised sample.
        edit_scale: the largest change per number.
    Returns:
        ``actions (..., P)`` in [-1, 1] and ``log_prob (...)``, the sum over ``P`` of the tanh-Gaussian
        log-density of the edit ``e`` (not of the scaled, clipped chunk).
    """
    mean, log_std = policy.apply({"params": policy_params}, observations, base)
    edit, log_probs = tanh_gaussian_from_noise(mean, log_std, eps)
    return jnp.clip(base + edit_scale * edit, -1.0, 1.0), jnp.sum(log_probs, axis=-1)


def edit_actor_objective(policy: TanhGaussianPolicy, policy_params: Params, critic: CriticEnsemble,
                         critic_params: Params, observations: Array, base: Array, eps: Array, edit_scale: float,
                         temperature: Array) -> tuple[Array, dict[str, Array]]:
    """The edit policy's SAC loss ``mean_b [temperature * log pi_e(e_b | s_b, base_b) - mean_k Q_k(s_b, a_b)]``
    with ``a_b`` the edited chunk of :func:`edit_chunks`; the critic and the temperature are held fixed.

    Args:
        observations: ``(B, obs_dim)``; ``base``: ``(B, P)`` base chunks (no gradient); ``eps``: ``(B, P)`` the
            edit's noise.
        critic_params: the online critic's parameters (stop-gradient applied here).
        temperature: scalar (stop-gradient applied by :func:`~qchunk.agents.losses.sac_actor_loss`).
    Returns:
        ``(loss, terms)`` with ``terms = {"log_prob": (B,), "q": (B,), "actions": (B, P)}``.
    """
    actions, log_prob = edit_chunks(policy, policy_params, observations, jax.lax.stop_gradient(base), eps,
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


class EditNoise(NamedTuple):
    """The random numbers of one call of an edit agent's policy (:func:`best_edited_chunk`)."""

    base: Array
    """``(B, N, P)`` the start noises of the ``N`` base chunks."""
    edit: Array
    """``(B, N, P)`` the standard normal noises of their edits."""


def edit_noise(rng: Array, batch: int, num_samples: int, width: int) -> EditNoise:
    """:class:`EditNoise` from ``rng``, split into ``(k_noise, k_edit)``."""
    k_noise, k_edit = jax.random.split(rng)
    shape = (batch, num_samples, width)
    return EditNoise(normal(k_noise, shape), jax.random.normal(k_edit, shape, jnp.float32))


def best_edited_chunk(nets: Any, params: Params, obs: Array, noise: EditNoise, edit_scale: float,
                      base_chunks: Callable[[Array, Array], Array]) -> Array:
    """An edit agent's policy for ``obs (B, D)``: ``(B, P)`` in [-1, 1] (no gradient use; FEdit, QAM-E).

    ``N`` base chunks ``base_chunks(obs (B, 1, D), noise.base (B, N, P))`` (a flow's clipped Euler solutions),
    each edited with ``noise.edit`` (:func:`edit_chunks`), and :func:`best_by_q` keeps one. ``nets`` has
    ``critic``, ``flow`` and ``edit``; ``params`` ``critic`` and ``edit``."""
    obs_b = obs[:, None, :]
    base = base_chunks(obs_b, noise.base)
    candidates, _ = edit_chunks(nets.edit, params["edit"], obs_b, base, noise.edit, edit_scale)
    return best_by_q(nets.critic, params["critic"], obs, candidates)


def edit_temperature_objective(nets: Any, params: Params, fixed: Params, obs: Array, base: Array, eps: Array,
                               edit_scale: float, target_entropy: float) -> tuple[Array, Array, dict[str, Array]]:
    """The edit policy's loss (:func:`edit_actor_objective` on ``base (B, P)`` with the noise ``eps (B, P)``, the
    fixed online critics and temperature) and the temperature's, towards ``target_entropy`` (FEdit, QAM-E).

    ``params`` (differentiated) and ``fixed`` (without gradient) hold ``edit``, ``critic`` and
    ``log_temperature``. Returns ``(edit_loss, temperature_loss, metrics)`` with ``actor/q_mean``,
    ``actor/entropy``, ``actor/entropy_loss`` (``mean_b temperature * log pi_e``), ``actor/edit_abs_mean``,
    ``temperature/loss``, ``temperature/value``."""
    temperature = jnp.exp(fixed["log_temperature"])
    a_loss, actor = edit_actor_objective(nets.edit, params["edit"], nets.critic, fixed["critic"], obs, base, eps,
                                         edit_scale, temperature)
    t_loss, t_info = temperature_objective(params["log_temperature"], actor["log_prob"], target_entropy)
    return a_loss, t_loss, {
        "actor/q_mean": jnp.mean(actor["q"]),
        "actor/entropy": -jnp.mean(actor["log_prob"]),
        "actor/entropy_loss": temperature * jnp.mean(actor["log_prob"]),
        "actor/edit_abs_mean": jnp.mean(jnp.abs(actor["actions"] - base)),
        **t_info,
    }


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
    critic, flow = critic_and_flow(config, action_dim)
    return FEditNetworks(critic, flow, edit_policy(config.actor_hidden_dims, flow.action_dim, config.actor_layer_norm))


class FEditAgent(AgentBase, LearnedTemperature):
    """Immutable state of FEdit; ``update`` and ``sample_actions`` are pure and jitted.

    Shapes and the batch contract are those of :class:`~qchunk.agents.flow_agent.FlowAgent`:
    ``B`` batch, ``h = config.horizon``, ``A`` action dimension, ``H = action_horizon``, ``P = H * A``.
    ``params`` holds ``{"critic", "flow", "edit", "log_temperature"}``; ``target_params`` ``{"critic"}``.
    """

    config: FEditAgentConfig = flax.struct.field(pytree_node=False)
    """The resolved settings."""

    loss_fn = staticmethod(draws_loss_fn)
    loss_from_draws = staticmethod(lambda params, agent, batch, draws: fedit_loss(params, agent, batch, draws))

    @classmethod
    def create(cls, config: FEditAgentConfig, observation_dim: int, action_dim: int, seed: int = 0) -> FEditAgent:
        """Initialise networks (target critic = critic), the temperature and Adam from integer ``seed``."""
        nets = build_edit_networks(config, int(action_dim))
        rng, k_critic, k_flow, k_edit = seed_keys(seed, 3)
        obs, act = (1, int(observation_dim)), (1, config.policy_dim(int(action_dim)))
        params = {
            "critic": init_module(nets.critic, k_critic, (obs, act)),
            "flow": init_module(nets.flow, k_flow, (obs, act, (1, 1))),
            "edit": init_module(nets.edit, k_edit, (obs, act)),
            "log_temperature": jnp.asarray(np.log(config.init_temperature), jnp.float32),
        }
        return cls.from_params(config, observation_dim, action_dim, params, {"critic": params["critic"]}, rng)

    @property
    def networks(self) -> FEditNetworks:
        """The flax module definitions."""
        return build_edit_networks(self.config, self.action_dim)

    @jax.jit
    def sample_actions(self, observations: Array, rng: Array) -> Array:
        """Edited chunks to execute: ``(obs_dim,) -> (H, A)`` or ``(B, obs_dim) -> (B, H, A)``, in [-1, 1].

        ``rng`` makes the flow noise and the edit noise (:meth:`policy_noise`, :func:`fedit_actions`)."""
        obs, single = as_batch(observations)
        return self.as_chunks(self.act(self.params, obs, self.policy_noise(rng, obs.shape[0])), single)

    def act(self, params: Params, obs: Array, noise: EditNoise) -> Array:
        """The policy under ``params`` for given draws: ``obs (B, D) -> (B, P)`` (:func:`fedit_actions`)."""
        return fedit_actions(self.networks, self.config, params, obs, noise)

    def policy_noise(self, rng: Array, batch: int) -> EditNoise:
        """The draws of one policy call on ``batch`` states (:func:`edit_noise`)."""
        return edit_noise(rng, batch, self.config.num_samples, self.networks.flow.action_dim)

    def update_draws(self, rng: Array, batch: int) -> FEditDraws:
        """All random numbers of one update on ``batch`` states, drawn from ``rng`` (:class:`FEditDraws`)."""
        keys = jax.random.split(rng, 5)
        shape = (batch, self.networks.flow.action_dim)
        return FEditDraws(self.policy_noise(keys[0], batch), normal(keys[1], shape), uniform(keys[2], (batch, 1)),
                          normal(keys[3], shape), jax.random.normal(keys[4], shape, jnp.float32))


def fedit_actions(nets: FEditNetworks, config: FEditAgentConfig, params: Params, obs: Array,
                  noise: EditNoise) -> Array:
    """FEdit's policy for ``obs (B, D)`` and draws ``noise``: ``(B, P)`` in [-1, 1] (no gradient use):
    :func:`best_edited_chunk` with the BC flow's clipped Euler solutions as the base chunks."""
    def base_chunks(obs_b: Array, start: Array) -> Array:
        return integrate_flow(nets.flow, params["flow"], obs_b, start, config.flow_steps)

    return best_edited_chunk(nets, params, obs, noise, config.edit_scale, base_chunks)


class FEditDraws(NamedTuple):
    """Every random number one FEdit update uses (``B`` batch, ``P`` policy width); made from a key by
    :meth:`FEditAgent.update_draws`, or the authors' recorded ones in the fidelity harness."""

    next_action: EditNoise
    """The policy's draws for the TD-target chunk at ``s_{t+h}``."""
    bc_noise: Array
    """``(B, P)`` the start ``x0`` of the flow-matching loss."""
    bc_time: Array
    """``(B, 1)`` the flow times ``u`` of the flow-matching loss."""
    base_noise: Array
    """``(B, P)`` the start noises of the base chunks the edit policy is trained on."""
    edit: Array
    """``(B, P)`` the standard normal noise of the edit policy's reparameterised sample."""


def fedit_loss(params: Params, agent: FEditAgent, batch: Batch, draws: FEditDraws) -> tuple[Array, dict[str, Array]]:
    """Critic + BC flow + edit actor + temperature loss of one update for given ``draws`` (see the module
    docstring)."""
    config, nets = agent.config, agent.networks
    fixed = jax.lax.stop_gradient(params)
    obs = batch["observations"]
    data = critic_actions(batch["actions"], config.chunked)  # (B, P)

    next_actions = fedit_actions(nets, config, fixed, batch["next_observations"][:, -1], draws.next_action)
    c_loss, terms = agent_critic_objective(agent, params["critic"], batch, next_actions)
    info = critic_info(c_loss, terms)

    bc_loss = bc_flow_loss(nets.flow, params["flow"], batch, data, config.action_horizon, agent.action_dim,
                           draws.bc_noise, draws.bc_time, config.bc_weighting)
    base = integrate_flow(nets.flow, fixed["flow"], obs, draws.base_noise, config.flow_steps)
    a_loss, t_loss, actor_info = edit_temperature_objective(nets, params, fixed, obs, base, draws.edit,
                                                            config.edit_scale, config.target_entropy(agent.action_dim))
    info.update({"actor/bc_flow_loss": bc_loss, "actor/loss": a_loss, **actor_info})
    return c_loss + bc_loss + a_loss + t_loss, info
