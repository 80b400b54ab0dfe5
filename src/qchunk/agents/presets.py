"""Named settings of the agents: variants, presets and the paper's per-domain strengths.

``agent_config(name, preset, domain, **overrides)`` resolves, in order: the family's defaults
(:data:`FAMILY_DEFAULTS`), the preset's sizes (:data:`PRESETS`), the variant's structure
(:data:`VARIANTS`), the domain's ``alpha`` / ``N`` for flow agents (:data:`DOMAIN_STRENGTHS`, the table of
the paper's appendix), ``inv_temp`` for qam (:data:`QAM_INV_TEMP`) or ``edit_scale`` / ``noise_scale`` for
fedit / dsrl (:data:`STEERED_DOMAIN_SETTINGS`; the QAM agents also take :data:`QAM_PROTOCOL_SETTINGS`), the QAM
paper's other baselines' (:data:`QAM_METHOD_SETTINGS`),
qam-f's / qam-e's / bam's / the cgql agents' (:data:`QAM_VARIANT_SETTINGS`), with ``preset='qam'`` the QAM protocol of
:func:`qam_preset_settings` (FQL's and RLPD's), then the caller's overrides.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from qchunk.agents.bam import BamAgentConfig
from qchunk.agents.cgql import CgqlAgentConfig
from qchunk.agents.config import (
    AgentConfig,
    DsrlAgentConfig,
    FEditAgentConfig,
    FlowAgentConfig,
    QamAgentConfig,
    QamEAgentConfig,
    QamFAgentConfig,
    SacAgentConfig,
    SteeredFlowConfig,
)
from qchunk.agents.diffusion_agent import DiffusionAgentConfig
from qchunk.agents.registry import agent_names, agent_spec, qam_preset_agents
from qchunk.errors import QchunkError, did_you_mean

FAMILY_BASES: tuple[tuple[str, type[AgentConfig]], ...] = (
    ("qam", QamAgentConfig), ("steered", SteeredFlowConfig), ("sac", SacAgentConfig), ("flow", FlowAgentConfig),
    ("diffusion", DiffusionAgentConfig),
)
"""The preset families, most specific first, by the config class their agents' configs derive from: Q-learning
with adjoint matching and its variants (offline pre-training, then online), the agents that steer a BC flow with a
tanh-Gaussian actor (likewise), the SAC agents with prior data (online from scratch), the flow agents (offline
pre-training, then online) and the diffusion policies trained by a critic's action-gradient (likewise). Which
per-domain rows below apply to an agent follows from its family."""

_FAMILY_CONSTANTS = {"FLOW_AGENT_NAMES": "flow", "SAC_AGENT_NAMES": "sac", "QAM_AGENT_NAMES": "qam",
                     "STEERED_AGENT_NAMES": "steered"}


def agent_family(name: str) -> str:
    """The preset family (:data:`FAMILY_BASES`) of registered agent ``name``: ``qam``, ``steered``, ``sac``,
    ``flow``, or ``other`` for a config class outside them (then no per-domain row applies)."""
    cls = config_class(name)
    return next((family for family, base in FAMILY_BASES if issubclass(cls, base)), "other")


def family_agents(family: str) -> tuple[str, ...]:
    """The registered agents of a preset family, in registration order."""
    return tuple(name for name in agent_names() if agent_family(name) == family)


def __getattr__(name: str) -> tuple[str, ...]:
    """The agent lists, derived from the registry on each access: ``AGENT_NAMES`` (every agent),
    ``FLOW_AGENT_NAMES``, ``SAC_AGENT_NAMES``, ``QAM_AGENT_NAMES``, ``STEERED_AGENT_NAMES`` (one family each)
    and ``QAM_PRESET_AGENTS`` (the agents ``--preset qam`` runs)."""
    if name == "AGENT_NAMES":
        return agent_names()
    if name == "QAM_PRESET_AGENTS":
        return qam_preset_agents()
    if name in _FAMILY_CONSTANTS:
        return family_agents(_FAMILY_CONSTANTS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DEFAULT_DOMAIN = "cube-double"
"""Domain whose strengths apply when none is given."""

VARIANTS: dict[str, dict[str, Any]] = {
    # Q-chunking with best-of-N from the chunk flow (QC) and with a distilled one-step policy (QC-FQL).
    "qc": {"policy": "best_of_n", "horizon": 5, "chunked": True},
    "qc-fql": {"policy": "distill", "horizon": 5, "chunked": True},
    # Single-action baselines with a 1-step backup.
    "bfn": {"policy": "best_of_n", "horizon": 1, "chunked": True},
    "fql": {"policy": "distill", "horizon": 1, "chunked": True},
    # n-step baselines: 5-step windows for the return, critic and policy on the first action only.
    "bfn-n": {"policy": "best_of_n", "horizon": 5, "chunked": False},
    "fql-n": {"policy": "distill", "horizon": 5, "chunked": False},
    # SAC with prior data on single actions (RLPD), on chunks (RLPD-AC), and on chunks with a BC term.
    "rlpd": {"horizon": 1, "chunked": True},
    "rlpd-ac": {"horizon": 5, "chunked": True},
    "qc-rlpd": {"horizon": 5, "chunked": True, "bc_coef": 0.01},
    # Q-learning with adjoint matching on chunks: BC flow + adjoint-matched fine-tuned flow.
    "qam": {"policy": "best_of_n", "horizon": 5, "chunked": True},
    # QAM + an FQL one-step policy distilled from the fine-tuned flow / + an edit policy on its chunk.
    "qam-f": {"policy": "best_of_n", "horizon": 5, "chunked": True},
    "qam-e": {"policy": "best_of_n", "horizon": 5, "chunked": True},
    # Basic adjoint matching: QAM's networks, the fine-tuned flow trained through its sampling chain.
    "bam": {"policy": "best_of_n", "horizon": 5, "chunked": True},
    # Classifier guidance of the BC flow by the critic's action gradient: at t = 1 (CGQL), or a time-conditioned
    # critic distilled by squared error (CGQL-M) or by the LinEx loss (CGQL-L).
    "cgql": {"policy": "best_of_n", "horizon": 5, "chunked": True, "mode": "simple"},
    "cgql-m": {"policy": "best_of_n", "horizon": 5, "chunked": True, "mode": "mse"},
    "cgql-l": {"policy": "best_of_n", "horizon": 5, "chunked": True, "mode": "linex"},
    # BC flow + tanh-Gaussian edit of its chunk (FEdit) / SAC in its latent noise (DSRL), on chunks.
    "fedit": {"horizon": 5, "chunked": True},
    "dsrl": {"horizon": 5, "chunked": True},
    # IQL value and critic on chunks, BC flow, best of N flow samples (IFQL).
    "ifql": {"horizon": 5, "chunked": True},
    # Critic, value and an advantage-weighted flow policy on chunks (FAWAC).
    "fawac": {"horizon": 5, "chunked": True},
    # Diffusion policies on chunks: Q-score matching (clip after each reverse step) / diffusion actor-critic (clip
    # the one-step estimate of the clean chunk), the reproduction script's switches for every domain.
    "qsm": {"horizon": 5, "chunked": True, "actor_loss": "qsm", "clip_sampler_before": False,
            "clip_sampler_after": True},
    "dac": {"horizon": 5, "chunked": True, "actor_loss": "dac", "clip_sampler_before": True,
            "clip_sampler_after": False},
}
"""Structure of each variant (which policy, window length, chunked or first-action critic)."""

_PAPER_OPTIMISATION: dict[str, Any] = {
    "lr": 3e-4, "discount": 0.99, "tau": 0.005, "critic_layer_norm": True,
    "actor_layer_norm": False,
}
"""Settings both presets share with the paper."""

FAMILY_DEFAULTS: dict[type[AgentConfig], dict[str, Any]] = {
    FlowAgentConfig: {"num_critics": 2, "flow_steps": 10},
    # RLPD as the paper runs it: K=10 LayerNorm critics, mean target (no clipped double-Q), no entropy
    # backup, target entropy -0.5 x action dims, 50/50 symmetric sampling.
    SacAgentConfig: {"num_critics": 10, "q_agg": "mean", "backup_entropy": False, "target_entropy_per_dim": -0.5},
    # QAM as the paper runs it: K=10 critics, target mean - 0.5 std, T=10 flow steps, one sample (no best-of-N).
    QamAgentConfig: {"num_critics": 10, "q_agg": "mean", "rho": 0.5, "flow_steps": 10, "num_samples": 1},
    QamFAgentConfig: {"num_critics": 10, "q_agg": "mean", "rho": 0.5, "flow_steps": 10, "num_samples": 1},
    BamAgentConfig: {"num_critics": 10, "q_agg": "mean", "rho": 0.5, "flow_steps": 10, "num_samples": 1},
    CgqlAgentConfig: {"num_critics": 10, "q_agg": "mean", "rho": 0.5, "flow_steps": 10, "num_samples": 1},
    # QAM-E: QAM's and FEdit's (the edit policy's temperature: initial 1, target entropy -0.5 x chunk dims).
    QamEAgentConfig: {"num_critics": 10, "q_agg": "mean", "rho": 0.5, "flow_steps": 10, "num_samples": 1,
                      "init_temperature": 1.0, "target_entropy_per_dim": -0.5},
    # FEdit and DSRL as the QAM paper runs them: K=10 critics, target mean - 0.5 std, T=10, no best-of-N,
    # target entropy -0.5 x chunk dims, initial temperature 1.
    **{cls: {"num_critics": 10, "q_agg": "mean", "rho": 0.5, "flow_steps": 10, "num_samples": 1,
             "init_temperature": 1.0, "target_entropy_per_dim": -0.5}
       for cls in (FEditAgentConfig, DsrlAgentConfig)},
    # QSM and DAC as the QAM paper runs them: K=10 critics, target mean - 0.5 std, 10 steps of the VP schedule.
    DiffusionAgentConfig: {"num_critics": 10, "q_agg": "mean", "rho": 0.5, "diffusion_steps": 10,
                           "beta_schedule": "vp"},
}
"""The paper's settings of each agent family that do not depend on the preset or variant."""

