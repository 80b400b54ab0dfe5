"""Replay of the QAM repository's ``agents/qam.py`` (QAM; QAM-F with ``fql_alpha > 0``; QAM-E with
``edit_scale > 0``) in :class:`~qchunk.agents.qam.QamAgent` and its variants, and of its ``agents/fedit.py`` in
:class:`~qchunk.agents.edit.FEditAgent` (the edit policy is shared)."""

from __future__ import annotations

from typing import Any

import numpy as np

from qchunk.agents import create_agent
from qchunk.agents.config import FEditAgentConfig, QamAgentConfig, QamEAgentConfig, QamFAgentConfig
from qchunk.agents.edit import EditNoise, FEditDraws
from qchunk.agents.qam import QamDraws
from qchunk.fidelity.fixture import Fixture
from qchunk.fidelity.replay import (
    CRITIC_METRICS,
    Check,
    Replay,
    compare_update,
    draw_queue,
    event_last,
    qam_repo_fields,
)
from qchunk.fidelity.transplant import (
    check_same_structure,
    critic_ensemble,
    log_param,
    tanh_normal,
    vector_field,
)


def qam_config(authors: dict[str, Any], horizon: int) -> QamAgentConfig:
    """The qchunk config of an authors' ``agents/qam.py`` config (``get_config()`` with its overrides)."""
    fields = dict(
        inv_temp=authors["inv_temp"], residual=authors["residual"], target_actor=authors["target_actor"],
        target_critic_grad=authors["use_target_grad"], clip_adjoint=authors["clip_adj"],
        max_grad_norm=1.0 if authors["clip_grad"] else 0.0, adjoint="authors", **qam_repo_fields(authors, horizon))
    if authors["fql_alpha"] > 0:
        return QamFAgentConfig(agent="qam-f", alpha=authors["fql_alpha"], **fields)
    if authors["edit_scale"] > 0:
        return QamEAgentConfig(agent="qam-e", edit_scale=authors["edit_scale"], init_temperature=1.0,
                               target_entropy_per_dim=-authors["edit_target_entropy_multiplier"], **fields)
    return QamAgentConfig(agent="qam", **fields)


def qam_params(tree: dict[str, Any], config: QamAgentConfig) -> dict[str, Any]:
    """qchunk's ``params`` from the authors' ``modules_*`` tree (parameters or gradients)."""
    params = {"critic": critic_ensemble(tree["modules_critic"]), "flow": vector_field(tree["modules_actor_slow"]),
              "fine_flow": vector_field(tree["modules_actor_fast"])}
    if isinstance(config, QamFAgentConfig) and config.alpha > 0:
        params["onestep"] = vector_field(tree["modules_one_step_actor"])
    if isinstance(config, QamEAgentConfig) and config.edit_scale > 0:
        params["edit"] = tanh_normal(tree["modules_edit_actor"])
        params["log_temperature"] = log_param(tree["modules_edit_alpha"])
    return params


def qam_targets(tree: dict[str, Any], config: QamAgentConfig) -> dict[str, Any]:
    """qchunk's ``target_params``: the target critic and, with ``target_actor``, the target BC flow."""
    targets = {"critic": critic_ensemble(tree["modules_target_critic"])}
    if config.target_actor:
        targets["flow"] = vector_field(tree["modules_target_actor_slow"])
    return targets


