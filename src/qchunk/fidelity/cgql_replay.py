"""Replay of the QAM repository's ``agents/cgql.py`` (classifier-guidance Q-learning in its modes ``simple``,
``mse`` and ``linex``) in :class:`~qchunk.agents.cgql.CgqlAgent`.

The authors' critic is an ``ActorVectorField`` of width 1 over (state, chunk, time), ensembled: qchunk's
:class:`~qchunk.networks.CriticEnsemble` with ``time_input`` (the same MLP on the same inputs in the same order).
``separate=True`` (an extra critic the update never reads) is not replayed."""

from __future__ import annotations

from typing import Any

from qchunk.agents import create_agent
from qchunk.agents.cgql import CgqlAgentConfig, CgqlDraws
from qchunk.fidelity.fixture import Fixture
from qchunk.fidelity.replay import CRITIC_METRICS, Check, Replay, compare_update, draw_queue, qam_repo_fields
from qchunk.fidelity.transplant import check_same_structure, vector_field

AGENTS = {"simple": "cgql", "mse": "cgql-m", "linex": "cgql-l"}
"""The qchunk agent of each of the authors' modes."""


def cgql_config(authors: dict[str, Any], horizon: int) -> CgqlAgentConfig:
    """The qchunk config of an authors' ``agents/cgql.py`` config (plain Adam: no gradient clipping)."""
    if authors["separate"]:
        raise ValueError("cgql.py with separate=True (an unused extra critic) has no qchunk counterpart")
    return CgqlAgentConfig(agent=AGENTS[authors["mode"]], mode=authors["mode"], inv_temp=authors["inv_temp"],
                           guidance_coef=authors["guidance_coef"], noisy_coef=authors["noisy_coef"],
                           isd_clip=authors["isd_clip"], target_actor=authors["target_guidance"], max_grad_norm=0.0,
                           **qam_repo_fields(authors, horizon))


def cgql_params(tree: dict[str, Any]) -> dict[str, Any]:
    """qchunk's ``params`` from the authors' ``modules_*`` tree (parameters or gradients)."""
    return {"critic": {"critics": vector_field(tree["modules_critic"])["mlp"]},
            "flow": vector_field(tree["modules_actor"])}


def cgql_targets(tree: dict[str, Any], config: CgqlAgentConfig) -> dict[str, Any]:
    """qchunk's ``target_params``: the target critics and, with ``target_actor``, the target BC flow."""
    targets = {"critic": {"critics": vector_field(tree["modules_target_critic"])["mlp"]}}
    if config.target_actor:
        targets["flow"] = vector_field(tree["modules_target_actor"])
    return targets


def replay_cgql(fixture: Fixture, changes: dict[str, Any]) -> list[Check]:
    """Every check of an ``agents/cgql.py`` fixture (``changes`` applied to the derived config)."""
    meta = fixture.meta
    config = cgql_config(fixture.config, meta["horizon"]).replace(**changes)
    agent = create_agent(config, meta["obs_dim"], meta["action_dim"], seed=0)
    authors = fixture.tree("params")
    params, targets = cgql_params(authors), cgql_targets(authors, config)
    check_same_structure(params, agent.params, f"{fixture.name} params")
    check_same_structure(targets, agent.target_params, f"{fixture.name} targets")
    agent = agent.from_params(config, meta["obs_dim"], meta["action_dim"], params, targets, agent.rng)

    batch, width, n = meta["batch"], config.policy_dim(meta["action_dim"]), config.num_samples
    take = draw_queue(fixture.draws("update"))
    next_action = take((batch, n, width))  # critic_loss -> sample_actions at s_{t+h}
    noisy_time = noisy_noise = None
    if fixture.config["mode"] != "simple":
        noisy_time, noisy_noise = take((batch, 1)), take((batch, width))
    draws = CgqlDraws(next_action, noisy_time, noisy_noise, take((batch, width)), take((batch, 1)))
    if take.remaining():
        raise ValueError(f"{fixture.name}: {take.remaining()} recorded draws not used")
    act_noise = draw_queue(fixture.draws("act"))((batch, n, width))

    metrics = {
        **CRITIC_METRICS,
        "critic/noisy_critic_loss": lambda i: i["critic/noisy_critic_loss"],
        "critic/exp_bias": lambda i: i["critic/exp_bias"],
        "actor/flow_loss": lambda i: i["actor/bc_flow_loss"],
    }
    rep = Replay(agent, draws, act_noise, cgql_params, lambda t: cgql_targets(t, config), metrics,
                 unmapped=("modules_target_critic", "modules_target_actor"))
    return compare_update(fixture, rep)
