"""Diffusion policies over chunks trained by a critic's action-gradient: Q-score matching (``qsm``) and diffusion
actor-critic (``dac``), as the QAM paper runs them (the authors' ``agents/dcgql.py``).

Networks (``params``): ``critic`` (K critics over (state, flattened chunk), the flow agents' ensemble) and
``actor``, a noise-prediction network ``eps(s, x_t, t)`` (:class:`~qchunk.networks.NoisePredictor`) of a
``diffusion_steps``-step DDPM with the ``beta_schedule`` of :mod:`qchunk.agents.diffusion`. ``target_params``:
``critic`` (Polyak average, rate ``tau``).

One update (one gradient of the sum, one Adam after clipping the global norm to ``max_grad_norm``):

* critic: the h-step TD loss (:func:`~qchunk.agents.common.chunk_critic_objective`) with the pessimistic target
  ``mean_k Q'_k - rho * std_k Q'_k`` at ``s_{t+h}`` and a chunk sampled from the diffusion policy there;
* actor: the data chunk noised at a step ``t ~ U{1..T}``, ``x_t = sqrt(alpha_hat_t) a + sqrt(1 - alpha_hat_t) eps``;
  ``g = grad_a mean_k Q_k(s, x_t)`` of the target critics (of the online ones without ``target_critic_grad``);
  loss ``alpha * denoising + actor term`` with the actor term :func:`~qchunk.agents.losses.score_matching_loss`
  (``qsm``: ``eps_pred`` regressed onto ``-inv_temp * g``) or
  :func:`~qchunk.agents.losses.diffusion_actor_critic_loss` (``dac``: ``sqrt(1 - alpha_hat_t) g . eps_pred``).

Acting and the TD-target chunk: the reverse chain (:func:`~qchunk.agents.diffusion.ddpm_sample`) with the
``clip_sampler_before`` / ``clip_sampler_after`` switches (QSM clips after every step, DAC clips the one-step
estimate of the clean chunk before it). The losses take their random numbers as arrays (:class:`DiffusionDraws`)
so that the fidelity harness replays the authors' draws.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

import flax.struct
import jax
import jax.numpy as jnp
import optax

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
    make_optimizer,
    normal,
    seed_keys,
)
from qchunk.agents.config import AgentConfig
from qchunk.agents.diffusion import (
    BETA_SCHEDULES,
    DiffusionSchedule,
    SamplerNoise,
    ddpm_sample,
    diffusion_schedule,
    noise_actions,
)
from qchunk.agents.losses import denoising_loss, diffusion_actor_critic_loss, score_matching_loss
from qchunk.agents.td import critic_actions
from qchunk.networks import CriticEnsemble, NoisePredictor

ActorLoss = Literal["qsm", "dac"]
"""The actor terms: Q-score matching or diffusion actor-critic."""


@dataclass(frozen=True)
class DiffusionAgentConfig(AgentConfig):
    """All settings of the diffusion policies (``qsm``, ``dac``). Every default is the QAM release's
    (``agents/dcgql.py``; checked update by update in ``tests/fixtures/fidelity``); ``actor_loss``, ``inv_temp``,
    ``alpha`` and the two sampler clips are set per agent and domain by the presets (its
    ``experiments/reproduce.py``). Build one with :func:`qchunk.agents.agent_config`."""

    actor_loss: ActorLoss = "qsm"
    """The actor term: ``qsm``, Q-score matching (``eps_pred`` regressed onto ``-inv_temp * grad_a Q``), or ``dac``,
    diffusion actor-critic (``sqrt(1 - alpha_hat_t) grad_a Q . eps_pred``; ``inv_temp`` unused)."""
    inv_temp: float = 1.0
    """QSM's inverse temperature: the scale of the critic's action-gradient the noise prediction is regressed on."""
    alpha: float = 0.0
    """Weight of the denoising (DDPM behaviour-cloning) loss on the data chunks, for both actor terms."""
    clip_sampler_before: bool = False
    """In each reverse step clip the one-step estimate of the clean chunk to [-1, 1] and take the posterior mean
    (DAC's setting); off: jump to the unclipped estimate (the authors' code)."""
    clip_sampler_after: bool = False
    """Clip the chain's state to [-1, 1] after every reverse step (QSM's setting)."""
    diffusion_steps: int = 10
    """``T``, the number of diffusion steps."""
    beta_schedule: Literal["vp", "cosine", "linear"] = "vp"
    """The noise schedule (:func:`~qchunk.agents.diffusion.beta_schedule`; the authors' runs: ``vp``)."""
    time_dim: int = 64
    """Width of the noise network's Fourier time features."""
    target_critic_grad: bool = True
    """The actor's action-gradient is that of the target critics' ensemble mean (else of the online critics')."""
    max_grad_norm: float = 1.0
    """Clip the global norm of the whole update's gradient (critic and actor together) to this value before Adam;
    0 turns clipping off."""
    rho: float = 0.5
    """Pessimism of the TD target: ``mean_k Q'_k - rho * std_k Q'_k`` (the QAM paper: 0.5, 0 on humanoidmaze)."""

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            *super()._checks(),
            (self.actor_loss in get_args(ActorLoss),
             f"actor_loss must be one of {', '.join(get_args(ActorLoss))}, got {self.actor_loss!r}"),
            (self.inv_temp >= 0.0, f"inv_temp must be >= 0, got {self.inv_temp}"),
            (self.alpha >= 0.0, f"alpha must be >= 0, got {self.alpha}"),
            (self.diffusion_steps >= 1, f"diffusion_steps must be >= 1, got {self.diffusion_steps}"),
            (self.beta_schedule in BETA_SCHEDULES,
             f"beta_schedule must be one of {', '.join(BETA_SCHEDULES)}, got {self.beta_schedule!r}"),
            (self.time_dim >= 2 and self.time_dim % 2 == 0, f"time_dim must be even and >= 2, got {self.time_dim}"),
            (self.max_grad_norm >= 0.0, f"max_grad_norm must be >= 0 (0: no clipping), got {self.max_grad_norm}"),
        ]


