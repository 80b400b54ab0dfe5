"""Replay of the QAM repository's ``agents/bam.py`` (basic adjoint matching) in :class:`~qchunk.agents.bam.BamAgent`.

Its networks, parameter names and draws are QAM's (``actor_slow`` the BC flow, ``actor_fast`` the fine-tuned one;
the TD-target policy's noise, the flow-matching noise and times, the chain's start and one noise per step, the
last drawn and not used), so the mapping is :mod:`qchunk.fidelity.qam_replay`'s."""

from __future__ import annotations

from typing import Any

import numpy as np

from qchunk.agents import create_agent
from qchunk.agents.bam import BamAgentConfig
from qchunk.agents.qam import QamDraws
from qchunk.fidelity.fixture import Fixture
from qchunk.fidelity.qam_replay import qam_params, qam_targets
from qchunk.fidelity.replay import CRITIC_METRICS, Check, Replay, compare_update, draw_queue, qam_repo_fields
from qchunk.fidelity.transplant import check_same_structure


def bam_config(authors: dict[str, Any], horizon: int) -> BamAgentConfig:
    """The qchunk config of an authors' ``agents/bam.py`` config (its gradient is always clipped at norm 1)."""
    return BamAgentConfig(agent="bam", inv_temp=authors["inv_temp"], residual=authors["residual"],
                          target_actor=authors["target_actor"], max_grad_norm=1.0,
                          **qam_repo_fields(authors, horizon))


def replay_bam(fixture: Fixture, changes: dict[str, Any]) -> list[Check]:
    """Every check of an ``agents/bam.py`` fixture (``changes`` applied to the derived config)."""
    meta = fixture.meta
    config = bam_config(fixture.config, meta["horizon"]).replace(**changes)
    agent = create_agent(config, meta["obs_dim"], meta["action_dim"], seed=0)
    authors = fixture.tree("params")
    params, targets = qam_params(authors, config), qam_targets(authors, config)
    check_same_structure(params, agent.params, f"{fixture.name} params")
    check_same_structure(targets, agent.target_params, f"{fixture.name} targets")
    agent = agent.from_params(config, meta["obs_dim"], meta["action_dim"], params, targets, agent.rng)

    batch, width = meta["batch"], config.policy_dim(meta["action_dim"])
    n, steps = config.num_samples, config.flow_steps
    take = draw_queue(fixture.draws("update"))
    next_action = take((batch, n, width))  # critic_loss -> sample_actions at s_{t+h}
    bc_noise, bc_time, start = take((batch, width)), take((batch, 1)), take((batch, width))
    step_noise = np.stack([np.asarray(take((batch, width))) for _ in range(steps - 1)])
    take.skip()  # the last step is the deterministic base step: its noise is drawn and not used
    if take.remaining():
        raise ValueError(f"{fixture.name}: {take.remaining()} recorded draws not used")
    draws = QamDraws(next_action, bc_noise, bc_time, start, step_noise)
    act_noise = draw_queue(fixture.draws("act"))((batch, n, width))

    metrics = {
        **CRITIC_METRICS,
        "actor/flow_loss": lambda i: i["actor/bc_flow_loss"],
        "actor/bam_loss": lambda i: i["actor/bam_loss"],
        "actor/bc_loss": lambda i: i["actor/control_cost"],
    }
    rep = Replay(agent, draws, act_noise, lambda t: qam_params(t, config), lambda t: qam_targets(t, config),
                 metrics, unmapped=("modules_target_critic", "modules_target_actor_slow", "modules_target_actor_fast"))
    return compare_update(fixture, rep)
