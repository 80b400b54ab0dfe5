"""Plumbing every agent shares: the batch contract check, the chunked critic objective, and one gradient
step (one Adam over all trained networks, then the Polyak target update).

An agent that uses :func:`gradient_step` is a ``flax.struct.PyTreeNode`` with the fields ``params``
(``{"critic": ..., <actor networks>}``), ``target_params`` (``{"critic": ...}``), ``opt_state``, ``rng``,
``step`` and the static fields ``config`` (with ``horizon``, ``lr`` and ``tau``), ``observation_dim`` and
``action_dim``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, ClassVar, Literal, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from qchunk.agents.losses import (
    critic_loss,
    distillation_loss,
    flow_interpolant,
    flow_matching_loss,
    q_maximisation_loss,
    temperature_loss,
)
from qchunk.agents.td import (
    aggregate_ensemble,
    critic_actions,
    pessimistic_ensemble,
    polyak_update,
    scan_updates,
    td_target,
)
from qchunk.errors import QchunkError
from qchunk.networks import CriticEnsemble, FlowVelocity, StateValue, euler_integrate

Array = jax.Array
Batch = dict[str, Array]
Params = dict[str, Any]

BATCH_KEYS = ("observations", "actions", "rewards", "masks", "valid", "next_observations")
"""Entries of the batch contract (see :mod:`qchunk.agents`)."""


def normal(key: Array, shape: tuple[int, ...]) -> Array:
    """Standard normal float32 samples of ``shape``, drawn as a flat vector and reshaped (XLA compiles a
    1-D threefry draw several times faster than a multi-dimensional one; the distribution is the same)."""
    return jax.random.normal(key, (math.prod(shape),), jnp.float32).reshape(shape)


def uniform(key: Array, shape: tuple[int, ...]) -> Array:
    """Uniform [0, 1) float32 samples of ``shape`` (flat draw, see :func:`normal`)."""
    return jax.random.uniform(key, (math.prod(shape),), jnp.float32).reshape(shape)


def as_batch(observations: Array) -> tuple[Array, bool]:
    """``(obs_dim,)`` or ``(B, obs_dim)`` observations as a float32 ``(B, obs_dim)`` batch, and whether the
    input was a single observation."""
    obs = jnp.asarray(observations, jnp.float32)
    if obs.ndim == 1:
        return obs[None], True
    return obs, False


def check_batch(agent: Any, batch: Batch) -> Batch:
    """Check the batch contract at trace time (shapes are static, so this costs nothing per step) and
    return the :data:`BATCH_KEYS` entries as float32 arrays."""
    missing = [k for k in BATCH_KEYS if k not in batch]
    if missing:
        raise QchunkError(f"batch lacks {', '.join(missing)}; a batch needs {', '.join(BATCH_KEYS)}")
    size, h = batch["observations"].shape[0], agent.config.horizon
    obs_dim, act = agent.observation_dim, agent.action_dim
    expected = {
        "observations": (size, obs_dim),
        "actions": (size, h, act),
        "rewards": (size, h),
        "masks": (size, h),
        "valid": (size, h),
        "next_observations": (size, h, obs_dim),
    }
    for key, shape in expected.items():
        if tuple(batch[key].shape) != shape:
            raise QchunkError(
                f"batch[{key!r}] has shape {tuple(batch[key].shape)}, expected {shape} "
                f"(batch {size}, horizon h={h}, obs dim {obs_dim}, action dim {act})"
            )
    return {k: jnp.asarray(batch[k], jnp.float32) for k in BATCH_KEYS}


def chunk_critic_objective(
    critic: Callable[..., Array],
    critic_params: Params,
    target_critic_params: Params,
    batch: Batch,
    next_actions: Array,
    *,
    discount: float,
    q_agg: Literal["mean", "min"],
    chunked: bool,
    next_q_bonus: Array | None = None,
    rho: float = 0.0,
) -> tuple[Array, dict[str, Array]]:
    """The TD loss of a critic ensemble on an h-step window, given the policy's action at ``s_{t+h}``.

    ``target = R^h + gamma**h * mask * (agg_k Q'_k(s_{t+h}, a') + bonus)`` (see :func:`td_target`) and the
    loss is the squared error weighted by ``valid[:, -1]``.

    Args:
        critic: the ensemble module (``critic.apply``), ``(obs, actions) -> (K, B)``.
        critic_params: online critic parameters (differentiated by the caller).
        target_critic_params: the Polyak-averaged target critic.
        batch: the batch contract; ``actions (B, h, A)``.
        next_actions: ``(B, P)`` policy outputs at ``next_observations[:, -1]``.
        discount: gamma.
        q_agg: ensemble reduction of the target (``mean``: no clipped double-Q; ``min``: clipped).
        chunked: the critic reads the flattened chunk (else the first action of the window).
        next_q_bonus: optional ``(B,)`` added to the aggregated next value before discounting (SAC's
            entropy backup ``-temperature * log pi(a'|s')``); None adds nothing.
        rho: pessimism of the target; non-zero replaces ``q_agg`` by
            :func:`~qchunk.agents.td.pessimistic_ensemble` (``mean - rho * std`` over the K target critics).
    Returns:
        ``(loss, terms)`` with ``terms = {"q": (K, B), "target": (B,), "next_q": (B,)}``.
    """
    next_obs = batch["next_observations"][:, -1]
    next_qs = critic.apply({"params": target_critic_params}, next_obs, next_actions)  # (K, B)
    next_q = pessimistic_ensemble(next_qs, rho) if rho else aggregate_ensemble(next_qs, q_agg)
    if next_q_bonus is not None:
        next_q = next_q + next_q_bonus
    target = td_target(batch["rewards"], batch["masks"], next_q, discount)
    data = critic_actions(batch["actions"], chunked)  # (B, P): flat chunk or first action
    q = critic.apply({"params": critic_params}, batch["observations"], data)  # (K, B)
    loss = critic_loss(q, target, batch["valid"][:, -1])
    return loss, {"q": q, "target": target, "next_q": next_q}


def agent_critic_objective(agent: Any, critic_params: Params, batch: Batch, next_actions: Array,
                           next_q_bonus: Array | None = None) -> tuple[Array, dict[str, Array]]:
    """:func:`chunk_critic_objective` of ``agent``'s critic ensemble against its target critic, with the
    agent's ``discount``, ``q_agg``, ``chunked`` and ``rho``; ``next_actions (B, P)`` the policy's actions at
    ``s_{t+h}``, ``next_q_bonus`` as there. Returns ``(loss, terms)`` (``q (K, B)``, ``target``, ``next_q``)."""
    config = agent.config
    return chunk_critic_objective(agent.networks.critic, critic_params, agent.target_params["critic"], batch,
                                  next_actions, discount=config.discount, q_agg=config.q_agg, chunked=config.chunked,
                                  next_q_bonus=next_q_bonus, rho=config.rho)


def critic_info(loss: Array, terms: dict[str, Array]) -> dict[str, Array]:
    """The ``critic/*`` metrics of an update from :func:`chunk_critic_objective`'s output."""
    return {
        "critic/loss": loss,
        "critic/q_mean": jnp.mean(terms["q"]),
        "critic/q_max": jnp.max(terms["q"]),
        "critic/q_min": jnp.min(terms["q"]),
        "critic/target_mean": jnp.mean(terms["target"]),
        "critic/next_q_mean": jnp.mean(terms["next_q"]),
    }


@functools.partial(jax.jit, static_argnums=(0, 2))
def init_module(module: Any, key: Array, shapes: tuple[tuple[int, ...], ...]) -> Params:
    """``module``'s parameters for zero example inputs of ``shapes``, as one compiled call per module
    definition (shared by agents whose networks coincide, e.g. the critics of qc and qc-fql)."""
    return module.init(key, *(jnp.zeros(shape, jnp.float32) for shape in shapes))["params"]


def critic_and_flow(config: Any, action_dim: int) -> tuple[CriticEnsemble, FlowVelocity]:
    """The flow family's critic ensemble over (state, policy output) and BC flow velocity field for ``config``
    (``critic_*`` / ``actor_*`` sizes) with per-step action dimension ``action_dim``."""
    width = config.policy_dim(action_dim)
    critic = CriticEnsemble(config.critic_hidden_dims, config.num_critics, config.critic_layer_norm)
    return critic, FlowVelocity(config.actor_hidden_dims, width, config.actor_layer_norm)


class ValueFlowNetworks(NamedTuple):
    """The (stateless) module definitions of the agents with a critic ensemble, a state value and a flow policy
    (IFQL, FAWAC)."""

    critic: CriticEnsemble
    """K critics over (state, policy output)."""
    value: StateValue
    """The state value ``V(s)`` (the critics' widths and LayerNorm)."""
    flow: FlowVelocity
    """The flow velocity field."""


@functools.lru_cache(maxsize=64)
def build_value_flow_networks(config: Any, action_dim: int) -> ValueFlowNetworks:
    """:class:`ValueFlowNetworks` for ``config`` with per-step action dimension ``action_dim``."""
    critic, flow = critic_and_flow(config, action_dim)
    return ValueFlowNetworks(critic, StateValue(config.critic_hidden_dims, config.critic_layer_norm), flow)


def init_value_flow(config: Any, observation_dim: int, action_dim: int, seed: int) -> tuple[Array, Params]:
    """The agent's key and the independently initialised ``critic``, ``value`` and ``flow`` parameters of
    :func:`build_value_flow_networks` from ``seed``."""
    nets = build_value_flow_networks(config, int(action_dim))
    rng, k_critic, k_value, k_flow = seed_keys(seed, 3)
    obs, act, time = (1, int(observation_dim)), (1, config.policy_dim(int(action_dim))), (1, 1)
    return rng, {"critic": init_module(nets.critic, k_critic, (obs, act)),
                 "value": init_module(nets.value, k_value, (obs,)),
                 "flow": init_module(nets.flow, k_flow, (obs, act, time))}


def seed_keys(seed: int, count: int) -> Array:
    """``count + 1`` keys from integer ``seed``: the agent's own key first, then ``count`` initialisation keys
    (unpack as ``rng, k_a, k_b = seed_keys(seed, 2)``)."""
    return jax.random.split(jax.random.PRNGKey(int(seed) % 2**32), count + 1)


def integrate_flow(flow: Callable[..., Array], flow_params: Params, obs: Array, noise: Array,
                   steps: int) -> Array:
    """The Euler solution (``steps`` steps, :func:`~qchunk.networks.euler_integrate`) of a BC flow velocity
    field ``flow.apply`` from ``noise (..., P)``, clipped to [-1, 1]. ``obs`` must broadcast against
    ``noise`` (``(B, 1, D)`` for ``(B, N, P)``: the state is projected once)."""
    variables = {"params": flow_params}

    def velocity(x: Array, u: Array) -> Array:
        return flow.apply(variables, obs, x, u)

    return jnp.clip(euler_integrate(velocity, noise, steps), -1.0, 1.0)


def flow_policy_q(flow: Callable[..., Array], flow_params: Params, critic: Callable[..., Array],
                  critic_params: Params, obs: Array, noise: Array, steps: int) -> Array:
    """The ensemble-mean critic value ``(B,)`` of the flow policy's clipped Euler sample from ``noise (B, P)``
    (:func:`integrate_flow`, ``steps`` steps), differentiable in ``flow_params`` through every Euler step
    (backpropagation through time: FBRAC's policy objective). The critic is held fixed (stop-gradient applied
    here); ``obs (B, D)``."""
    actions = integrate_flow(flow, flow_params, obs, noise, steps)
    qs = critic.apply({"params": jax.lax.stop_gradient(critic_params)}, obs, actions)  # (K, B)
    return jnp.mean(qs, axis=0)


def bc_flow_loss(flow: Callable[..., Array], flow_params: Params, batch: Batch, data: Array, steps: int,
                 action_dim: int, noise: Array, times: Array, weighting: Literal["step", "chunk"] = "step",
                 sample_weights: Array | None = None) -> Array:
    """The flow-matching behaviour-cloning loss of a velocity field on the data chunks (or first actions), for
    given draws.

    The straight path of :func:`~qchunk.agents.losses.flow_interpolant` from ``noise`` to ``data`` at ``times``
    and :func:`~qchunk.agents.losses.flow_matching_loss` over the ``steps`` policy steps, the steps past an
    episode end weighted by ``batch['valid']`` as ``weighting`` says (``step``: the Q-chunking code;
    ``chunk``: the QAM code).

    Args:
        flow: the velocity module (``flow.apply``), ``(obs, x_u, u) -> (B, P)``.
        flow_params: its parameters (differentiated by the caller).
        batch: the batch contract (``observations``, ``valid`` are read).
        data: ``(B, P)`` the flattened data chunks (``P = steps * action_dim``) or first actions.
        steps: policy steps in ``data`` (the agent's ``action_horizon``).
        action_dim: width A of one action.
        noise: ``(B, P)`` the path's start ``x0 ~ N(0, I)``; times: ``(B, 1)`` flow times ``u ~ U[0, 1)``.
        weighting: ``step`` or ``chunk`` (:func:`~qchunk.agents.losses.flow_matching_loss`).
        sample_weights: optional ``(B,)`` weights of the chunks (FAWAC's advantage weights), as given.
    """
    size = data.shape[0]
    x_u, velocity_target = flow_interpolant(noise, data, times)
    velocity = flow.apply({"params": flow_params}, batch["observations"], x_u, times)
    return flow_matching_loss(velocity.reshape(size, steps, action_dim),
                              velocity_target.reshape(size, steps, action_dim), batch["valid"], weighting,
                              sample_weights)


def bc_flow_objective(flow: Callable[..., Array], flow_params: Params, batch: Batch, data: Array, steps: int,
                      action_dim: int, noise_key: Array, time_key: Array,
                      weighting: Literal["step", "chunk"] = "step") -> Array:
    """:func:`bc_flow_loss` with ``x0 = normal(noise_key, data.shape)`` and ``u = uniform(time_key, (B, 1))``."""
    noise = normal(noise_key, data.shape)
    times = uniform(time_key, (data.shape[0], 1))
    return bc_flow_loss(flow, flow_params, batch, data, steps, action_dim, noise, times, weighting)


def one_step_objective(onestep: Callable[..., Array], onestep_params: Params, critic: Callable[..., Array],
                       critic_params: Params, obs: Array, noise: Array, flow_actions: Array, alpha: float,
                       normalize_q: bool = False) -> tuple[Array, dict[str, Array]]:
    """FQL's one-step policy loss ``alpha * distill + q_loss`` (QC-FQL, FQL; QAM-F distils the fine-tuned flow).

    ``distill`` is :func:`~qchunk.agents.losses.distillation_loss` of ``mu(s, z)`` towards ``flow_actions`` (the
    flow's clipped Euler solution from the SAME ``z``, a constant), ``q_loss`` is
    :func:`~qchunk.agents.losses.q_maximisation_loss` of the ensemble-mean critic at ``clip(mu(s, z))``.

    Args:
        onestep: the one-step policy module, ``(obs, z) -> (B, P)``; ``onestep_params`` differentiated.
        critic: the ensemble module; ``critic_params`` held fixed (stop-gradient applied here).
        obs: ``(B, D)`` states; ``noise``: ``(B, P)`` the noise ``z``; ``flow_actions``: ``(B, P)`` the target.
        alpha: the distillation weight; ``normalize_q``: FQL's ``normalize_q_loss``.
    Returns:
        The scalar loss and ``actor/distill_loss``, ``actor/q_loss``, ``actor/q_mean``.
    """
    mu = onestep.apply({"params": onestep_params}, obs, noise)
    d_loss = distillation_loss(mu, flow_actions)
    qs = critic.apply({"params": jax.lax.stop_gradient(critic_params)}, obs, jnp.clip(mu, -1.0, 1.0))
    q = jnp.mean(qs, axis=0)
    q_loss = q_maximisation_loss(q, normalize_q)
    return alpha * d_loss + q_loss, {"actor/distill_loss": d_loss, "actor/q_loss": q_loss,
                                     "actor/q_mean": jnp.mean(q)}


def temperature_objective(log_temperature: Array, log_prob: Array,
                          target_entropy: float) -> tuple[Array, dict[str, Array]]:
    """The SAC family's temperature loss (:func:`~qchunk.agents.losses.temperature_loss`) with the policy's
    ``log_prob (B,)`` held fixed, and its metrics ``temperature/loss``, ``temperature/value``."""
    t_loss = temperature_loss(log_temperature, jax.lax.stop_gradient(log_prob), target_entropy)
    return t_loss, {"temperature/loss": t_loss, "temperature/value": jnp.exp(jax.lax.stop_gradient(log_temperature))}


def draws_loss_fn(params: Params, agent: Any, batch: Batch, key: Array) -> tuple[Array, dict[str, Array]]:
    """The ``loss_fn`` of an agent whose loss takes its random numbers as arrays: ``agent.update_draws(key, B)``
    (the thin layer from a key to the draws) fed to ``type(agent).loss_from_draws(params, agent, batch, draws)``.
    The fidelity harness (:mod:`qchunk.fidelity`) calls ``loss_from_draws`` with the authors' recorded draws."""
    draws = agent.update_draws(key, batch["observations"].shape[0])
    return type(agent).loss_from_draws(params, agent, batch, draws)


def make_optimizer(lr: float, max_grad_norm: float = 0.0) -> optax.GradientTransformation:
    """One Adam over all trained parameters of an agent: the only optimizer factory (an agent's is
    :attr:`AgentBase.optimizer`; its state is ``AgentBase.opt_state``). ``max_grad_norm > 0`` first clips the
    global norm of the whole gradient to that value (QAM); 0, the default, is plain Adam."""
    if max_grad_norm > 0.0:
        return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(lr))
    return optax.adam(lr)


def gradient_step(
    agent: Any,
    loss_fn: Callable[[Params, Any, Batch, Array], tuple[Array, dict[str, Array]]],
    batch: Batch,
) -> tuple[Any, dict[str, Array]]:
    """One update of ``agent``: ``loss_fn(params, agent, batch, key)`` differentiated w.r.t. ``params``,
    one Adam step, then ``target <- tau * online + (1 - tau) * target`` for every network in
    ``target_params`` (the critic; DSRL's BC flow too) from the parameters of *before* the step (as the
    reference implementations). Returns the new agent and ``loss_fn``'s metrics plus
    ``optim/grad_norm``.

    Every loss term must reach only its own networks (actor terms see the critic through
    ``stop_gradient``); then one Adam over all parameters equals one Adam per network (Adam is
    elementwise and nothing clips the global norm).
    """
    batch = check_batch(agent, batch)
    rng, key = jax.random.split(agent.rng)
    grads, info = jax.grad(loss_fn, has_aux=True)(agent.params, agent, batch, key)
    new_agent, norm = apply_gradients(agent, grads)
    info["optim/grad_norm"] = norm
    return new_agent.replace(rng=rng), info


def apply_gradients(agent: Any, grads: Params) -> tuple[Any, Array]:
    """``agent`` after one optimizer step with ``grads`` (shaped as ``agent.params``) and the Polyak step (rate
    :attr:`AgentBase.target_rate`) of every network in ``target_params`` from the parameters of *before* the step,
    ``step + 1``; and the gradient's global norm. The key ``agent.rng`` is left to the caller."""
    updates, opt_state = agent.optimizer.update(grads, agent.opt_state, agent.params)
    params = optax.apply_updates(agent.params, updates)
    rate = agent.target_rate
    targets = {name: polyak_update(agent.params[name], target, rate) for name, target in agent.target_params.items()}
    new_agent = agent.replace(params=params, target_params=targets, opt_state=opt_state, step=agent.step + 1)
    return new_agent, optax.global_norm(grads)


class LearnedTemperature:
    """Mixin of the agents with a learned entropy temperature ``params["log_temperature"]`` (the SAC family,
    FEdit, DSRL and QAM-E)."""

    params: Params

    @property
    def temperature(self) -> Array:
        """The current entropy temperature ``exp(log_temperature)``."""
        return jnp.exp(self.params["log_temperature"])


class AgentBase(flax.struct.PyTreeNode):
    """The state and shared methods of every agent. A subclass defines ``loss_fn``, a ``networks``
    property (with a ``critic`` ensemble), ``create`` and its policy ``sample_actions`` (``eval_actions`` acts
    the same way unless overridden).
    """

    params: Params
    """Trained parameters: ``{"critic": ..., <actor networks>}``, flax ``params`` trees."""
    target_params: Params
    """``{"critic": ...}``, the Polyak-averaged target critic."""
    opt_state: Any
    """Adam state over ``params``."""
    rng: Array
    """Key consumed (split) by every update."""
    step: Array
    """Number of updates applied (int32 scalar)."""
    config: Any = flax.struct.field(pytree_node=False)
    """The resolved settings (an :class:`~qchunk.agents.config.AgentConfig`)."""
    observation_dim: int = flax.struct.field(pytree_node=False)
    """Width of a state vector."""
    action_dim: int = flax.struct.field(pytree_node=False)
    """Width A of ONE action (not of a chunk)."""

    loss_fn: ClassVar[Callable[[Params, Any, Batch, Array], tuple[Array, dict[str, Array]]]]
    """``(params, agent, batch, key) -> (loss, metrics)`` of one update (a ``staticmethod``)."""

    @classmethod
    def from_params(cls, config: Any, observation_dim: int, action_dim: int, params: Params, target_params: Params,
                    rng: Array) -> Any:
        """A fresh agent (step 0) with these parameters, targets and key, and its :attr:`optimizer`'s initial
        state over ``params``."""
        agent = cls(params=params, target_params=target_params, opt_state=None, rng=rng,
                    step=jnp.zeros((), jnp.int32), config=config, observation_dim=int(observation_dim),
                    action_dim=int(action_dim))
        return agent.replace(opt_state=agent.optimizer.init(params))

    @property
    def optimizer(self) -> optax.GradientTransformation:
        """The agent's optimizer (its state is :attr:`opt_state`)."""
        return make_optimizer(self.config.lr)

    @property
    def target_rate(self) -> Any:
        """The Polyak rate of this update's target step: ``config.tau`` (ReBRAC moves its targets on every
        ``target_every``-th update only, and 0 on the others)."""
        return self.config.tau

    def as_chunks(self, actions: Array, single: bool) -> Array:
        """Policy outputs ``(B, P)`` as chunks ``(B, H, A)``, or ``(H, A)`` when ``single`` (the
        :func:`as_batch` flag of the observations)."""
        actions = actions.reshape(actions.shape[0], self.action_horizon, self.action_dim)
        return actions[0] if single else actions

    def eval_actions(self, observations: Array, rng: Array) -> Array:
        """Evaluation actions: the same stochastic policy as ``sample_actions`` (the flow-based agents act
        stochastically in evaluation too, as the paper and the QAM release)."""
        return self.sample_actions(observations, rng)

    @property
    def horizon(self) -> int:
        """Data window length h the chunk sampler must produce (``config.horizon``)."""
        return self.config.horizon

    @property
    def action_horizon(self) -> int:
        """Actions executed open-loop per policy query (``h`` if chunked, else 1)."""
        return self.config.action_horizon

    @property
    def num_params(self) -> int:
        """Number of trained parameters (the target critic not counted)."""
        return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(self.params)))

    @jax.jit
    def update(self, batch: Batch) -> tuple[Any, dict[str, Array]]:
        """One gradient step on ``batch``; returns the new agent and scalar metrics (``critic/loss``,
        ``critic/q_mean``, ``actor/...``)."""
        return gradient_step(self, type(self).loss_fn, batch)

    @jax.jit
    def update_many(self, batches: Batch) -> tuple[Any, dict[str, Array]]:
        """``U`` successive updates in one ``lax.scan``; every batch entry has a leading axis ``U``
        (e.g. ``observations (U, B, obs_dim)``). Metrics come back per update, shape ``(U,)`` each."""
        loss_fn = type(self).loss_fn
        return scan_updates(lambda agent, batch: gradient_step(agent, loss_fn, batch), self, batches)

    @jax.jit
    def q_values(self, observations: Array, actions: Array) -> Array:
        """Online critic values ``(K, ...)`` of ``observations (..., obs_dim)`` and policy outputs
        ``actions (..., H, A)`` (one more axis than the observations) or flattened ``(..., H*A)``;
        leading shapes broadcast."""
        if actions.ndim == observations.ndim + 1:
            actions = actions.reshape(*actions.shape[:-2], actions.shape[-2] * actions.shape[-1])
        return self.networks.critic.apply({"params": self.params["critic"]}, observations, actions)


class ValueFlowAgent(AgentBase):
    """The shared part of the agents with a critic ensemble, a state value and a flow policy (IFQL, FAWAC):
    their networks (:class:`ValueFlowNetworks`) and their creation; subclasses define the loss and acting."""

    @classmethod
    def create(cls, config: Any, observation_dim: int, action_dim: int, seed: int = 0) -> Any:
        """Initialise the three networks (independently), the target critic (a copy) and Adam from ``seed``."""
        rng, params = init_value_flow(config, observation_dim, action_dim, seed)
        return cls.from_params(config, observation_dim, action_dim, params, {"critic": params["critic"]}, rng)

    @property
    def networks(self) -> ValueFlowNetworks:
        """The flax module definitions."""
        return build_value_flow_networks(self.config, self.action_dim)
