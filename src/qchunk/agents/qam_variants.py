"""QAM-F and QAM-E (Li & Levine 2026, arXiv 2601.14234): QAM with a second policy on top of its fine-tuned flow.

Both are :class:`~qchunk.agents.qam.QamAgent` (the BC flow, the adjoint-matched fine-tuned flow and the chunked
critic, trained by :func:`~qchunk.agents.qam.qam_loss` unchanged) plus one network and its loss; the added
policy is the acting and the TD-target policy (:meth:`~qchunk.agents.qam.QamAgent.policy`).

* **QAM-F** (``qam-f``, :class:`QamFAgent`): FQL's one-step policy ``mu(s, z)`` with FQL's loss
  (:func:`~qchunk.agents.common.one_step_objective`, as QC-FQL's) ``-mean_k Q_k(s, clip(mu)) +
  alpha * ||mu(s, z) - clip(fine_flow(s, z))||^2``: the *fine-tuned* flow plays the part FQL's BC flow plays,
  its Euler solution from the same noise ``z`` (computed without gradient) is the distillation target. The
  agent acts with ``clip(mu(s, z))`` (the best of ``num_samples`` under the ensemble-mean online Q).
* **QAM-E** (``qam-e``, :class:`QamEAgent`): FEdit's tanh-Gaussian edit policy (:mod:`qchunk.agents.edit`,
  used exactly as FEdit uses it) with the fine-tuned flow's chunk as the base: the agent acts with
  ``clip(b + edit_scale * e, -1, 1)``, ``b`` the fine-tuned flow's clipped chunk, ``e ~ pi_e(. | s, b)``; the
  edit policy maximises ``mean_k Q_k - temperature * log pi_e`` and the temperature is tuned to the entropy
  target ``target_entropy_per_dim * h * A``.

As in the authors' code (``agents/qam.py``, ``fql_alpha`` and ``edit_scale``), ``alpha = 0`` (QAM-F) and
``edit_scale = 0`` (QAM-E) build no extra network: the agent is then QAM with that config, bit for bit. The
one gradient step (global-norm clipping ``max_grad_norm``, then Adam) covers the added network too, as theirs.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from qchunk.agents.common import Array, Batch, LearnedTemperature, Params, init_module, normal, one_step_objective
from qchunk.agents.config import QamEAgentConfig, QamFAgentConfig
from qchunk.agents.edit import (
    EditNoise,
    best_by_q,
    best_edited_chunk,
    edit_noise,
    edit_policy,
    edit_temperature_objective,
)
from qchunk.agents.qam import QamAgent, QamDraws, build_qam_networks, fine_flow_chunks, qam_actions, qam_loss
from qchunk.networks import CriticEnsemble, FlowVelocity, OneStepPolicy, TanhGaussianPolicy

__all__ = ["QamEAgent", "QamENetworks", "QamFAgent", "QamFNetworks", "build_qam_e_networks", "build_qam_f_networks",
           "distill_objective", "edit_objective", "qam_e_actions", "qam_e_loss", "qam_f_actions", "qam_f_loss"]


class QamFNetworks(NamedTuple):
    """QAM's modules plus the one-step policy (None with ``alpha = 0``)."""

    critic: CriticEnsemble
    flow: FlowVelocity
    fine_flow: FlowVelocity
    onestep: OneStepPolicy | None
    """``mu(s, z)``, noise-conditioned, over the flattened chunk."""


class QamENetworks(NamedTuple):
    """QAM's modules plus the edit policy (None with ``edit_scale = 0``)."""

    critic: CriticEnsemble
    flow: FlowVelocity
    fine_flow: FlowVelocity
    edit: TanhGaussianPolicy | None
    """``pi_e(e | s, base chunk)`` (:func:`qchunk.agents.edit.edit_policy`)."""


@functools.lru_cache(maxsize=64)
def build_qam_f_networks(config: QamFAgentConfig, action_dim: int) -> QamFNetworks:
    """Module definitions for ``config`` with per-step action dimension ``action_dim``."""
    width = config.policy_dim(action_dim)
    onestep = OneStepPolicy(config.actor_hidden_dims, width, config.actor_layer_norm) if config.alpha > 0 else None
    return QamFNetworks(*build_qam_networks(config, action_dim), onestep)


@functools.lru_cache(maxsize=64)
def build_qam_e_networks(config: QamEAgentConfig, action_dim: int) -> QamENetworks:
    """Module definitions for ``config`` with per-step action dimension ``action_dim``."""
    width = config.policy_dim(action_dim)
    edit = edit_policy(config.actor_hidden_dims, width, config.actor_layer_norm) if config.edit_scale > 0 else None
    return QamENetworks(*build_qam_networks(config, action_dim), edit)


def _with_params(agent: QamAgent, extra: dict[str, Array]) -> QamAgent:
    """``agent`` with the networks ``extra`` added to its parameters and the optimizer state rebuilt for them."""
    params = {**agent.params, **extra}
    return agent.replace(params=params, opt_state=agent.optimizer.init(params))


