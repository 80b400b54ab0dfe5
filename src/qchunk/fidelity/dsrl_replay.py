"""Replay of the QAM repository's ``agents/dsrl.py`` (DSRL) in :class:`~qchunk.agents.dsrl.DsrlAgent`."""

from __future__ import annotations

from typing import Any

from qchunk.agents import create_agent
from qchunk.agents.config import DsrlAgentConfig
from qchunk.agents.dsrl import DsrlDraws
from qchunk.fidelity.fixture import Fixture
from qchunk.fidelity.replay import Check, Replay, compare_update, draw_queue, event_last, qam_repo_fields
from qchunk.fidelity.transplant import check_same_structure, critic_ensemble, log_param, tanh_normal, vector_field


def dsrl_config(authors: dict[str, Any], horizon: int) -> DsrlAgentConfig:
    """The qchunk config of an authors' ``agents/dsrl.py`` config (``get_config()`` with its overrides; the
    resolved ``target_entropy`` is ``-target_entropy_multiplier * P``)."""
    width = horizon * authors["action_dim"] if authors["action_chunking"] else authors["action_dim"]
    return DsrlAgentConfig(
        agent="dsrl", noise_scale=authors["noise_scale"],
        latent_flow="target" if authors["use_target_latent"] else "online", init_temperature=1.0,
        target_entropy_per_dim=authors["target_entropy"] / width, **qam_repo_fields(authors, horizon))


def dsrl_params(tree: dict[str, Any]) -> dict[str, Any]:
    """qchunk's DSRL ``params`` from the authors' ``modules_*`` tree (parameters or gradients)."""
    return {"critic": critic_ensemble(tree["modules_critic"]),
            "latent_critic": critic_ensemble(tree["modules_z_critic"]),
            "flow": vector_field(tree["modules_actor_bc_flow"]), "actor": tanh_normal(tree["modules_actor"]),
            "log_temperature": log_param(tree["modules_alpha"])}


def dsrl_targets(tree: dict[str, Any], config: DsrlAgentConfig) -> dict[str, Any]:
    """qchunk's ``target_params``: the target critic and, with ``latent_flow='target'``, the target BC flow (the
    authors keep and average a target flow either way; with ``use_target_latent=False`` nothing reads it)."""
    targets = {"critic": critic_ensemble(tree["modules_target_critic"])}
    if config.latent_flow == "target":
        targets["flow"] = vector_field(tree["modules_target_actor_bc_flow"])
    return targets


def replay_dsrl(fixture: Fixture, changes: dict[str, Any]) -> list[Check]:
    """Every check of an ``agents/dsrl.py`` fixture."""
    meta = fixture.meta
    config = dsrl_config(fixture.config, meta["horizon"]).replace(**changes)
    agent = create_agent(config, meta["obs_dim"], meta["action_dim"], seed=0)
    authors = fixture.tree("params")
    params, targets = dsrl_params(authors), dsrl_targets(authors, config)
    check_same_structure(params, agent.params, f"{fixture.name} params")
    check_same_structure(targets, agent.target_params, f"{fixture.name} targets")
    agent = agent.from_params(config, meta["obs_dim"], meta["action_dim"], params, targets, agent.rng)

    batch, width, n = meta["batch"], config.policy_dim(meta["action_dim"]), config.num_samples
    # The authors' call order: critic_loss (sample_actions at s_{t+h}, the distillation noise), then actor_loss
    # (the flow-matching x0 and t, the actor's sample).
    take = draw_queue(fixture.draws("update"))
    draws = DsrlDraws(next_action=event_last(take, (batch, n, width)), distill_noise=take((batch, width)),
                      bc_noise=take((batch, width)), bc_time=take((batch, 1)), actor=event_last(take, (batch, width)))
    if take.remaining():
        raise ValueError(f"{fixture.name}: {take.remaining()} recorded draws not used")
    act = draw_queue(fixture.draws("act"))
    act_noise = event_last(act, (batch, n, width))
    if act.remaining():
        raise ValueError(f"{fixture.name}: {act.remaining()} recorded acting draws not used")

    metrics = {
        "critic/total_loss": lambda i: i["critic/loss"] + i["critic/latent_distill_loss"],
        "critic/critic_loss": lambda i: i["critic/loss"],
        "critic/distill_loss": lambda i: i["critic/latent_distill_loss"],
        "critic/q_mean": lambda i: i["critic/q_mean"],
        "critic/q_max": lambda i: i["critic/q_max"],
        "critic/q_min": lambda i: i["critic/q_min"],
        "actor/total_loss": lambda i: i["actor/bc_flow_loss"] + i["actor/loss"] + i["temperature/loss"],
        "actor/flow_loss": lambda i: i["actor/bc_flow_loss"],
        "actor/actor_loss": lambda i: i["actor/loss"],
        "actor/alpha_loss": lambda i: i["temperature/loss"],
        "actor/alpha": lambda i: i["temperature/value"],
        "actor/entropy": lambda i: i["actor/entropy"],
        "actor/action_std": lambda i: i["actor/std_mean"],
        "actor/q": lambda i: i["actor/q_mean"],
    }
    rep = Replay(agent, draws, act_noise, dsrl_params, lambda t: dsrl_targets(t, config), metrics,
                 unmapped=("modules_target_critic", "modules_target_actor_bc_flow"))
    return compare_update(fixture, rep)