PRESETS: dict[str, dict[str, Any]] = {
    # The paper: 4x512 MLPs for every network, batch 256, Adam 3e-4, gamma 0.99, K=2, T=10.
    "paper": {**_PAPER_OPTIMISATION, "actor_hidden_dims": (512, 512, 512, 512),
              "critic_hidden_dims": (512, 512, 512, 512)},
    # CPU smoke/demo runs: the paper's algorithm with 2x256 networks (about 90 qc-fql updates/s on 2 cores;
    # the quickstart's measured default).
    "quick": {**_PAPER_OPTIMISATION, "actor_hidden_dims": (256, 256), "critic_hidden_dims": (256, 256)},
    # The QAM paper's protocol: 4x512 MLPs for every network (its reproduction script), batch 256, Adam 3e-4;
    # K=10 critics, the pessimistic target and the per-domain values of QAM_PRESET_SETTINGS for FQL and RLPD.
    "qam": {**_PAPER_OPTIMISATION, "actor_hidden_dims": (512, 512, 512, 512),
            "critic_hidden_dims": (512, 512, 512, 512)},
}
"""Sizes and optimisation settings of each named preset."""


@dataclass(frozen=True)
class DomainStrengths:
    """One row of the paper's table of behaviour-constraint strengths (tuned on task 2 per domain)."""

    fql_alpha: float
    """alpha of FQL (h=1)."""
    fql_n_alpha: float
    """alpha of FQL-n."""
    qc_fql_alpha: float
    """alpha of QC-FQL."""
    bfn_n: int
    """N of BFN."""
    bfn_n_n: int
    """N of BFN-n."""
    qc_n: int
    """N of QC."""


