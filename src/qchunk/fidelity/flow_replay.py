"""Replay of the flow family in :class:`~qchunk.agents.flow_agent.FlowAgent`: the Q-chunking repository's
``agents/acfql.py`` (qc, qc-fql, bfn, bfn-n, fql, fql-n at ``--preset paper``) and the QAM repository's
``agents/fql.py`` (qc-fql and fql at ``--preset qam``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from qchunk.agents import create_agent
from qchunk.agents.config import FlowAgentConfig
from qchunk.agents.flow_agent import FlowDraws
from qchunk.errors import QchunkError
from qchunk.fidelity.fixture import Fixture
from qchunk.fidelity.replay import CRITIC_METRICS, Check, Replay, compare_update, draw_queue
from qchunk.fidelity.transplant import check_same_structure, critic_ensemble, vector_field


def _shared(authors: dict[str, Any], horizon: int) -> dict[str, Any]:
    """The config fields both authors' flow modules name alike."""
    return dict(horizon=horizon, chunked=bool(authors["action_chunking"]), discount=authors["discount"],
                tau=authors["tau"], lr=authors["lr"], actor_hidden_dims=tuple(authors["actor_hidden_dims"]),
                critic_hidden_dims=tuple(authors["value_hidden_dims"]), actor_layer_norm=authors["actor_layer_norm"],
                num_critics=authors["num_qs"], flow_steps=authors["flow_steps"], alpha=authors["alpha"])


def acfql_config(authors: dict[str, Any], horizon: int) -> FlowAgentConfig:
    """The qchunk config of an authors' ``agents/acfql.py`` config (``get_config()`` with its overrides).

    Raises:
        QchunkError: a setting qchunk does not have (an encoder, Fourier time features, weight decay).
    """
    unsupported = {k: authors.get(k) for k in ("encoder", "use_fourier_features", "weight_decay") if authors.get(k)}
    if unsupported:
        raise QchunkError(f"acfql settings without a qchunk counterpart: {unsupported}")
    distill = authors["actor_type"] == "distill-ddpg"
    if not distill and authors["actor_type"] != "best-of-n":
        raise QchunkError(f"unknown acfql actor_type {authors['actor_type']!r}")
    # acfql has normalize_q_loss in its config but never reads it: qchunk's flag stays off.
    return FlowAgentConfig(agent="qc-fql" if distill else "qc", policy="distill" if distill else "best_of_n",
                           num_samples=authors["actor_num_samples"], critic_layer_norm=authors["layer_norm"],
                           q_agg=authors["q_agg"], rho=0.0, bc_weighting="step", normalize_q_loss=False,
                           **_shared(authors, horizon))


def qam_fql_config(authors: dict[str, Any], horizon: int) -> FlowAgentConfig:
    """The qchunk config of the QAM repository's ``agents/fql.py`` config (its FQL: a one-step policy, the
    target ``mean - rho * std``, the QAM code's BC weighting).

    Raises:
        QchunkError: ``best_of_n > 1`` (best of several one-step samples; the QAM protocol uses 1).
    """
    if authors["best_of_n"] != 1:
        raise QchunkError(f"QAM fql.py with best_of_n={authors['best_of_n']} has no qchunk counterpart (1 only)")
    return FlowAgentConfig(agent="qc-fql", preset="qam", policy="distill",
                           critic_layer_norm=authors["value_layer_norm"], q_agg="mean", rho=authors["rho"],
                           bc_weighting="chunk", **_shared(authors, horizon))


def flow_params(tree: dict[str, Any], config: FlowAgentConfig) -> dict[str, Any]:
    """qchunk's ``params`` from the authors' ``modules_*`` tree (parameters or gradients); a best-of-N agent has
    no one-step policy (the authors' is built and never trained)."""
    params = {"critic": critic_ensemble(tree["modules_critic"]), "flow": vector_field(tree["modules_actor_bc_flow"])}
    if config.policy == "distill":
        params["onestep"] = vector_field(tree["modules_actor_onestep_flow"])
    return params


def flow_targets(tree: dict[str, Any]) -> dict[str, Any]:
    """qchunk's ``target_params``: the target critic."""
    return {"critic": critic_ensemble(tree["modules_target_critic"])}


def _replay(fixture: Fixture, config: FlowAgentConfig) -> list[Check]:
    meta = fixture.meta
    agent = create_agent(config, meta["obs_dim"], meta["action_dim"], seed=0)
    authors = fixture.tree("params")
    params, targets = flow_params(authors, config), flow_targets(authors)
    check_same_structure(params, agent.params, f"{fixture.name} params")
    check_same_structure(targets, agent.target_params, f"{fixture.name} targets")
    agent = agent.from_params(config, meta["obs_dim"], meta["action_dim"], params, targets, agent.rng)

    batch, width = meta["batch"], config.policy_dim(meta["action_dim"])
    distill = config.policy == "distill"
    # One policy call: the one-step policy's z (the QAM repo draws it as best_of_n=1 samples) or best-of-N's starts.
    noise_shape = (batch, width) if distill else (batch, config.num_samples, width)

    take = draw_queue(fixture.draws("update"))
    next_action = take(noise_shape)  # critic_loss -> sample_actions at s_{t+h}
    bc_noise, bc_time = take((batch, width)), take((batch, 1))  # actor_loss: x_0, then t
    distill_noise = take((batch, width)) if distill else None  # the distillation's noises
    if take.remaining():
        raise QchunkError(f"{fixture.name}: {take.remaining()} recorded draws not used")
    draws = FlowDraws(next_action, bc_noise, bc_time, distill_noise)
    act_take = draw_queue(fixture.draws("act"))
    act_noise = act_take(noise_shape)
    if act_take.remaining():
        raise QchunkError(f"{fixture.name}: {act_take.remaining()} recorded acting draws not used")

    zero = np.zeros((), np.float32)
    metrics = {
        **CRITIC_METRICS,
        "actor/actor_loss": lambda i: i["actor/loss"],
        "actor/bc_flow_loss": lambda i: i["actor/bc_flow_loss"],
        # acfql logs a distillation loss of 0 for best-of-N, which trains no one-step policy
        "actor/distill_loss": lambda i: i.get("actor/distill_loss", zero),
    }
    unmapped = ("modules_target_critic",) + (() if distill else ("modules_actor_onestep_flow",))
    rep = Replay(agent, draws, act_noise, lambda t: flow_params(t, config), flow_targets, metrics, unmapped=unmapped)
    return compare_update(fixture, rep)


def replay_acfql(fixture: Fixture, changes: dict[str, Any]) -> list[Check]:
    """Every check of a Q-chunking repository ``agents/acfql.py`` fixture."""
    return _replay(fixture, acfql_config(fixture.config, fixture.meta["horizon"]).replace(**changes))


def replay_qam_fql(fixture: Fixture, changes: dict[str, Any]) -> list[Check]:
    """Every check of a QAM repository ``agents/fql.py`` fixture."""
    return _replay(fixture, qam_fql_config(fixture.config, fixture.meta["horizon"]).replace(**changes))