class DiffusionNetworks(NamedTuple):
    """The (stateless) flax module definitions of a diffusion-policy agent."""

    critic: CriticEnsemble
    """K critics over (state, policy output)."""
    actor: NoisePredictor
    """The noise prediction ``eps(s, x_t, t)``."""


@functools.lru_cache(maxsize=64)
def build_diffusion_networks(config: DiffusionAgentConfig, action_dim: int) -> DiffusionNetworks:
    """Module definitions for ``config`` with per-step action dimension ``action_dim``."""
    critic = CriticEnsemble(config.critic_hidden_dims, config.num_critics, config.critic_layer_norm)
    actor = NoisePredictor(config.actor_hidden_dims, config.policy_dim(action_dim), config.time_dim,
                           config.actor_layer_norm)
    return DiffusionNetworks(critic, actor)


class DiffusionDraws(NamedTuple):
    """Every random number one update uses (``B`` batch, ``P`` policy width, ``T`` diffusion steps)."""

    next_action: SamplerNoise
    """The reverse chain's draws for the TD-target chunk at ``s_{t+h}``."""
    times: Array
    """``(B,)`` int32 diffusion steps ``t`` in ``1 .. T`` of the actor loss."""
    noise: Array
    """``(B, P)`` the noise ``eps`` of the actor loss."""