DOMAIN_STRENGTHS: dict[str, DomainStrengths] = {
    "scene": DomainStrengths(300.0, 100.0, 300.0, 4, 4, 32),
    "puzzle-3x3": DomainStrengths(100.0, 100.0, 300.0, 4, 4, 64),
    "cube-double": DomainStrengths(300.0, 100.0, 300.0, 4, 4, 32),
    "cube-triple": DomainStrengths(300.0, 100.0, 100.0, 4, 4, 32),
    "cube-quadruple": DomainStrengths(300.0, 100.0, 100.0, 4, 4, 32),
    # The QAM paper's further domains, which the Q-chunking paper did not run. Its reproduction script
    # (experiments/reproduce.py) gives FQL's alpha only: chunked (h=5, our qc-fql) on puzzle-4x4 (1), h=1
    # (our fql) on the mazes. That alpha fills every alpha of the row; no N was published (N=32, the
    # Q-chunking paper's usual value, and its N=4 for BFN).
    "puzzle-4x4": DomainStrengths(1.0, 1.0, 1.0, 4, 4, 32),
    "antmaze-large": DomainStrengths(3.0, 3.0, 3.0, 4, 4, 32),
    "antmaze-giant": DomainStrengths(3.0, 3.0, 3.0, 4, 4, 32),
    "humanoidmaze-medium": DomainStrengths(30.0, 30.0, 30.0, 4, 4, 32),
    "humanoidmaze-large": DomainStrengths(30.0, 30.0, 30.0, 4, 4, 32),
    "robomimic": DomainStrengths(10000.0, 10000.0, 10000.0, 4, 4, 16),
}
"""Per-domain alpha and N; keys are the environment registry's domain keys plus ``robomimic``
(lift, can and square share one row)."""

QAM_PROTOCOL_SETTINGS: dict[str, dict[str, Any]] = {
    "antmaze-large": {"horizon": 1},
    "antmaze-giant": {"horizon": 1, "discount": 0.995},
    "humanoidmaze-medium": {"horizon": 1, "discount": 0.995, "rho": 0.0},
    "humanoidmaze-large": {"horizon": 1, "discount": 0.995, "rho": 0.0},
}
"""The per-domain settings the QAM reproduction script (github.com/ColinQiyangLi/qam
``experiments/reproduce.py``) gives EVERY method of a domain: single actions (``horizon`` 1) on the
navigation mazes, ``discount`` 0.995 on antmaze-giant and the humanoid mazes, no pessimism (``rho`` 0) on the
humanoid mazes. Other domains: chunks of 5, gamma 0.99, rho 0.5 (the family defaults)."""


