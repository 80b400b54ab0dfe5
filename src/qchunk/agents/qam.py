"""Q-learning with Adjoint Matching (QAM; Li & Levine 2026, arXiv 2601.14234): the flow family's BC flow and
chunked critic, plus a second flow fine-tuned by adjoint matching towards ``pi_BC(a|s) exp(beta * Q(s, a))``.

Networks (``params``): ``critic`` (K critics over (state, flattened chunk), as the flow agents'), ``flow``
(the BC velocity field, trained by flow matching exactly as :class:`~qchunk.agents.flow_agent.FlowAgent`'s)
and ``fine_flow`` (the fine-tuned field, or its residual over the BC field with ``residual``).
``target_params``: ``critic`` and, with ``target_actor``, ``flow`` (Polyak averages, rate ``tau``).

One update (one gradient of the sum, one Adam with global-norm clipping ``max_grad_norm``):

* critic: the h-step TD loss of :func:`~qchunk.agents.common.chunk_critic_objective` with the pessimistic
  target ``mean_k Q'_k - rho * std_k Q'_k`` at ``s_{t+h}`` and the policy's action there;
* BC flow: flow matching on the data chunks (:func:`~qchunk.agents.common.bc_flow_objective`);
* fine-tuned flow: sample a trajectory ``x_0 .. x_T`` of the fine-tuned flow's memoryless SDE, start the
  lean adjoint at ``a_T = -beta * grad_a mean_k Q_k(s, clip(x_T))``, integrate it backwards through the BC
  field by vector-Jacobian products, and regress ``(2 / sigma_i) (v_fine - v_BC)(x_i, u_i)`` onto
  ``-sigma_i a_i`` (:mod:`qchunk.agents.adjoint`). Trajectory, adjoint and BC field are constants of the
  loss: no gradient flows through the sampling chain.

Acting and the TD-target action: Euler integration (``flow_steps``) of the fine-tuned field from
``N = num_samples`` noises, clipped to [-1, 1], the one with the highest ``q_agg`` of the online critics
kept (N=1, the paper's setting, is one sample). ``inv_temp = 0`` acts with the BC flow.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from qchunk.agents.adjoint import (
    adjoint_matching_loss,
    flow_times,
    lean_adjoint,
    memoryless_sigma,
    sample_memoryless,
)
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
    init_module,
    make_optimizer,
    normal,
    seed_keys,
    uniform,
)
from qchunk.agents.config import QamAgentConfig
from qchunk.agents.td import aggregate_ensemble, critic_actions
from qchunk.networks import CriticEnsemble, FlowVelocity, euler_integrate


class QamNetworks(NamedTuple):
    """The (stateless) flax module definitions of a QAM agent."""

    critic: CriticEnsemble
    """K critics over (state, policy output)."""
    flow: FlowVelocity
    """The BC flow velocity field."""
    fine_flow: FlowVelocity
    """The fine-tuned velocity field (its residual over ``flow`` with ``config.residual``)."""


@functools.lru_cache(maxsize=64)
def build_qam_networks(config: QamAgentConfig, action_dim: int) -> QamNetworks:
    """Module definitions for ``config`` with per-step action dimension ``action_dim``."""
    critic, flow = critic_and_flow(config, action_dim)
    return QamNetworks(critic, flow, flow)


class QamAgent(AgentBase):
    """Immutable state of a QAM agent; ``update`` and ``sample_actions`` are pure and jitted.

    Shapes and the batch contract are those of :class:`~qchunk.agents.flow_agent.FlowAgent`: ``B`` batch,
    ``h = config.horizon``, ``A`` action dimension, ``H = action_horizon``, ``P = H * A``.
    """

    config: QamAgentConfig = flax.struct.field(pytree_node=False)
    """The resolved settings."""

    loss_fn = staticmethod(draws_loss_fn)
    loss_from_draws = staticmethod(lambda params, agent, batch, draws: qam_loss(params, agent, batch, draws))

    @classmethod
    def create(cls, config: QamAgentConfig, observation_dim: int, action_dim: int, seed: int = 0) -> QamAgent:
        """Initialise the three networks (independently), the targets (copies) and Adam from ``seed``."""
        nets = build_qam_networks(config, int(action_dim))
        rng, k_critic, k_flow, k_fine = seed_keys(seed, 3)
        obs, act, time = (1, int(observation_dim)), (1, config.policy_dim(int(action_dim))), (1, 1)
        params = {
            "critic": init_module(nets.critic, k_critic, (obs, act)),
            "flow": init_module(nets.flow, k_flow, (obs, act, time)),
            "fine_flow": init_module(nets.fine_flow, k_fine, (obs, act, time)),
        }
        targets = {"critic": params["critic"], **({"flow": params["flow"]} if config.target_actor else {})}
        return cls.from_params(config, observation_dim, action_dim, params, targets, rng)

    @property
    def networks(self) -> QamNetworks:
        """The flax module definitions."""
        return build_qam_networks(self.config, self.action_dim)

    @property
    def optimizer(self) -> optax.GradientTransformation:
        """Adam after clipping the global gradient norm to ``config.max_grad_norm`` (0: plain Adam)."""
        return make_optimizer(self.config.lr, self.config.max_grad_norm)

    @jax.jit
    def sample_actions(self, observations: Array, rng: Array) -> Array:
        """Actions to execute: ``(obs_dim,) -> (H, A)`` or ``(B, obs_dim) -> (B, H, A)``, in [-1, 1]: the best
        of ``num_samples`` fine-tuned flow samples. ``rng`` is a JAX key, used once."""
        obs, single = as_batch(observations)
        return self.as_chunks(self.policy(self.params, obs, rng), single)

    def policy(self, params: Params, obs: Array, rng: Array) -> Array:
        """The acting and TD-target policy under ``params``: ``obs (B, D) -> (B, P)`` in [-1, 1] (no gradient
        use), :meth:`act` on the draws :meth:`policy_noise` makes from ``rng``."""
        return self.act(params, obs, self.policy_noise(rng, obs.shape[0]))

    def policy_noise(self, rng: Array, batch: int) -> Any:
        """The random numbers one policy call uses for ``batch`` states: QAM's, ``normal(rng, (B, N, P))``
        (the start noises of ``N = num_samples`` flow samples); QAM-F and QAM-E override it."""
        return normal(rng, (batch, self.config.num_samples, self.networks.flow.action_dim))

    def act(self, params: Params, obs: Array, noise: Any) -> Array:
        """The policy for given draws (:meth:`policy_noise`'s): ``obs (B, D) -> (B, P)``; QAM's is
        :func:`qam_actions`, QAM-F and QAM-E (:mod:`qchunk.agents.qam_variants`) override it."""
        return qam_actions(self.networks, self.config, params, obs, noise)

    def update_draws(self, rng: Array, batch: int) -> QamDraws:
        """All random numbers of one update on ``batch`` states, drawn from ``rng`` (:class:`QamDraws`)."""
        keys = jax.random.split(rng, 6)
        steps, width = self.config.flow_steps, self.networks.flow.action_dim
        return QamDraws(next_action=self.policy_noise(keys[0], batch), bc_noise=normal(keys[1], (batch, width)),
                        bc_time=uniform(keys[2], (batch, 1)), start_noise=normal(keys[3], (batch, width)),
                        step_noise=normal(keys[4], (steps - 1, batch, width)),
                        extra=self.extra_draws(keys[5], batch))

    def extra_draws(self, rng: Array, batch: int) -> Any:
        """Draws of the loss terms a variant adds (QAM-F, QAM-E); QAM adds none."""
        return None


def fine_velocity(nets: QamNetworks, config: QamAgentConfig, params: Params, obs: Array,
                  base_params: Params | None = None):
    """The fine-tuned field, ``(x (..., P), u (1,)) -> (..., P)`` for states ``obs`` that broadcast against ``x``:
    ``params['fine_flow']``'s network, or ``v_BC + v_res`` with ``residual`` (the BC field ``base_params`` or
    ``params['flow']``). Adjoint matching samples it, and QAM-F / QAM-E train on its chunks, whatever
    ``inv_temp`` (as the reference code)."""
    base_vars = {"params": params["flow"] if base_params is None else base_params}
    fine_vars = {"params": params["fine_flow"]}
    if config.residual:
        return lambda x, u: nets.flow.apply(base_vars, obs, x, u) + nets.fine_flow.apply(fine_vars, obs, x, u)
    return lambda x, u: nets.fine_flow.apply(fine_vars, obs, x, u)


def acting_velocity(nets: QamNetworks, config: QamAgentConfig, params: Params, obs: Array,
                    base_params: Params | None = None):
    """The velocity the agent acts with: :func:`fine_velocity`, or the BC field alone when ``inv_temp == 0``."""
    if config.inv_temp == 0.0:
        base_vars = {"params": params["flow"] if base_params is None else base_params}
        return lambda x, u: nets.flow.apply(base_vars, obs, x, u)
    return fine_velocity(nets, config, params, obs, base_params)


def fine_flow_chunks(nets: QamNetworks, config: QamAgentConfig, params: Params, obs: Array, noise: Array,
                     acting: bool = True) -> Array:
    """The Euler solution (``flow_steps`` steps) from ``noise (..., P)``, clipped to [-1, 1], of the acting field
    (:func:`acting_velocity`) or, with ``acting=False``, of the fine-tuned field (:func:`fine_velocity`); ``obs``
    broadcasts against ``noise`` (``(B, 1, D)`` for ``(B, N, P)``)."""
    field = (acting_velocity if acting else fine_velocity)(nets, config, params, obs)
    return jnp.clip(euler_integrate(field, noise, config.flow_steps), -1.0, 1.0)


def qam_actions(nets: QamNetworks, config: QamAgentConfig, params: Params, obs: Array, noise: Array) -> Array:
    """The policy's output for ``obs (B, D)`` and start noises ``noise (B, N, P)``: ``(B, P)`` in [-1, 1], the
    best of the ``N = num_samples`` clipped Euler samples of the acting field under the ``q_agg`` of the online
    critics (no gradient use)."""
    if noise.shape[1] == 1:  # the paper's setting: one sample, no critic call
        return fine_flow_chunks(nets, config, params, obs, noise[:, 0])
    obs_b = obs[:, None, :]  # one state projection serves its N candidates
    candidates = fine_flow_chunks(nets, config, params, obs_b, noise)
    scores = aggregate_ensemble(nets.critic.apply({"params": params["critic"]}, obs_b, candidates), config.q_agg)
    best = jnp.argmax(scores, axis=-1)
    return jnp.take_along_axis(candidates, best[:, None, None], axis=1)[:, 0]


class QamDraws(NamedTuple):
    """Every random number one QAM update uses (``B`` batch, ``P`` policy width, ``T`` flow steps).
    :meth:`QamAgent.update_draws` makes them from a key; the fidelity harness passes the authors' recorded ones."""

    next_action: Any
    """The TD-target policy's draws at ``s_{t+h}`` (:meth:`QamAgent.policy_noise`; QAM: ``(B, N, P)``)."""
    bc_noise: Array
    """``(B, P)`` the start ``x0`` of the flow-matching loss."""
    bc_time: Array
    """``(B, 1)`` the flow times ``u`` of the flow-matching loss."""
    start_noise: Array
    """``(B, P)`` the start ``x_0`` of the adjoint-matching trajectory."""
    step_noise: Array
    """``(T - 1, B, P)`` its Brownian increments."""
    extra: Any = None
    """The draws of a variant's added loss terms (:meth:`QamAgent.extra_draws`)."""


