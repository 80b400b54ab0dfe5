"""Replay of the QAM repository's FAWAC agent (``agents/fawac.py``) in :class:`~qchunk.agents.fawac.FawacAgent`."""

from __future__ import annotations

from typing import Any

from qchunk.agents import create_agent
from qchunk.agents.fawac import FawacAgentConfig, FawacDraws
from qchunk.fidelity.fixture import Fixture
from qchunk.fidelity.replay import CRITIC_METRICS, Check, Replay, compare_update, draw_queue, qam_repo_fields
from qchunk.fidelity.transplant import check_same_structure, critic_ensemble, state_value, vector_field


def fawac_config(authors: dict[str, Any], horizon: int) -> FawacAgentConfig:
    """The qchunk config of an authors' ``agents/fawac.py`` config (``get_config()`` with its overrides); its
    ``best_of_n`` is unused there (one flow sample)."""
    fields = qam_repo_fields(authors, horizon)
    fields.pop("num_samples")
    return FawacAgentConfig(agent="fawac", inv_temp=authors["inv_temp"], max_weight=100.0, **fields)


def fawac_params(tree: dict[str, Any]) -> dict[str, Any]:
    """qchunk's FAWAC ``params`` from the authors' ``modules_*`` tree (parameters or gradients)."""
    return {"critic": critic_ensemble(tree["modules_critic"]), "value": state_value(tree["modules_value"]),
            "flow": vector_field(tree["modules_actor"])}


def fawac_targets(tree: dict[str, Any]) -> dict[str, Any]:
    """qchunk's ``target_params``: the target critic."""
    return {"critic": critic_ensemble(tree["modules_target_critic"])}


def replay_fawac(fixture: Fixture, changes: dict[str, Any]) -> list[Check]:
    """Every check of an ``agents/fawac.py`` fixture (``changes`` applied to the derived config)."""
    meta = fixture.meta
    config = fawac_config(fixture.config, meta["horizon"]).replace(**changes)
    agent = create_agent(config, meta["obs_dim"], meta["action_dim"], seed=0)
    authors = fixture.tree("params")
    params, targets = fawac_params(authors), fawac_targets(authors)
    check_same_structure(params, agent.params, f"{fixture.name} params")
    check_same_structure(targets, agent.target_params, f"{fixture.name} targets")
    agent = agent.from_params(config, meta["obs_dim"], meta["action_dim"], params, targets, agent.rng)

    batch, width = meta["batch"], config.policy_dim(meta["action_dim"])
    take = draw_queue(fixture.draws("update"))
    # critic_loss (sample_actions at s_{t+h}), then actor_loss (x0, u)
    draws = FawacDraws(take((batch, width)), take((batch, width)), take((batch, 1)))
    if take.remaining():
        raise ValueError(f"{fixture.name}: {take.remaining()} recorded draws not used")
    act = draw_queue(fixture.draws("act"))
    act_noise = act((batch, width))
    metrics = {
        **CRITIC_METRICS,
        "critic/value_loss": lambda i: i["value/loss"],
        "actor/actor_loss": lambda i: i["actor/loss"],
    }
    rep = Replay(agent, draws, act_noise, fawac_params, fawac_targets, metrics, unmapped=("modules_target_critic",))
    return compare_update(fixture, rep)