def qam_protocol_settings(domain: str) -> dict[str, Any]:
    """The QAM protocol's settings for ``domain`` shared by all its methods (:data:`QAM_PROTOCOL_SETTINGS`;
    empty for the other domains)."""
    return dict(QAM_PROTOCOL_SETTINGS.get(domain, {}))


QAM_INV_TEMP: dict[str, float] = {
    "puzzle-3x3": 3.0, "scene": 1.0, "cube-double": 1.0, "cube-triple": 3.0, "cube-quadruple": 1.0,
    "puzzle-4x4": 30.0, "antmaze-large": 10.0, "antmaze-giant": 3.0, "humanoidmaze-medium": 3.0,
    "humanoidmaze-large": 3.0,
}
"""QAM's inverse temperature per domain: the ``QAM`` row of the authors' reproduction script
(github.com/ColinQiyangLi/qam ``experiments/reproduce.py``, which ran the released results), tuned per domain by
the authors; qam also takes the protocol's :data:`QAM_PROTOCOL_SETTINGS`. robomimic is not in the QAM paper (the
config default 1.0 applies). The paper's own hyperparameter table could not be read where this was written, so
no disagreement with it could be checked; the values are the script's."""


STEERED_DOMAIN_SETTINGS: dict[str, dict[str, dict[str, float]]] = {
    "fedit": {
        "puzzle-3x3": {"edit_scale": 0.2}, "scene": {"edit_scale": 0.2}, "cube-double": {"edit_scale": 0.2},
        "cube-triple": {"edit_scale": 0.3}, "cube-quadruple": {"edit_scale": 0.4},
        "puzzle-4x4": {"edit_scale": 0.8}, "antmaze-large": {"edit_scale": 0.2},
        "antmaze-giant": {"edit_scale": 0.3}, "humanoidmaze-medium": {"edit_scale": 0.5},
        "humanoidmaze-large": {"edit_scale": 0.1},
    },
    "dsrl": {
        "puzzle-3x3": {"noise_scale": 1.0}, "scene": {"noise_scale": 0.4}, "cube-double": {"noise_scale": 1.0},
        "cube-triple": {"noise_scale": 1.4}, "cube-quadruple": {"noise_scale": 1.4},
        "puzzle-4x4": {"noise_scale": 1.0}, "antmaze-large": {"noise_scale": 0.8},
        "antmaze-giant": {"noise_scale": 1.2}, "humanoidmaze-medium": {"noise_scale": 0.6},
        "humanoidmaze-large": {"noise_scale": 0.8},
    },
}
"""FEdit's ``edit_scale`` and DSRL's ``noise_scale`` per domain: the ``FEDIT`` and ``DSRL`` rows of the QAM
authors' reproduction script (github.com/ColinQiyangLi/qam ``experiments/reproduce.py``, which ran the
released results), tuned per domain by the authors. The paper's own hyperparameter table could not be read
where this was written, so no disagreement with it could be checked; the values are the script's.
robomimic is not in the QAM paper: the config defaults apply (edit_scale 0.2, noise_scale 1.0)."""

