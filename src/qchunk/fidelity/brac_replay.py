"""Replay of the QAM repository's behaviour-regularised actor-critics in qchunk: its ReBRAC agent module in
:class:`~qchunk.agents.ReBracAgent`, its FBRAC agent module in :class:`~qchunk.agents.FBracAgent`."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from qchunk.agents import FBracAgentConfig, ReBracAgentConfig, create_agent
from qchunk.fidelity.fixture import Fixture
from qchunk.fidelity.replay import CRITIC_METRICS, Check, Replay, compare_update, draw_queue
from qchunk.fidelity.transplant import check_same_structure, critic_ensemble, deterministic_actor, vector_field


def shared_fields(authors: dict[str, Any], horizon: int) -> dict[str, Any]:
    """The qchunk config fields of the QAM repository's config keys these agents share (no flow, no best-of-N)."""
    return dict(horizon=horizon, chunked=bool(authors["action_chunking"]), discount=authors["discount"],
                tau=authors["tau"], lr=authors["lr"], actor_hidden_dims=tuple(authors["actor_hidden_dims"]),
                critic_hidden_dims=tuple(authors["value_hidden_dims"]), actor_layer_norm=authors["actor_layer_norm"],
                critic_layer_norm=authors["value_layer_norm"], num_critics=authors["num_qs"], rho=authors["rho"],
                q_agg="mean")


def rebrac_config(authors: dict[str, Any], horizon: int) -> ReBracAgentConfig:
    """The qchunk config of an authors' ReBRAC config (``get_config()`` with its overrides)."""
    return ReBracAgentConfig(alpha_actor=authors["alpha_actor"], actor_noise=authors["actor_noise"],
                             actor_noise_clip=authors["actor_noise_clip"], target_every=authors["actor_freq"],
                             actor_init_scale=authors["actor_fc_scale"], **shared_fields(authors, horizon))


def rebrac_params(tree: dict[str, Any]) -> dict[str, Any]:
    """qchunk's ReBRAC ``params`` from the authors' ``modules_*`` tree (parameters or gradients)."""
    return {"critic": critic_ensemble(tree["modules_critic"]), "actor": deterministic_actor(tree["modules_actor"])}


def rebrac_targets(tree: dict[str, Any]) -> dict[str, Any]:
    """qchunk's ReBRAC ``target_params`` (target critic and target actor)."""
    return {"critic": critic_ensemble(tree["modules_target_critic"]),
            "actor": deterministic_actor(tree["modules_target_actor"])}


def replay_rebrac(fixture: Fixture, changes: dict[str, Any]) -> list[Check]:
    """Every check of an authors' ReBRAC fixture. The authors' ``update(full_update=...)`` says whether the step
    moves the targets; qchunk decides it from the update count, so the agent's ``step`` is set to match."""
    meta = fixture.meta
    config = rebrac_config(fixture.config, meta["horizon"]).replace(**changes)
    agent = create_agent(config, meta["obs_dim"], meta["action_dim"], seed=0)
    authors = fixture.tree("params")
    params, targets = rebrac_params(authors), rebrac_targets(authors)
    check_same_structure(params, agent.params, f"{fixture.name} params")
    check_same_structure(targets, agent.target_params, f"{fixture.name} targets")
    agent = agent.from_params(config, meta["obs_dim"], meta["action_dim"], params, targets, agent.rng)
    moves_targets = bool(meta["update_kwargs"].get("full_update", True))
    agent = agent.replace(step=jnp.asarray(config.target_every - 1 if moves_targets else 0, jnp.int32))

    shape = (meta["batch"], config.policy_dim(meta["action_dim"]))
    take = draw_queue(fixture.draws("update"))
    draws = agent.update_draws(agent.rng, meta["batch"])._replace(next_action=take(shape))  # the TD target's noise
    if take.remaining():
        raise ValueError(f"{fixture.name}: {take.remaining()} recorded draws not used")
    act = draw_queue(fixture.draws("act"))
    act_noise = act(shape)
    if act.remaining():
        raise ValueError(f"{fixture.name}: {act.remaining()} recorded acting draws not used")

    metrics = {
        **CRITIC_METRICS,
        "actor/total_loss": lambda i: i["actor/loss"],
        "actor/actor_loss": lambda i: i["actor/q_loss"],
        "actor/bc_loss": lambda i: i["actor/bc_loss"],
        "actor/mse": lambda i: i["actor/mse"],
        # the std of the authors' constant-std Gaussian actor, exp(0), whose mode is qchunk's deterministic actor
        "actor/action_std": lambda i: np.float32(1.0),
    }
    rep = Replay(agent, draws, act_noise, rebrac_params, rebrac_targets, metrics,
                 unmapped=("modules_target_critic", "modules_target_actor"))
    return compare_update(fixture, rep)


def fbrac_config(authors: dict[str, Any], horizon: int) -> FBracAgentConfig:
    """The qchunk config of an authors' FBRAC config (``get_config()`` with its overrides)."""
    return FBracAgentConfig(alpha=authors["alpha"], flow_steps=authors["flow_steps"], num_samples=authors["best_of_n"],
                            bc_weighting="chunk", **shared_fields(authors, horizon))


def fbrac_params(tree: dict[str, Any]) -> dict[str, Any]:
    """qchunk's FBRAC ``params`` from the authors' ``modules_*`` tree (parameters or gradients)."""
    return {"critic": critic_ensemble(tree["modules_critic"]), "flow": vector_field(tree["modules_actor_flow"])}


def replay_fbrac(fixture: Fixture, changes: dict[str, Any]) -> list[Check]:
    """Every check of an authors' FBRAC fixture."""
    meta = fixture.meta
    config = fbrac_config(fixture.config, meta["horizon"]).replace(**changes)
    agent = create_agent(config, meta["obs_dim"], meta["action_dim"], seed=0)
    authors = fixture.tree("params")
    params, targets = fbrac_params(authors), {"critic": critic_ensemble(authors["modules_target_critic"])}
    check_same_structure(params, agent.params, f"{fixture.name} params")
    agent = agent.from_params(config, meta["obs_dim"], meta["action_dim"], params, targets, agent.rng)

    batch, width, n = meta["batch"], config.policy_dim(meta["action_dim"]), config.num_samples
    # The authors' call order: critic_loss (sample_actions at s_{t+h}), then actor_loss (the flow-matching x0 and
    # t, the start noises of the differentiated samples).
    take = draw_queue(fixture.draws("update"))
    draws = agent.update_draws(agent.rng, batch)._replace(  # the agent's draws structure, the recorded numbers
        next_action=take((batch, n, width)), bc_noise=take((batch, width)), bc_time=take((batch, 1)),
        actor_noise=take((batch, width)))
    if take.remaining():
        raise ValueError(f"{fixture.name}: {take.remaining()} recorded draws not used")
    act = draw_queue(fixture.draws("act"))
    act_noise = act((batch, n, width))
    if act.remaining():
        raise ValueError(f"{fixture.name}: {act.remaining()} recorded acting draws not used")
    metrics = {
        **CRITIC_METRICS,
        "actor/actor_loss": lambda i: i["actor/loss"],
        "actor/bc_flow_loss": lambda i: i["actor/bc_flow_loss"],
    }
    rep = Replay(agent, draws, act_noise, fbrac_params,
                 lambda t: {"critic": critic_ensemble(t["modules_target_critic"])}, metrics,
                 unmapped=("modules_target_critic",))
    return compare_update(fixture, rep)
