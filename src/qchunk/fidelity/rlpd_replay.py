"""Replay of the RLPD family: the QC repo's ``agents/acrlpd.py`` (rlpd, rlpd-ac, qc-rlpd at ``--preset paper``)
and the QAM repo's ``agents/rlpd.py`` (rlpd, rlpd-ac at ``--preset qam``) in :class:`~qchunk.agents.SacAgent`."""

from __future__ import annotations

from typing import Any

import numpy as np

from qchunk.agents import create_agent
from qchunk.agents.config import SacAgentConfig
from qchunk.agents.sac_agent import SacDraws
from qchunk.fidelity.fixture import Fixture
from qchunk.fidelity.replay import CRITIC_METRICS, Check, Replay, compare_update, draw_queue
from qchunk.fidelity.transplant import (
    check_same_structure,
    critic_ensemble,
    log_param,
    state_action_ensemble,
    tanh_normal,
)


def rlpd_config(authors: dict[str, Any], horizon: int, action_dim: int, repo: str) -> SacAgentConfig:
    """The qchunk config of an authors' RLPD config (``get_config()`` with its overrides, ``target_entropy``
    resolved by their ``create``) from ``repo`` (``qc``: ``agents/acrlpd.py``; ``qam``: ``agents/rlpd.py``)."""
    qam = repo == "qam"
    chunked = bool(authors["action_chunking"])
    width = (horizon if chunked else 1) * action_dim
    fields = dict(
        horizon=horizon, chunked=chunked, discount=authors["discount"], tau=authors["tau"], lr=authors["lr"],
        actor_hidden_dims=tuple(authors["actor_hidden_dims"]), critic_hidden_dims=tuple(authors["value_hidden_dims"]),
        actor_layer_norm=False, num_critics=authors["num_qs"], init_temperature=authors["init_temp"],
        target_entropy_per_dim=authors["target_entropy"] / width,  # theirs: -multiplier * P
        bc_coef=authors["bc_alpha"], backup_entropy=False, eval_policy="sample",
    )
    if qam:
        fields.update(critic_layer_norm=authors["value_layer_norm"], q_agg="mean", rho=authors["rho"],
                      networks="qam", bc_mask="chunk")
    else:
        fields.update(critic_layer_norm=authors["layer_norm"], q_agg=authors["q_agg"], rho=0.0,
                      networks="rlpd", bc_mask="none")
    return SacAgentConfig(agent="qc-rlpd" if fields["bc_coef"] > 0 else ("rlpd-ac" if chunked else "rlpd"),
                          preset="qam" if qam else "paper", **fields)


def rlpd_params(tree: dict[str, Any], repo: str) -> dict[str, Any]:
    """qchunk's ``params`` from the authors' ``modules_*`` tree (parameters or gradients)."""
    critic = critic_ensemble if repo == "qam" else state_action_ensemble
    return {"critic": critic(tree["modules_critic"]), "actor": tanh_normal(tree["modules_actor"]),
            "log_temperature": log_param(tree["modules_alpha"], "log_value" if repo == "qam" else "log_temp")}


def rlpd_targets(tree: dict[str, Any], repo: str) -> dict[str, Any]:
    """qchunk's ``target_params``: the target critic."""
    critic = critic_ensemble if repo == "qam" else state_action_ensemble
    return {"critic": critic(tree["modules_target_critic"])}


def replay_rlpd(fixture: Fixture, changes: dict[str, Any]) -> list[Check]:
    """Every check of an ``agents/acrlpd.py`` (QC repo) or ``agents/rlpd.py`` (QAM repo) fixture."""
    meta = fixture.meta
    repo = meta["repo"]
    action_dim = meta["action_dim"]
    config = rlpd_config(fixture.config, meta["horizon"], action_dim, repo).replace(**changes)
    agent = create_agent(config, meta["obs_dim"], action_dim, seed=0)
    authors = fixture.tree("params")
    params, targets = rlpd_params(authors, repo), rlpd_targets(authors, repo)
    check_same_structure(params, agent.params, f"{fixture.name} params")
    check_same_structure(targets, agent.target_params, f"{fixture.name} targets")
    agent = agent.from_params(config, meta["obs_dim"], action_dim, params, targets, agent.rng)

    batch, width = meta["batch"], config.policy_dim(action_dim)

    def noise(take) -> Any:
        # tfp's MultivariateNormalDiag draws its standard normals event-major, (P, B): transpose to (B, P)
        return take((width, batch)).T

    take = draw_queue(fixture.draws("update"))
    draws = SacDraws(next_action=noise(take), actor=noise(take))  # critic_loss first, then actor_loss
    if take.remaining():
        raise ValueError(f"{fixture.name}: {take.remaining()} recorded draws not used")
    act_take = draw_queue(fixture.draws("act"))
    act_noise = noise(act_take)
    if act_take.remaining():
        raise ValueError(f"{fixture.name}: {act_take.remaining()} recorded acting draws not used")

    def bc_loss(info: dict[str, Any]) -> Any:
        return -config.bc_coef * info["actor/bc_log_likelihood"] if config.bc_coef > 0 else np.float32(0.0)

    metrics = {
        **CRITIC_METRICS,
        "actor/actor_loss": lambda i: i["actor/policy_loss"],
        "actor/alpha_loss": lambda i: i["temperature/loss"],
        "actor/alpha": lambda i: i["temperature/value"],
        "actor/bc_loss": bc_loss,
        "actor/entropy": lambda i: i["actor/entropy"],
        "actor/q": lambda i: i["actor/q_mean"],
        "actor/total_loss": lambda i: i["actor/loss"] + i["temperature/loss"],
    }
    rep = Replay(agent, draws, act_noise, lambda t: rlpd_params(t, repo), lambda t: rlpd_targets(t, repo), metrics,
                 unmapped=("modules_target_critic",))
    return compare_update(fixture, rep)