def replay_qam(fixture: Fixture, changes: dict[str, Any]) -> list[Check]:
    """Every check of an ``agents/qam.py`` fixture (``changes`` applied to the derived config)."""
    meta = fixture.meta
    config = qam_config(fixture.config, meta["horizon"]).replace(**changes)
    agent = create_agent(config, meta["obs_dim"], meta["action_dim"], seed=0)
    authors = fixture.tree("params")
    params, targets = qam_params(authors, config), qam_targets(authors, config)
    check_same_structure(params, agent.params, f"{fixture.name} params")
    check_same_structure(targets, agent.target_params, f"{fixture.name} targets")
    agent = agent.from_params(config, meta["obs_dim"], meta["action_dim"], params, targets, agent.rng)

    batch, width = meta["batch"], config.policy_dim(meta["action_dim"])
    n, steps = config.num_samples, config.flow_steps
    edits = isinstance(config, QamEAgentConfig) and config.edit_scale > 0

    def policy_noise(take):
        if edits:  # sample_actions: the flow's noise, then the edit's
            return EditNoise(take((batch, n, width)), event_last(take, (batch, n, width)))
        return take((batch, n, width))

    take = draw_queue(fixture.draws("update"))
    next_action = policy_noise(take)  # critic_loss -> sample_actions at s_{t+h}
    bc_noise, bc_time = take((batch, width)), take((batch, 1))
    start = take((batch, width))
    step_noise = np.stack([np.asarray(take((batch, width))) for _ in range(steps - 1)])
    take.skip()  # the last step is the deterministic base step: its noise is drawn and not used
    extra = None
    if isinstance(config, QamFAgentConfig) and config.alpha > 0:
        extra = take((batch, width))
    elif edits:
        extra = EditNoise(take((batch, width)), event_last(take, (batch, width)))
    if take.remaining():
        raise ValueError(f"{fixture.name}: {take.remaining()} recorded draws not used")
    draws = QamDraws(next_action, bc_noise, bc_time, start, step_noise, extra)
    act_take = draw_queue(fixture.draws("act"))
    act_noise = policy_noise(act_take)

    metrics = {
        **CRITIC_METRICS,
        "actor/flow_loss": lambda i: i["actor/bc_flow_loss"],
        "actor/adj_loss": lambda i: i["actor/adjoint_loss"],
        "actor/fast_loss": lambda i: i["actor/adjoint_loss"],
        "actor/adj_max": lambda i: i["actor/adjoint_abs_max"],
        "actor/adj_mean": lambda i: i["actor/adjoint_abs_mean"],
        "actor/adj_std": lambda i: i["actor/adjoint_abs_std"],
        "actor/fql_distill_loss": lambda i: i["actor/distill_loss"],
        "actor/fql_q_loss": lambda i: i["actor/q_loss"],
        "actor/edit_q_loss": lambda i: -i["actor/q_mean"],
        "actor/edit_entropy_loss": lambda i: i["actor/entropy_loss"],
        "actor/edit_alpha_loss": lambda i: i["temperature/loss"],
        "actor/edit_entropy": lambda i: i["actor/entropy"],
        "actor/edit_alpha": lambda i: i["temperature/value"],
    }
    rep = Replay(agent, draws, act_noise, lambda t: qam_params(t, config), lambda t: qam_targets(t, config),
                 metrics, unmapped=("modules_target_critic", "modules_target_actor_slow", "modules_target_actor_fast"))
    return compare_update(fixture, rep)


def fedit_config(authors: dict[str, Any], horizon: int) -> FEditAgentConfig:
    """The qchunk config of an authors' ``agents/fedit.py`` config."""
    return FEditAgentConfig(
        agent="fedit", edit_scale=authors["edit_scale"], init_temperature=1.0,
        target_entropy_per_dim=-authors["edit_target_entropy_multiplier"], **qam_repo_fields(authors, horizon))


def fedit_params(tree: dict[str, Any]) -> dict[str, Any]:
    """qchunk's FEdit ``params`` from the authors' ``modules_*`` tree (parameters or gradients)."""
    return {"critic": critic_ensemble(tree["modules_critic"]), "flow": vector_field(tree["modules_actor_bc_flow"]),
            "edit": tanh_normal(tree["modules_edit_actor"]), "log_temperature": log_param(tree["modules_alpha"])}


def replay_fedit(fixture: Fixture, changes: dict[str, Any]) -> list[Check]:
    """Every check of an ``agents/fedit.py`` fixture (``changes`` applied to the derived config)."""
    meta = fixture.meta
    config = fedit_config(fixture.config, meta["horizon"]).replace(**changes)
    agent = create_agent(config, meta["obs_dim"], meta["action_dim"], seed=0)
    authors = fixture.tree("params")
    params = fedit_params(authors)
    targets = {"critic": critic_ensemble(authors["modules_target_critic"])}
    check_same_structure(params, agent.params, f"{fixture.name} params")
    agent = agent.from_params(config, meta["obs_dim"], meta["action_dim"], params, targets, agent.rng)

    batch, width, n = meta["batch"], config.policy_dim(meta["action_dim"]), config.num_samples
    take = draw_queue(fixture.draws("update"))
    next_action = EditNoise(take((batch, n, width)), event_last(take, (batch, n, width)))  # flow noise, edit
    draws = FEditDraws(next_action, take((batch, width)), take((batch, 1)), take((batch, width)),
                       event_last(take, (batch, width)))
    if take.remaining():
        raise ValueError(f"{fixture.name}: {take.remaining()} recorded draws not used")
    act = draw_queue(fixture.draws("act"))
    act_noise = EditNoise(act((batch, n, width)), event_last(act, (batch, n, width)))
    metrics = {
        **CRITIC_METRICS,
        "actor/bc_flow_loss": lambda i: i["actor/bc_flow_loss"],
        "actor/edit_q_loss": lambda i: -i["actor/q_mean"],
        "actor/edit_entropy_loss": lambda i: i["actor/entropy_loss"],
        "actor/edit_alpha_loss": lambda i: i["temperature/loss"],
        "actor/edit_entropy": lambda i: i["actor/entropy"],
        "actor/actor_loss": lambda i: i["actor/bc_flow_loss"] + i["actor/loss"] + i["temperature/loss"],
    }
    rep = Replay(agent, draws, act_noise, fedit_params,
                 lambda t: {"critic": critic_ensemble(t["modules_target_critic"])}, metrics,
                 unmapped=("modules_target_critic",))
    return compare_update(fixture, rep)