class DiffusionAgent(AgentBase):
    """Immutable state of a diffusion-policy agent; ``update`` and ``sample_actions`` are pure and jitted. Shapes
    and the batch contract are those of :class:`~qchunk.agents.flow_agent.FlowAgent` (``P = H * A``)."""

    config: DiffusionAgentConfig = flax.struct.field(pytree_node=False)
    """The resolved settings."""

    loss_fn = staticmethod(draws_loss_fn)
    loss_from_draws = staticmethod(lambda params, agent, batch, draws: diffusion_loss(params, agent, batch, draws))

    @classmethod
    def create(cls, config: DiffusionAgentConfig, observation_dim: int, action_dim: int,
               seed: int = 0) -> DiffusionAgent:
        """Initialise critic and noise network (independently), the target critic (a copy) and Adam from ``seed``."""
        nets = build_diffusion_networks(config, int(action_dim))
        rng, k_critic, k_actor = seed_keys(seed, 2)
        obs, act = (1, int(observation_dim)), (1, config.policy_dim(int(action_dim)))
        params = {"critic": init_module(nets.critic, k_critic, (obs, act)),
                  "actor": init_module(nets.actor, k_actor, (obs, act, (1, 1)))}
        return cls.from_params(config, observation_dim, action_dim, params, {"critic": params["critic"]}, rng)

    @property
    def networks(self) -> DiffusionNetworks:
        """The flax module definitions."""
        return build_diffusion_networks(self.config, self.action_dim)

    @property
    def schedule(self) -> DiffusionSchedule:
        """The diffusion schedule (``beta_schedule``, ``diffusion_steps``)."""
        return diffusion_schedule(self.config.beta_schedule, self.config.diffusion_steps)

    @property
    def optimizer(self) -> optax.GradientTransformation:
        """Adam after clipping the global gradient norm to ``config.max_grad_norm`` (0: plain Adam)."""
        return make_optimizer(self.config.lr, self.config.max_grad_norm)

    @jax.jit
    def sample_actions(self, observations: Array, rng: Array) -> Array:
        """Actions to execute: ``(obs_dim,) -> (H, A)`` or ``(B, obs_dim) -> (B, H, A)``, one run of the reverse
        chain per state. ``rng`` is a JAX key, used once."""
        obs, single = as_batch(observations)
        return self.as_chunks(self.act(self.params, obs, self.policy_noise(rng, obs.shape[0])), single)

    def policy_noise(self, rng: Array, batch: int) -> SamplerNoise:
        """The reverse chain's draws for ``batch`` states: ``x_T`` ``(B, P)`` and ``T - 1`` step noises."""
        width, steps = self.networks.actor.action_dim, self.config.diffusion_steps
        k_start, k_steps = jax.random.split(rng)
        return SamplerNoise(normal(k_start, (batch, width)), normal(k_steps, (steps - 1, batch, width)))

    def act(self, params: Params, obs: Array, noise: SamplerNoise) -> Array:
        """The policy for given draws: ``obs (B, D) -> (B, P)``, the reverse chain of the noise network."""
        variables = {"params": params["actor"]}

        def eps(x: Array, t: Array) -> Array:
            return self.networks.actor.apply(variables, obs, x, t)

        return ddpm_sample(eps, self.schedule, noise, self.config.clip_sampler_before, self.config.clip_sampler_after)

    def update_draws(self, rng: Array, batch: int) -> DiffusionDraws:
        """All random numbers of one update on ``batch`` states, drawn from ``rng`` (:class:`DiffusionDraws`)."""
        k_next, k_times, k_noise = jax.random.split(rng, 3)
        steps = self.config.diffusion_steps
        return DiffusionDraws(self.policy_noise(k_next, batch), jax.random.randint(k_times, (batch,), 1, steps + 1),
                              normal(k_noise, (batch, self.networks.actor.action_dim)))


def diffusion_loss(params: Params, agent: DiffusionAgent, batch: Batch,
                   draws: DiffusionDraws) -> tuple[Array, dict[str, Array]]:
    """``critic_loss + alpha * denoising_loss + actor term`` of one update for given ``draws`` (each term reaches
    only its network: the TD-target chunk and the action-gradient are constants)."""
    config, nets = agent.config, agent.networks
    fixed = jax.lax.stop_gradient(params)
    next_actions = agent.act(fixed, batch["next_observations"][:, -1], draws.next_action)
    c_loss, terms = agent_critic_objective(agent, params["critic"], batch, next_actions)
    info = critic_info(c_loss, terms)

    obs, valid = batch["observations"], batch["valid"][:, -1]
    data = critic_actions(batch["actions"], config.chunked)  # (B, P): flat chunk or first action
    noisy, noise_scale = noise_actions(agent.schedule, data, draws.noise, draws.times)
    eps_pred = nets.actor.apply({"params": params["actor"]}, obs, noisy, draws.times[:, None].astype(jnp.float32))
    critic_params = agent.target_params["critic"] if config.target_critic_grad else fixed["critic"]

    def mean_q(actions: Array) -> Array:
        return jnp.sum(jnp.mean(nets.critic.apply({"params": critic_params}, obs, actions), axis=0))

    q_grad = jax.grad(mean_q)(jax.lax.stop_gradient(noisy))
    bc_loss = denoising_loss(eps_pred, draws.noise, valid)
    if config.actor_loss == "qsm":
        a_loss = score_matching_loss(eps_pred, q_grad, config.inv_temp, valid)
    else:
        a_loss = diffusion_actor_critic_loss(eps_pred, q_grad, noise_scale, valid)
    info.update({"actor/loss": a_loss, "actor/denoising_loss": bc_loss, "actor/total_loss": config.alpha * bc_loss +
                 a_loss, "actor/q_grad_abs_mean": jnp.mean(jnp.abs(q_grad))})
    return c_loss + config.alpha * bc_loss + a_loss, info


__all__ = ["DiffusionAgent", "DiffusionAgentConfig", "DiffusionDraws", "DiffusionNetworks",
           "build_diffusion_networks", "diffusion_loss"]