# ---------------------------------------------------------------------- QAM-F
class QamFAgent(QamAgent):
    """Immutable state of QAM-F: QAM's ``params`` (``critic``, ``flow``, ``fine_flow``) plus ``onestep``; shapes
    and the batch contract as :class:`~qchunk.agents.qam.QamAgent`."""

    config: QamFAgentConfig = flax.struct.field(pytree_node=False)
    """The resolved settings."""

    loss_from_draws = staticmethod(lambda params, agent, batch, draws: qam_f_loss(params, agent, batch, draws))

    @classmethod
    def create(cls, config: QamFAgentConfig, observation_dim: int, action_dim: int, seed: int = 0) -> QamFAgent:
        """QAM's networks from ``seed`` (as :meth:`QamAgent.create`), then the one-step policy from a key split
        off the agent's key (``alpha > 0``)."""
        agent = super().create(config, observation_dim, action_dim, seed)
        if config.alpha == 0.0:
            return agent
        rng, key = jax.random.split(agent.rng)
        shapes = ((1, int(observation_dim)), (1, config.policy_dim(int(action_dim))))
        return _with_params(agent, {"onestep": init_module(agent.networks.onestep, key, shapes)}).replace(rng=rng)

    @property
    def networks(self) -> QamFNetworks:
        """The flax module definitions."""
        return build_qam_f_networks(self.config, self.action_dim)

    def act(self, params: Params, obs: Array, noise: Array) -> Array:
        """:func:`qam_f_actions` (with ``alpha = 0``, QAM's)."""
        return qam_f_actions(self.networks, self.config, params, obs, noise)

    def extra_draws(self, rng: Array, batch: int) -> Array | None:
        """The one-step policy loss's noise ``z``, ``normal(rng, (B, P))`` (None with ``alpha = 0``)."""
        return None if self.config.alpha == 0.0 else normal(rng, (batch, self.networks.flow.action_dim))


def qam_f_actions(nets: QamFNetworks, config: QamFAgentConfig, params: Params, obs: Array, noise: Array) -> Array:
    """QAM-F's policy for ``obs (B, D)`` and noises ``noise (B, N, P)``: ``(B, P)`` in [-1, 1], ``clip(mu(s, z))``
    for each of the ``N = num_samples`` noises, the best under the ensemble-mean online Q kept; with
    ``alpha = 0`` QAM's :func:`~qchunk.agents.qam.qam_actions`."""
    if nets.onestep is None:
        return qam_actions(nets, config, params, obs, noise)
    obs_b = obs[:, None, :]
    candidates = jnp.clip(nets.onestep.apply({"params": params["onestep"]}, obs_b, noise), -1.0, 1.0)
    return best_by_q(nets.critic, params["critic"], obs, candidates)


def distill_objective(nets: QamFNetworks, config: QamFAgentConfig, onestep_params: Params, fixed: Params, obs: Array,
                      noise: Array) -> tuple[Array, dict[str, Array]]:
    """QAM-F's one-step policy loss on states ``obs (B, D)``: FQL's
    :func:`~qchunk.agents.common.one_step_objective` with the fine-tuned flow's clipped Euler solution from the
    same noise ``z = noise (B, P)`` as the target (under the fixed parameters ``fixed``; no gradient) and the
    fixed online critics. Returns the scalar loss and its ``actor/*`` metrics."""
    target = fine_flow_chunks(nets, config, fixed, obs, noise, acting=False)
    return one_step_objective(nets.onestep, onestep_params, nets.critic, fixed["critic"], obs, noise, target,
                              config.alpha)


def qam_f_loss(params: Params, agent: QamFAgent, batch: Batch, draws: QamDraws) -> tuple[Array, dict[str, Array]]:
    """QAM's loss plus (``alpha > 0``) the one-step policy's :func:`distill_objective` on the batch's states with
    the noise ``draws.extra``."""
    loss, info = qam_loss(params, agent, batch, draws)
    if agent.config.alpha == 0.0:
        return loss, info
    d_loss, d_info = distill_objective(agent.networks, agent.config, params["onestep"],
                                       jax.lax.stop_gradient(params), batch["observations"], draws.extra)
    info.update(d_info)
    info["actor/loss"] = info["actor/loss"] + d_loss
    return loss + d_loss, info


