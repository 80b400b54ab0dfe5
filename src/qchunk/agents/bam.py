"""Basic adjoint matching (BAM; the QAM paper's ablation, Li & Levine 2026, arXiv 2601.14234): QAM's networks and
losses with the fine-tuned flow trained by backpropagation through its sampling chain instead of the lean adjoint.

:class:`BamAgent` is :class:`~qchunk.agents.qam.QamAgent` (the BC flow, the chunked critic ensemble with the
pessimistic target, the fine-tuned flow, acting with it, the targets and the clipped Adam) with one loss term
replaced: where QAM regresses the fine-tuned field onto the lean adjoint, BAM samples ``x_0 .. x_T`` from the
fine-tuned memoryless SDE (last step with the BC field, :func:`~qchunk.agents.adjoint.sample_controlled`) *with*
gradient into the fine-tuned network through every step, and minimises

    ``- inv_temp * mean_b (mean_k Q_k - rho * std_k Q_k)(s, x_T) + mean_b sum_{i<T-1} (2 / sigma_i**2)
    ||v_fine - v_BC||**2 (x_i, u_i)``

(the online critics at the unclipped endpoint, their parameters fixed; the BC field the target one with
``target_actor``), the objective whose gradient the lean adjoint of QAM estimates without the chain's
Jacobians. ``adjoint``, ``target_critic_grad`` and ``clip_adjoint`` do not apply. Equal to the authors'
``agents/bam.py`` (the fidelity harness).
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.struct
import jax
import jax.numpy as jnp

from qchunk.agents.adjoint import sample_controlled
from qchunk.agents.common import Array, Batch, Params
from qchunk.agents.config import QamAgentConfig
from qchunk.agents.qam import QamAgent, QamDraws, QamNetworks, qam_loss

__all__ = ["BamAgent", "BamAgentConfig", "bam_loss", "bam_objective"]


@dataclass(frozen=True)
class BamAgentConfig(QamAgentConfig):
    """All settings of basic adjoint matching (``bam``): QAM's (:class:`~qchunk.agents.config.QamAgentConfig`),
    whose ``adjoint``, ``target_critic_grad`` and ``clip_adjoint`` BAM does not read (no lean adjoint: the critic
    is the online one at the unclipped endpoint, as the authors' ``agents/bam.py``). ``inv_temp`` weighs the
    critic against the control cost; per domain from the reproduction script (``BAM`` row,
    :data:`~qchunk.agents.presets.QAM_VARIANT_SETTINGS`)."""

    inv_temp: float = 0.3
    """Inverse temperature beta: the fine-tuned flow minimises ``-beta * Q(s, x_T) + control cost``; per domain
    (10 or 30 in the reproduction script); 0.3 is the reference default. 0 acts with the BC flow."""


class BamAgent(QamAgent):
    """Immutable state of a BAM agent: QAM's ``params`` (``critic``, ``flow``, ``fine_flow``), targets, shapes,
    draws (:class:`~qchunk.agents.qam.QamDraws`, the extra draws None) and acting."""

    config: BamAgentConfig = flax.struct.field(pytree_node=False)
    """The resolved settings."""

    loss_from_draws = staticmethod(lambda params, agent, batch, draws: bam_loss(params, agent, batch, draws))


def bam_objective(nets: QamNetworks, config: BamAgentConfig, fine_params: Params, base_params: Params,
                  critic_params: Params, obs: Array, start_noise: Array, step_noise: Array
                  ) -> tuple[Array, dict[str, Array]]:
    """BAM's loss of the fine-tuned field on states ``obs (B, D)``, differentiable in ``fine_params`` through the
    whole sampling chain.

    Args:
        fine_params: the fine-tuned network's parameters (the residual's with ``residual``).
        base_params: the BC field (the target BC flow with ``target_actor``); critic_params: the online critics
            (both constants).
        start_noise: ``(B, P)`` the trajectory's start; step_noise: ``(T - 1, B, P)`` its increments.
    Returns:
        The scalar loss and metrics ``actor/bam_loss``, ``actor/control_cost`` (the mean cost) and
        ``actor/bam_q`` (the pessimistic Q at the endpoints, batch mean).
    """
    base_vars, fine_vars = {"params": base_params}, {"params": fine_params}

    def base(x: Array, u: Array) -> Array:
        return nets.flow.apply(base_vars, obs, x, u)

    def control(x: Array, u: Array) -> tuple[Array, Array]:
        own = nets.fine_flow.apply(fine_vars, obs, x, u)
        if config.residual:
            return own + base(x, u), own
        return own, own - base(x, u)

    final, cost = sample_controlled(control, base, start_noise, step_noise)
    qs = nets.critic.apply({"params": critic_params}, obs, final)  # (K, B)
    q = jnp.mean(jnp.mean(qs, axis=0) - config.rho * jnp.std(qs, axis=0))
    cost = jnp.mean(cost)
    loss = cost - config.inv_temp * q
    return loss, {"actor/bam_loss": loss, "actor/control_cost": cost, "actor/bam_q": q}


def bam_loss(params: Params, agent: BamAgent, batch: Batch, draws: QamDraws) -> tuple[Array, dict[str, Array]]:
    """``critic_loss + bc_flow_loss + bam_objective`` for given ``draws``: QAM's :func:`~qchunk.agents.qam.qam_loss`
    without its adjoint-matching term, plus :func:`bam_objective` on the batch's states."""
    config, nets = agent.config, agent.networks
    fixed = jax.lax.stop_gradient(params)
    shared_loss, info = qam_loss(params, agent, batch, draws, adjoint=False)
    base_params = agent.target_params["flow"] if config.target_actor else fixed["flow"]
    bam, bam_info = bam_objective(nets, config, params["fine_flow"], base_params, fixed["critic"],
                                  batch["observations"], draws.start_noise, draws.step_noise)
    info.update(bam_info)
    info["actor/loss"] = info["actor/bc_flow_loss"] + bam
    return shared_loss + bam, info
