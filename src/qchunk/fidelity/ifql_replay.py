"""Replay of the QAM repository's IFQL agent (``agents/ifql.py``) in :class:`~qchunk.agents.ifql.IfqlAgent`.

The authors' ``sample_actions`` takes one state, so the recorder acts state by state (``act_per_state``): the
``B`` recorded draws ``(N, P)`` are the rows of qchunk's ``(B, N, P)`` policy noise."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from qchunk.agents import create_agent
from qchunk.agents.ifql import IfqlAgentConfig, IfqlDraws
from qchunk.fidelity.fixture import Fixture
from qchunk.fidelity.replay import Check, Replay, compare_update, draw_queue, qam_repo_fields
from qchunk.fidelity.transplant import check_same_structure, critic_ensemble, state_value, vector_field


def ifql_config(authors: dict[str, Any], horizon: int) -> IfqlAgentConfig:
    """The qchunk config of an authors' ``agents/ifql.py`` config (``get_config()`` with its overrides): its N is
    ``num_samples`` (no ``best_of_n``), its candidates ranked by the minimum of the online critics."""
    fields = qam_repo_fields({**authors, "best_of_n": authors["num_samples"]}, horizon)
    return IfqlAgentConfig(agent="ifql", kappa=authors["kappa"], select_agg="min", **fields)


def ifql_params(tree: dict[str, Any]) -> dict[str, Any]:
    """qchunk's IFQL ``params`` from the authors' ``modules_*`` tree (parameters or gradients)."""
    return {"critic": critic_ensemble(tree["modules_critic"]), "value": state_value(tree["modules_value"]),
            "flow": vector_field(tree["modules_actor_flow"])}


def ifql_targets(tree: dict[str, Any]) -> dict[str, Any]:
    """qchunk's ``target_params``: the target critic."""
    return {"critic": critic_ensemble(tree["modules_target_critic"])}


def replay_ifql(fixture: Fixture, changes: dict[str, Any]) -> list[Check]:
    """Every check of an ``agents/ifql.py`` fixture (``changes`` applied to the derived config)."""
    meta = fixture.meta
    config = ifql_config(fixture.config, meta["horizon"]).replace(**changes)
    agent = create_agent(config, meta["obs_dim"], meta["action_dim"], seed=0)
    authors = fixture.tree("params")
    params, targets = ifql_params(authors), ifql_targets(authors)
    check_same_structure(params, agent.params, f"{fixture.name} params")
    check_same_structure(targets, agent.target_params, f"{fixture.name} targets")
    agent = agent.from_params(config, meta["obs_dim"], meta["action_dim"], params, targets, agent.rng)

    batch, width, n = meta["batch"], config.policy_dim(meta["action_dim"]), config.num_samples
    take = draw_queue(fixture.draws("update"))
    draws = IfqlDraws(take((batch, width)), take((batch, 1)))  # actor_loss: x0, then u
    if take.remaining():
        raise ValueError(f"{fixture.name}: {take.remaining()} recorded draws not used")
    act = draw_queue(fixture.draws("act"))
    act_noise = jnp.stack([act((n, width)) for _ in range(batch)])  # one sample_actions call per state
    if act.remaining():
        raise ValueError(f"{fixture.name}: {act.remaining()} recorded acting draws not used")
    metrics = {
        "critic/critic_loss": lambda i: i["critic/loss"],
        "critic/q_mean": lambda i: i["critic/target_mean"],  # the authors' q is the TD target
        "critic/q_max": lambda i: i["critic/target_max"],
        "critic/q_min": lambda i: i["critic/target_min"],
        "value/value_loss": lambda i: i["value/loss"],
        "value/v_mean": lambda i: i["value/v_mean"],
        "value/v_max": lambda i: i["value/v_max"],
        "value/v_min": lambda i: i["value/v_min"],
        "actor/actor_loss": lambda i: i["actor/bc_flow_loss"],
    }
    rep = Replay(agent, draws, act_noise, ifql_params, ifql_targets, metrics, unmapped=("modules_target_critic",))
    return compare_update(fixture, rep)