# ---------------------------------------------------------------------- QAM-E
class QamEAgent(QamAgent, LearnedTemperature):
    """Immutable state of QAM-E: QAM's ``params`` (``critic``, ``flow``, ``fine_flow``) plus ``edit`` and
    ``log_temperature``; shapes and the batch contract as :class:`~qchunk.agents.qam.QamAgent`."""

    config: QamEAgentConfig = flax.struct.field(pytree_node=False)
    """The resolved settings."""

    loss_from_draws = staticmethod(lambda params, agent, batch, draws: qam_e_loss(params, agent, batch, draws))

    @classmethod
    def create(cls, config: QamEAgentConfig, observation_dim: int, action_dim: int, seed: int = 0) -> QamEAgent:
        """QAM's networks from ``seed`` (as :meth:`QamAgent.create`), then the edit policy from a key split off
        the agent's key and the temperature ``init_temperature`` (``edit_scale > 0``)."""
        agent = super().create(config, observation_dim, action_dim, seed)
        if config.edit_scale == 0.0:
            return agent
        rng, key = jax.random.split(agent.rng)
        width = config.policy_dim(int(action_dim))
        extra = {"edit": init_module(agent.networks.edit, key, ((1, int(observation_dim)), (1, width))),
                 "log_temperature": jnp.asarray(np.log(config.init_temperature), jnp.float32)}
        return _with_params(agent, extra).replace(rng=rng)

    @property
    def networks(self) -> QamENetworks:
        """The flax module definitions."""
        return build_qam_e_networks(self.config, self.action_dim)

    def policy_noise(self, rng: Array, batch: int) -> Array | EditNoise:
        """QAM's noises with ``edit_scale = 0``; else :func:`~qchunk.agents.edit.edit_noise` (base and edit)."""
        if self.config.edit_scale == 0.0:
            return super().policy_noise(rng, batch)
        return edit_noise(rng, batch, self.config.num_samples, self.networks.flow.action_dim)

    def act(self, params: Params, obs: Array, noise: Array | EditNoise) -> Array:
        """:func:`qam_e_actions` (with ``edit_scale = 0``, QAM's)."""
        return qam_e_actions(self.networks, self.config, params, obs, noise)

    def extra_draws(self, rng: Array, batch: int) -> EditNoise | None:
        """The edit loss's draws, ``(B, P)`` each: the base chunks' start noise and the edit's noise (None with
        ``edit_scale = 0``)."""
        if self.config.edit_scale == 0.0:
            return None
        shape = (batch, self.networks.flow.action_dim)
        k_base, k_edit = jax.random.split(rng)
        return EditNoise(normal(k_base, shape), jax.random.normal(k_edit, shape, jnp.float32))


def qam_e_actions(nets: QamENetworks, config: QamEAgentConfig, params: Params, obs: Array,
                  noise: Array | EditNoise) -> Array:
    """QAM-E's policy for ``obs (B, D)``: ``(B, P)`` in [-1, 1] (no gradient use): ``N = num_samples`` base
    chunks, the fine-tuned flow's clipped Euler solutions from ``noise.base (B, N, P)``, each edited with
    ``noise.edit`` (:func:`~qchunk.agents.edit.edit_chunks`), and :func:`~qchunk.agents.edit.best_by_q` keeps
    one; with ``edit_scale = 0`` QAM's :func:`~qchunk.agents.qam.qam_actions` of ``noise (B, N, P)``."""
    if nets.edit is None:
        return qam_actions(nets, config, params, obs, noise)

    def base_chunks(obs_b: Array, start: Array) -> Array:
        return fine_flow_chunks(nets, config, params, obs_b, start)

    return best_edited_chunk(nets, params, obs, noise, config.edit_scale, base_chunks)


def edit_objective(nets: QamENetworks, config: QamEAgentConfig, params: Params, obs: Array, action_dim: int,
                   noise: EditNoise) -> tuple[Array, dict[str, Array]]:
    """QAM-E's edit-policy and temperature losses on states ``obs (B, D)``, FEdit's with the fine-tuned flow's
    chunk as the base: ``b`` the fine-tuned flow's clipped Euler solution from ``noise.base (B, P)`` (fixed
    parameters, no gradient), :func:`~qchunk.agents.edit.edit_actor_objective` with the noise ``noise.edit`` and
    the fixed online critics, :func:`~qchunk.agents.losses.temperature_loss` towards
    ``config.target_entropy(action_dim)``. Returns the summed loss and its ``actor/*``, ``temperature/*``
    metrics."""
    fixed = jax.lax.stop_gradient(params)
    base = fine_flow_chunks(nets, config, fixed, obs, noise.base, acting=False)
    a_loss, t_loss, actor_info = edit_temperature_objective(nets, params, fixed, obs, base, noise.edit,
                                                            config.edit_scale, config.target_entropy(action_dim))
    return a_loss + t_loss, {"actor/edit_loss": a_loss, **actor_info}


def qam_e_loss(params: Params, agent: QamEAgent, batch: Batch, draws: QamDraws) -> tuple[Array, dict[str, Array]]:
    """QAM's loss plus (``edit_scale > 0``) the edit policy's and the temperature's :func:`edit_objective` on the
    batch's states with the draws ``draws.extra``."""
    loss, info = qam_loss(params, agent, batch, draws)
    if agent.config.edit_scale == 0.0:
        return loss, info
    e_loss, e_info = edit_objective(agent.networks, agent.config, params, batch["observations"], agent.action_dim,
                                    draws.extra)
    info.update(e_info)
    info["actor/loss"] = info["actor/loss"] + e_info["actor/edit_loss"]
    return loss + e_loss, info