QAM_VARIANT_SETTINGS: dict[str, dict[str, dict[str, float]]] = {
    "qam-f": {
        "puzzle-3x3": {"inv_temp": 3.0, "alpha": 0.0}, "scene": {"inv_temp": 1.0, "alpha": 300.0},
        "cube-double": {"inv_temp": 1.0, "alpha": 0.0}, "cube-triple": {"inv_temp": 10.0, "alpha": 300.0},
        "cube-quadruple": {"inv_temp": 0.3, "alpha": 30.0}, "puzzle-4x4": {"inv_temp": 3.0, "alpha": 3.0},
        "antmaze-large": {"inv_temp": 3.0, "alpha": 30.0}, "antmaze-giant": {"inv_temp": 3.0, "alpha": 30.0},
        "humanoidmaze-medium": {"inv_temp": 1.0, "alpha": 30.0},
        "humanoidmaze-large": {"inv_temp": 0.3, "alpha": 30.0},
    },
    "qam-e": {
        "puzzle-3x3": {"inv_temp": 1.0, "edit_scale": 0.1}, "scene": {"inv_temp": 1.0, "edit_scale": 0.0},
        "cube-double": {"inv_temp": 1.0, "edit_scale": 0.0}, "cube-triple": {"inv_temp": 3.0, "edit_scale": 0.1},
        "cube-quadruple": {"inv_temp": 3.0, "edit_scale": 0.1}, "puzzle-4x4": {"inv_temp": 0.1, "edit_scale": 0.9},
        "antmaze-large": {"inv_temp": 1.0, "edit_scale": 0.1}, "antmaze-giant": {"inv_temp": 10.0, "edit_scale": 0.1},
        "humanoidmaze-medium": {"inv_temp": 3.0, "edit_scale": 0.1},
        "humanoidmaze-large": {"inv_temp": 3.0, "edit_scale": 0.1},
    },
    "bam": {
        "puzzle-3x3": {"inv_temp": 10.0}, "scene": {"inv_temp": 10.0}, "cube-double": {"inv_temp": 10.0},
        "cube-triple": {"inv_temp": 30.0}, "cube-quadruple": {"inv_temp": 10.0}, "puzzle-4x4": {"inv_temp": 30.0},
        "antmaze-large": {"inv_temp": 30.0}, "antmaze-giant": {"inv_temp": 30.0},
        "humanoidmaze-medium": {"inv_temp": 10.0}, "humanoidmaze-large": {"inv_temp": 30.0},
    },
    "cgql": {
        "puzzle-3x3": {"inv_temp": 10.0, "guidance_coef": 0.1},
        "scene": {"inv_temp": 10.0, "guidance_coef": 0.1},
        "cube-double": {"inv_temp": 10.0, "guidance_coef": 0.01},
        "cube-triple": {"inv_temp": 10.0, "guidance_coef": 0.1},
        "cube-quadruple": {"inv_temp": 10.0, "guidance_coef": 0.1},
        "puzzle-4x4": {"inv_temp": 10.0, "guidance_coef": 0.1},
        "antmaze-large": {"inv_temp": 10.0, "guidance_coef": 0.1},
        "antmaze-giant": {"inv_temp": 10.0, "guidance_coef": 0.1},
        "humanoidmaze-medium": {"inv_temp": 10.0, "guidance_coef": 0.01},
        "humanoidmaze-large": {"inv_temp": 10.0, "guidance_coef": 0.01},
    },
    "cgql-m": {
        "puzzle-3x3": {"inv_temp": 10.0, "guidance_coef": 0.1, "noisy_coef": 0.1},
        "scene": {"inv_temp": 10.0, "guidance_coef": 0.1, "noisy_coef": 0.1},
        "cube-double": {"inv_temp": 10.0, "guidance_coef": 0.01, "noisy_coef": 0.001},
        "cube-triple": {"inv_temp": 10.0, "guidance_coef": 0.1, "noisy_coef": 0.001},
        "cube-quadruple": {"inv_temp": 10.0, "guidance_coef": 0.01, "noisy_coef": 0.1},
        "puzzle-4x4": {"inv_temp": 10.0, "guidance_coef": 1.0, "noisy_coef": 0.001},
        "antmaze-large": {"inv_temp": 10.0, "guidance_coef": 0.1, "noisy_coef": 0.1},
        "antmaze-giant": {"inv_temp": 10.0, "guidance_coef": 0.1, "noisy_coef": 0.001},
        "humanoidmaze-medium": {"inv_temp": 10.0, "guidance_coef": 0.1, "noisy_coef": 0.1},
        "humanoidmaze-large": {"inv_temp": 10.0, "guidance_coef": 0.1, "noisy_coef": 0.1},
    },
    "cgql-l": {
        "puzzle-3x3": {"inv_temp": 10.0, "guidance_coef": 0.1, "noisy_coef": 0.001},
        "scene": {"inv_temp": 10.0, "guidance_coef": 0.1, "noisy_coef": 0.1},
        "cube-double": {"inv_temp": 10.0, "guidance_coef": 0.01, "noisy_coef": 0.001},
        "cube-triple": {"inv_temp": 10.0, "guidance_coef": 0.1, "noisy_coef": 0.001},
        "cube-quadruple": {"inv_temp": 10.0, "guidance_coef": 0.01, "noisy_coef": 0.1},
        "puzzle-4x4": {"inv_temp": 10.0, "guidance_coef": 1.0, "noisy_coef": 0.001},
        "antmaze-large": {"inv_temp": 10.0, "guidance_coef": 0.1, "noisy_coef": 0.001},
        "antmaze-giant": {"inv_temp": 10.0, "guidance_coef": 0.1, "noisy_coef": 0.001},
        "humanoidmaze-medium": {"inv_temp": 10.0, "guidance_coef": 0.1, "noisy_coef": 0.1},
        "humanoidmaze-large": {"inv_temp": 10.0, "guidance_coef": 0.1, "noisy_coef": 0.1},
    },
}
"""QAM-F's ``inv_temp`` and ``alpha`` and QAM-E's ``inv_temp`` and ``edit_scale`` per domain: the ``QAM_FQL`` and
``QAM_EDIT`` rows of the QAM authors' reproduction script (github.com/ColinQiyangLi/qam
``experiments/reproduce.py``, which ran the released results). Where it gives ``alpha`` 0 (QAM-F on puzzle-3x3 and
cube-double) or ``edit_scale`` 0 (QAM-E on scene and cube-double) the authors' code trains no extra policy, so
the method is QAM with that row's ``inv_temp`` there; qchunk does the same. The paper's own hyperparameter table
could not be read where this was written, so the values are the script's. robomimic is not in the QAM paper: the
config defaults apply (inv_temp 1, alpha 30, edit_scale 0.2). BAM's ``inv_temp`` is the script's ``BAM`` row
(robomimic: the config default 0.3). CGQL's, CGQL-M's and CGQL-L's ``inv_temp``, ``guidance_coef`` and
``noisy_coef`` are the script's ``CGQL``, ``CGQL_MSE`` and ``CGQL_LINEX`` rows (their ``mode`` is the agent's,
:data:`VARIANTS`; robomimic: the config defaults 1, 0.1, 0.001)."""