def adjoint_objective(nets: QamNetworks, config: QamAgentConfig, fine_params: Params, fixed: Params,
                      base_params: Params, critic_params: Params, obs: Array, start_noise: Array,
                      step_noise: Array) -> tuple[Array, dict[str, Array]]:
    """The adjoint-matching loss of the fine-tuned field on states ``obs (B, D)``.

    Args:
        fine_params: the fine-tuned network's parameters (differentiated by the caller).
        fixed: all parameters without gradient (the trajectory is sampled with ``fixed['fine_flow']``).
        base_params: the BC field of adjoint matching (the target BC flow with ``target_actor``).
        critic_params: the critics whose ensemble-mean action-gradient starts the adjoint.
        start_noise: ``(B, P)`` the trajectory's start; step_noise: ``(T - 1, B, P)`` its increments.
    Returns:
        The scalar loss and metrics ``actor/adjoint_loss`` and ``actor/adjoint_abs_mean``,
        ``actor/adjoint_abs_max``, ``actor/adjoint_abs_std`` (of ``|a_T|``, the initial adjoint).
    """
    steps = config.flow_steps
    base_vars = {"params": base_params}

    def base(x: Array, u: Array) -> Array:
        return nets.flow.apply(base_vars, obs, x, u)

    fine = fine_velocity(nets, config, fixed, obs, base_params=base_params)
    states, final = sample_memoryless(fine, base, start_noise, step_noise)

    def mean_q(chunks: Array) -> Array:
        chunks = jnp.clip(chunks, -1.0, 1.0) if config.clip_adjoint else chunks
        return jnp.sum(jnp.mean(nets.critic.apply({"params": critic_params}, obs, chunks), axis=0))

    final_adjoint = -config.inv_temp * jax.grad(mean_q)(jax.lax.stop_gradient(final))
    adjoints = lean_adjoint(base, states, final_adjoint, config.adjoint)  # (T, B, P)
    times = flow_times(steps)[:, None, None]  # (T, 1, 1)
    v_fine = nets.fine_flow.apply({"params": fine_params}, obs[None], states, times)
    if not config.residual:
        v_fine = v_fine - nets.flow.apply(base_vars, obs[None], states, times)
    loss = adjoint_matching_loss(v_fine, adjoints, memoryless_sigma(times, steps))
    magnitude = jnp.abs(final_adjoint)
    return loss, {"actor/adjoint_loss": loss, "actor/adjoint_abs_mean": jnp.mean(magnitude),
                  "actor/adjoint_abs_max": jnp.max(magnitude), "actor/adjoint_abs_std": jnp.std(magnitude)}


