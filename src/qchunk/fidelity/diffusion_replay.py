"""Replay of the QAM repository's ``agents/dcgql.py`` (QSM and DAC, by ``actor_loss_type``) in
:class:`~qchunk.agents.diffusion_agent.DiffusionAgent`."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from qchunk.agents import create_agent
from qchunk.agents.diffusion import SamplerNoise
from qchunk.agents.diffusion_agent import DiffusionAgentConfig, DiffusionDraws
from qchunk.fidelity.fixture import Fixture
from qchunk.fidelity.replay import Check, Replay, compare_update, draw_queue, qam_repo_fields
from qchunk.fidelity.transplant import check_same_structure, critic_ensemble, noise_predictor


def diffusion_config(authors: dict[str, Any], horizon: int) -> DiffusionAgentConfig:
    """The qchunk config of an authors' ``agents/dcgql.py`` config (``get_config()`` with its overrides); the
    agent's name is the authors' ``actor_loss_type``."""
    shared = qam_repo_fields({**authors, "flow_steps": None}, horizon)  # no flow here
    shared = {k: v for k, v in shared.items() if k not in ("flow_steps", "num_samples", "bc_weighting")}
    return DiffusionAgentConfig(
        agent=authors["actor_loss_type"], actor_loss=authors["actor_loss_type"], inv_temp=authors["inv_temp"],
        alpha=authors["alpha"], clip_sampler_before=authors["clip_sampler_before"],
        clip_sampler_after=authors["clip_sampler_after"], diffusion_steps=authors["diffusion_steps"],
        beta_schedule=authors["beta_schedule"], time_dim=authors["time_dim"],
        target_critic_grad=authors["use_target_critic_grad"], max_grad_norm=authors["clip_grad_norm"], **shared)


def diffusion_params(tree: dict[str, Any]) -> dict[str, Any]:
    """qchunk's ``params`` from the authors' ``modules_*`` tree (parameters or gradients)."""
    return {"critic": critic_ensemble(tree["modules_critic"]), "actor": noise_predictor(tree["modules_actor"])}


def diffusion_targets(tree: dict[str, Any]) -> dict[str, Any]:
    """qchunk's ``target_params``: the target critic."""
    return {"critic": critic_ensemble(tree["modules_target_critic"])}


def sampler_noise(take, batch: int, width: int, steps: int) -> SamplerNoise:
    """The draws of one authors' ``sample_actions``: ``x_T``, then one noise per reverse step (the last one, of
    ``t = 1``, drawn and multiplied by 0)."""
    start = take((batch, width))
    step_noise = np.stack([np.asarray(take((batch, width))) for _ in range(steps - 1)]) if steps > 1 else \
        np.zeros((0, batch, width), np.float32)
    take.skip()
    return SamplerNoise(start, jnp.asarray(step_noise))


def replay_diffusion(fixture: Fixture, changes: dict[str, Any]) -> list[Check]:
    """Every check of an ``agents/dcgql.py`` fixture (``changes`` applied to the derived config)."""
    meta = fixture.meta
    config = diffusion_config(fixture.config, meta["horizon"]).replace(**changes)
    agent = create_agent(config, meta["obs_dim"], meta["action_dim"], seed=0)
    authors = fixture.tree("params")
    params, targets = diffusion_params(authors), diffusion_targets(authors)
    check_same_structure(params, agent.params, f"{fixture.name} params")
    check_same_structure(targets, agent.target_params, f"{fixture.name} targets")
    agent = agent.from_params(config, meta["obs_dim"], meta["action_dim"], params, targets, agent.rng)

    batch, width, steps = meta["batch"], config.policy_dim(meta["action_dim"]), config.diffusion_steps
    # The authors' call order: critic_loss (sample_actions at s_{t+h}), then actor_loss (the step t, the noise).
    take = draw_queue(fixture.draws("update"))
    next_action = sampler_noise(take, batch, width, steps)
    times = jnp.asarray(take((batch,)), jnp.int32)
    draws = DiffusionDraws(next_action, times, take((batch, width)))
    if take.remaining():
        raise ValueError(f"{fixture.name}: {take.remaining()} recorded draws not used")
    act = draw_queue(fixture.draws("act"))
    act_noise = sampler_noise(act, batch, width, steps)
    if act.remaining():
        raise ValueError(f"{fixture.name}: {act.remaining()} recorded acting draws not used")

    metrics = {
        "critic/critic_loss": lambda i: i["critic/loss"],
        "critic/q": lambda i: i["critic/q_mean"],
        "actor/actor_loss": lambda i: i["actor/loss"],
    }
    rep = Replay(agent, draws, act_noise, diffusion_params, diffusion_targets, metrics,
                 unmapped=("modules_target_critic",))
    return compare_update(fixture, rep)