QAM_METHOD_SETTINGS: dict[str, dict[str, dict[str, float]]] = {
    "rebrac": {
        "puzzle-3x3": {"alpha_actor": 0.1, "actor_noise": 0.0}, "scene": {"alpha_actor": 0.03, "actor_noise": 0.0},
        "cube-double": {"alpha_actor": 0.01, "actor_noise": 0.0},
        "cube-triple": {"alpha_actor": 0.01, "actor_noise": 0.2},
        "cube-quadruple": {"alpha_actor": 0.01, "actor_noise": 0.2},
        "puzzle-4x4": {"alpha_actor": 0.01, "actor_noise": 0.2},
        "antmaze-large": {"alpha_actor": 0.01, "actor_noise": 0.0},
        "antmaze-giant": {"alpha_actor": 0.01, "actor_noise": 0.0},
        "humanoidmaze-medium": {"alpha_actor": 0.01, "actor_noise": 0.0},
        "humanoidmaze-large": {"alpha_actor": 0.01, "actor_noise": 0.1},
    },
    "fbrac": {
        "puzzle-3x3": {"alpha": 0.03}, "scene": {"alpha": 100.0}, "cube-double": {"alpha": 0.1},
        "cube-triple": {"alpha": 0.03}, "cube-quadruple": {"alpha": 1.0}, "puzzle-4x4": {"alpha": 0.3},
        "antmaze-large": {"alpha": 0.1}, "antmaze-giant": {"alpha": 0.1}, "humanoidmaze-medium": {"alpha": 30.0},
        "humanoidmaze-large": {"alpha": 10.0},
    },
    "ifql": {
        "puzzle-3x3": {"kappa": 0.95}, "scene": {"kappa": 0.9}, "cube-double": {"kappa": 0.9},
        "cube-triple": {"kappa": 0.95}, "cube-quadruple": {"kappa": 0.95}, "puzzle-4x4": {"kappa": 0.9},
        "antmaze-large": {"kappa": 0.9}, "antmaze-giant": {"kappa": 0.8}, "humanoidmaze-medium": {"kappa": 0.7},
        "humanoidmaze-large": {"kappa": 0.8},
    },
    "fawac": {
        "puzzle-3x3": {"inv_temp": 0.8}, "scene": {"inv_temp": 6.4}, "cube-double": {"inv_temp": 0.8},
        "cube-triple": {"inv_temp": 0.8}, "cube-quadruple": {"inv_temp": 0.8}, "puzzle-4x4": {"inv_temp": 0.8},
        "antmaze-large": {"inv_temp": 6.4}, "antmaze-giant": {"inv_temp": 0.8},
        "humanoidmaze-medium": {"inv_temp": 6.4}, "humanoidmaze-large": {"inv_temp": 0.8},
    },
}
"""The per-domain values of the QAM-table methods outside the families above (their own config classes, every
default the QAM release's, K=10 and the pessimistic target included), keyed by agent: the rows of the QAM authors'
reproduction script (github.com/ColinQiyangLi/qam ``experiments/reproduce.py``): ReBRAC's ``alpha_actor`` and
``actor_noise``, FBRAC's ``alpha``, IFQL's expectile ``kappa`` and FAWAC's ``inv_temp``. These methods follow the
QAM protocol under every preset (the protocol's
:data:`QAM_PROTOCOL_SETTINGS` apply too); robomimic is not in the QAM paper (the config defaults apply)."""