def qam_loss(params: Params, agent: QamAgent, batch: Batch, draws: QamDraws,
             adjoint: bool = True) -> tuple[Array, dict[str, Array]]:
    """``critic_loss + bc_flow_loss + adjoint_loss`` of one update for given ``draws`` (each term reaches only its
    network); the TD-target action is ``agent.act``'s (QAM's fine-tuned flow, QAM-F's one-step policy, QAM-E's
    edit). ``adjoint=False`` leaves the adjoint-matching term out (BAM trains the fine-tuned flow otherwise)."""
    config, nets = agent.config, agent.networks
    fixed = jax.lax.stop_gradient(params)
    next_actions = agent.act(fixed, batch["next_observations"][:, -1], draws.next_action)
    c_loss, terms = agent_critic_objective(agent, params["critic"], batch, next_actions)
    info = critic_info(c_loss, terms)
    data = critic_actions(batch["actions"], config.chunked)  # (B, P): flat chunk or first action
    bc_loss = bc_flow_loss(nets.flow, params["flow"], batch, data, config.action_horizon, agent.action_dim,
                           draws.bc_noise, draws.bc_time, config.bc_weighting)
    info["actor/bc_flow_loss"] = bc_loss
    if not adjoint:
        return c_loss + bc_loss, info
    base_params = agent.target_params["flow"] if config.target_actor else fixed["flow"]
    critic_params = agent.target_params["critic"] if config.target_critic_grad else fixed["critic"]
    am_loss, am_info = adjoint_objective(nets, config, params["fine_flow"], fixed, base_params, critic_params,
                                         batch["observations"], draws.start_noise, draws.step_noise)
    info.update(am_info)
    info["actor/loss"] = bc_loss + am_loss
    return c_loss + bc_loss + am_loss, info


__all__ = ["QamAgent", "QamDraws", "QamNetworks", "acting_velocity", "adjoint_objective", "build_qam_networks",
           "fine_flow_chunks", "fine_velocity", "qam_actions", "qam_loss"]