DIFFUSION_DOMAIN_SETTINGS: dict[str, dict[str, dict[str, float]]] = {
    "qsm": {
        "puzzle-3x3": {"inv_temp": 10.0, "alpha": 30.0}, "scene": {"inv_temp": 3.0, "alpha": 30.0},
        "cube-double": {"inv_temp": 1.0, "alpha": 10.0}, "cube-triple": {"inv_temp": 10.0, "alpha": 10.0},
        "cube-quadruple": {"inv_temp": 1.0, "alpha": 10.0}, "puzzle-4x4": {"inv_temp": 10.0, "alpha": 1.0},
        "antmaze-large": {"inv_temp": 10.0, "alpha": 10.0}, "antmaze-giant": {"inv_temp": 10.0, "alpha": 10.0},
        "humanoidmaze-medium": {"inv_temp": 10.0, "alpha": 30.0},
        "humanoidmaze-large": {"inv_temp": 10.0, "alpha": 30.0},
    },
    "dac": {
        "puzzle-3x3": {"alpha": 1.0}, "scene": {"alpha": 1.0}, "cube-double": {"alpha": 3.0},
        "cube-triple": {"alpha": 0.3}, "cube-quadruple": {"alpha": 1.0}, "puzzle-4x4": {"alpha": 1.0},
        "antmaze-large": {"alpha": 0.3}, "antmaze-giant": {"alpha": 0.3}, "humanoidmaze-medium": {"alpha": 1.0},
        "humanoidmaze-large": {"alpha": 0.3},
    },
}
"""QSM's ``inv_temp`` and ``alpha`` and DAC's ``alpha`` per domain: the ``QSM`` and ``DAC`` rows of the QAM authors'
reproduction script (github.com/ColinQiyangLi/qam ``experiments/reproduce.py``, which ran the released results);
its sampler clips (QSM after each step, DAC before) are the same in every domain and live in :data:`VARIANTS`.
robomimic is not in the QAM paper: the config defaults apply (inv_temp 1, alpha 0, the authors' defaults)."""

QAM_FQL_ALPHA: dict[str, float] = {
    "puzzle-3x3": 300.0, "scene": 300.0, "cube-double": 300.0, "cube-triple": 30.0, "cube-quadruple": 100.0,
    "puzzle-4x4": 1.0, "antmaze-large": 3.0, "antmaze-giant": 3.0, "humanoidmaze-medium": 30.0,
    "humanoidmaze-large": 30.0,
}
"""FQL's ``alpha`` in the QAM protocol (``--preset qam``), per domain: the ``FQL`` row of the QAM reproduction
script, for chunks of 5 on the manipulation domains (qchunk's ``qc-fql``) and single actions on the mazes
(``fql``). For ``qc-fql`` it differs from the Q-chunking paper's table (:data:`DOMAIN_STRENGTHS`, the ``paper``
preset) only on cube-triple (30 vs 100); the two protocols differ otherwise too (K=10 and the pessimistic target
here, K=2 and the mean there)."""

QAM_SHARD_DIRS: dict[str, str] = {
    "cube-quadruple": "cube-quadruple-play-100m-v0", "puzzle-4x4": "puzzle-4x4-play-100m-v0",
}
"""The domains whose 100M sharded dataset the QAM protocol trains on, and the directory (inside
``--dataset-dir``) that ``--preset qam`` reads their shards from, as the reproduction script's
``ogbench_dataset_dir`` (a run setting; :class:`~qchunk.training.TrainConfig` applies it)."""


def qam_preset_settings(name: str, domain: str) -> dict[str, Any]:
    """What ``--preset qam`` sets for agent ``name`` in ``domain`` on top of its paper-preset resolution: for FQL
    (``qc-fql``, ``fql``) and RLPD (``rlpd-ac``, ``rlpd``) the protocol every QAM method shares (K=10 critics, the
    target ``mean - 0.5 std``, :data:`QAM_PROTOCOL_SETTINGS`), FQL's :data:`QAM_FQL_ALPHA` and the QAM code's
    ``bc_weighting='chunk'``, and RLPD's code (the QAM repo's networks, ``networks='qam'``, and BC mask,
    ``bc_mask='chunk'``); nothing for the
    QAM agents, fedit, dsrl, qsm, dac and the methods of :data:`QAM_METHOD_SETTINGS`, which follow the QAM
    protocol under every preset.

    Raises:
        QchunkError: ``name`` is not one of :func:`~qchunk.agents.registry.qam_preset_agents` (the registered
            agents with a QAM release curve).
    """
    runs = qam_preset_agents()
    if name not in runs:
        raise QchunkError(f"preset qam is the QAM paper's protocol, which runs {', '.join(runs)}; "
                          f"{name} is not among them: use --preset paper (or quick) for {name}")
    if agent_family(name) in ("qam", "steered", "diffusion") or name in QAM_METHOD_SETTINGS:
        return {}
    fields: dict[str, Any] = {"num_critics": 10, "q_agg": "mean", "rho": 0.5, **qam_protocol_settings(domain)}
    if name in ("qc-fql", "fql"):
        fields["bc_weighting"] = "chunk"  # the QAM repo's agents/fql.py drops a window crossing an episode end
        if domain in QAM_FQL_ALPHA:
            fields["alpha"] = QAM_FQL_ALPHA[domain]
    if agent_family(name) == "sac":  # the QAM repo's agents/rlpd.py: its networks, its BC mask
        fields.update(networks="qam", bc_mask="chunk")
    return fields


DOMAIN_NAMES: tuple[str, ...] = tuple(DOMAIN_STRENGTHS)
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)


def config_class(name: str) -> type[AgentConfig]:
    """The config class of agent ``name``, as registered (:mod:`qchunk.agents.registry`).

    Raises:
        QchunkError: ``name`` is not a registered agent.
    """
    return agent_spec(name).config


def domain_settings(name: str, domain: str) -> dict[str, Any]:
    """The per-domain field values of agent ``name`` in ``domain`` (``alpha`` or ``num_samples`` of the flow
    agents; qam's :data:`QAM_INV_TEMP`, fedit's / dsrl's :data:`STEERED_DOMAIN_SETTINGS`, qsm's / dac's
    :data:`DIFFUSION_DOMAIN_SETTINGS`, the other QAM-table methods' :data:`QAM_METHOD_SETTINGS`, and for those the
    protocol's :data:`QAM_PROTOCOL_SETTINGS`; the RLPD family has no per-domain setting). The rows that apply
    follow from the agent's family (:func:`agent_family`) and are keyed by its registered name; an agent without
    a row takes its config's defaults."""
    family = agent_family(name)
    if name in QAM_METHOD_SETTINGS:
        return {**qam_protocol_settings(domain), **QAM_METHOD_SETTINGS[name].get(domain, {})}
    if family == "qam":
        inv_temp = {"inv_temp": QAM_INV_TEMP[domain]} if domain in QAM_INV_TEMP else {}
        variant = QAM_VARIANT_SETTINGS.get(name, {}).get(domain, {})
        return {**qam_protocol_settings(domain), **inv_temp, **variant}
    if family == "steered":
        return {**qam_protocol_settings(domain), **STEERED_DOMAIN_SETTINGS.get(name, {}).get(domain, {})}
    if family == "diffusion":
        return {**qam_protocol_settings(domain), **DIFFUSION_DOMAIN_SETTINGS.get(name, {}).get(domain, {})}
    if family != "flow":
        return {}
    row = DOMAIN_STRENGTHS[domain]
    return {
        "qc": {"num_samples": row.qc_n},
        "bfn": {"num_samples": row.bfn_n},
        "bfn-n": {"num_samples": row.bfn_n_n},
        "qc-fql": {"alpha": row.qc_fql_alpha},
        "fql": {"alpha": row.fql_alpha},
        "fql-n": {"alpha": row.fql_n_alpha},
    }.get(name, {})


def _choose(kind: str, value: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise QchunkError(f"unknown {kind} {value!r}{did_you_mean(value, valid)}; choose one of: {', '.join(valid)}")
    return value


def agent_config(name: str, preset: str = "paper", domain: str | None = None, **overrides: Any) -> AgentConfig:
    """Resolve the configuration of agent ``name`` without building networks.

    Args:
        name: a registered agent (:func:`~qchunk.agents.registry.agent_names`).
        preset: one of :data:`PRESET_NAMES` (``paper``, ``quick`` or ``qam``, the QAM protocol: only for
            :func:`~qchunk.agents.registry.qam_preset_agents`).
        domain: one of :data:`DOMAIN_NAMES`; selects alpha / N (default ``cube-double``).
        **overrides: any field of the agent's config class (:func:`config_class`), applied last.
    Returns:
        An instance of :func:`config_class` ``(name)``.
    Raises:
        QchunkError: unknown name, preset, domain or override field, or an invalid value.
    """
    _choose("agent", name, agent_names())
    _choose("preset", preset, PRESET_NAMES)
    domain = _choose("domain", DEFAULT_DOMAIN if domain is None else domain, DOMAIN_NAMES)
    cls = config_class(name)
    settable = tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("agent", "preset", "domain"))
    unknown = sorted(set(overrides) - set(settable))
    if unknown:
        raise QchunkError(f"unknown setting(s) {', '.join(unknown)} for agent {name}"
                          f"{did_you_mean(unknown[0], settable)}; valid settings: {', '.join(settable)}")
    fields: dict[str, Any] = {"agent": name, "preset": preset, "domain": domain}
    fields.update(FAMILY_DEFAULTS.get(cls, {}))
    fields.update(PRESETS[preset])
    fields.update(VARIANTS.get(name, {}))
    fields.update(domain_settings(name, domain))
    if preset == "qam":
        fields.update(qam_preset_settings(name, domain))
    fields.update(overrides)
    try:
        return cls(**fields)
    except TypeError as e:  # e.g. a value of the wrong kind for a tuple field
        raise QchunkError(f"bad agent setting: {e}") from None
