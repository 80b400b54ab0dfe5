"""The Q-chunking agents (qc, qc-fql), their flow baselines (bfn, bfn-n, fql, fql-n) and the RLPD family
(rlpd, rlpd-ac, qc-rlpd).

The six flow agents are ONE :class:`FlowAgent` with different :class:`FlowAgentConfig` settings; the three
RLPD agents are ONE :class:`SacAgent` with different :class:`SacAgentConfig` settings; ``qam`` (Q-learning
with adjoint matching) is :class:`QamAgent`, the flow agent's BC flow and critic plus an adjoint-matched
fine-tuned flow (:class:`QamAgentConfig` extends :class:`FlowAgentConfig`); ``qam-f`` (:class:`QamFAgent`) and
``qam-e`` (:class:`QamEAgent`) add an FQL one-step policy distilled from the fine-tuned flow or FEdit's edit
policy on the fine-tuned flow's chunk (:mod:`qchunk.agents.qam_variants`). All share the batch contract, the
chunked critic objective, the ensemble, the target update and the UTD scan (:mod:`qchunk.agents.common`,
:mod:`qchunk.agents.td`).

``fedit`` (:class:`FEditAgent`) and ``dsrl`` (:class:`DsrlAgent`) steer a flow-matching BC policy over chunks
with a tanh-Gaussian actor and a learned temperature (the SAC family's losses): FEdit edits the flow's chunk
(the edit policy of :mod:`qchunk.agents.edit`, which QAM-E reuses), DSRL chooses the flow's initial noise.

Public API::

    agent = make_agent("qc", observation_dim=37, action_dim=5, preset="paper", domain="cube-double")
    agent.config.horizon      # h, the window length the chunk sampler must produce (5 or 1)
    agent.action_horizon      # actions executed open-loop per query (h for chunked agents, else 1)
    agent, info = agent.update(batch)            # jitted, pure; info: flat dict of scalars
    agent, infos = agent.update_many(batches)    # U updates in one lax.scan; infos[k] has shape (U,)
    chunk = agent.sample_actions(obs, rng)       # (obs_dim,) -> (H, A); (B, obs_dim) -> (B, H, A)
    chunk = agent.eval_actions(obs, rng)         # evaluation policy (SAC: sampled, or the mean)
    agent.config.pretrains_offline               # False for the RLPD family (online from scratch)
    config = agent_config("qc-fql", "paper", "cube-triple", num_critics=10)  # no networks built

Batch contract (float32 arrays; ``B`` batch, ``h = config.horizon``, ``A`` action dim):

* ``observations (B, obs_dim)`` the state ``s_t``;
* ``actions (B, h, A)`` the data chunk ``a_t .. a_{t+h-1}`` in [-1, 1];
* ``rewards (B, h)`` cumulative discounted rewards, ``rewards[:, k] = sum_{j<=k} gamma^j r_{t+j}``;
* ``masks (B, h)`` 0 once a success termination happened in the window, else 1;
* ``valid (B, h)`` 1 for steps inside the episode, 0 after an episode boundary;
* ``next_observations (B, h, obs_dim)`` with ``next_observations[:, k] = s_{t+k+1}``.

The critic target is ``rewards[:, -1] + gamma**h * masks[:, -1] * agg_k Q'_k(s_{t+h}, a')`` and the
critic loss is weighted by ``valid[:, -1]``.
"""

import dataclasses
from typing import Any

from qchunk.agents.bam import BamAgent, BamAgentConfig
from qchunk.agents.cgql import CgqlAgent, CgqlAgentConfig
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
from qchunk.agents.diffusion_agent import DiffusionAgent, DiffusionAgentConfig
from qchunk.agents.dsrl import DsrlAgent
from qchunk.agents.edit import FEditAgent
from qchunk.agents.fawac import FawacAgent, FawacAgentConfig
from qchunk.agents.fbrac import FBracAgent, FBracAgentConfig
from qchunk.agents.flow_agent import FlowAgent, FlowNetworks, build_networks
from qchunk.agents.ifql import IfqlAgent, IfqlAgentConfig
from qchunk.agents.presets import (
    DEFAULT_DOMAIN,
    DOMAIN_NAMES,
    DOMAIN_STRENGTHS,
    PRESET_NAMES,
    agent_config,
    config_class,
)
from qchunk.agents.qam import QamAgent
from qchunk.agents.qam_variants import QamEAgent, QamFAgent
from qchunk.agents.rebrac import ReBracAgent, ReBracAgentConfig
from qchunk.agents.registry import AgentSpec, agent_class, agent_names, config_classes, register
from qchunk.agents.sac_agent import SacAgent, SacNetworks, build_sac_networks
from qchunk.errors import QchunkError

Agent = (FlowAgent | SacAgent | QamAgent | QamFAgent | QamEAgent | FEditAgent | DsrlAgent | ReBracAgent | FBracAgent
         | IfqlAgent | FawacAgent | BamAgent | CgqlAgent | DiffusionAgent)
"""Any built-in agent :func:`make_agent` builds."""

_QC_PAPER = "Q. Li, Z. Zhou, S. Levine 2025, Reinforcement Learning with Action Chunking (arXiv 2507.07969)"
_FQL_PAPER = "S. Park, Q. Li, S. Levine 2025, Flow Q-Learning (arXiv 2502.02538)"
_RLPD_PAPER = ("P. Ball, L. Smith, I. Kostrikov, S. Levine 2023, Efficient Online RL with Offline Data "
               "(arXiv 2302.02948)")
_QAM_PAPER = "Q. Li, S. Levine 2026, Q-learning with Adjoint Matching (arXiv 2601.14234)"

# The built-in agents, in the order every list shows them. A new method adds its registration here (or calls
# qchunk.agents.registry.register from its own module); see docs/architecture.md.
for _spec in (
    AgentSpec("qc", FlowAgent, FlowAgentConfig, "QC", _QC_PAPER, paper_curve="QC"),
    AgentSpec("qc-fql", FlowAgent, FlowAgentConfig, "QC-FQL", _QC_PAPER, paper_curve="QC-FQL", qam_curve="FQL",
              qam_datasets=("play",)),
    AgentSpec("bfn", FlowAgent, FlowAgentConfig, "BFN", _QC_PAPER, paper_curve="BFN"),
    AgentSpec("bfn-n", FlowAgent, FlowAgentConfig, "BFN-n", _QC_PAPER, paper_curve="BFN-n"),
    AgentSpec("fql", FlowAgent, FlowAgentConfig, "FQL", _FQL_PAPER, paper_curve="FQL", qam_curve="FQL",
              qam_datasets=("navigate",)),
    AgentSpec("fql-n", FlowAgent, FlowAgentConfig, "FQL-n", _QC_PAPER, paper_curve="FQL-n"),
    AgentSpec("rlpd", SacAgent, SacAgentConfig, "RLPD", _RLPD_PAPER, paper_curve="RLPD", qam_curve="RLPD",
              qam_datasets=("navigate",)),
    AgentSpec("rlpd-ac", SacAgent, SacAgentConfig, "RLPD-AC", _QC_PAPER, paper_curve="RLPD-AC", qam_curve="RLPD",
              qam_datasets=("play",)),
    AgentSpec("qc-rlpd", SacAgent, SacAgentConfig, "QC-RLPD", _QC_PAPER),
    AgentSpec("qam", QamAgent, QamAgentConfig, "QAM", _QAM_PAPER, qam_curve="QAM"),
    # QAM-F / QAM-E: the reproduction script's alpha / edit_scale is 0 on cube-double (they are QAM there).
    AgentSpec("qam-f", QamFAgent, QamFAgentConfig, "QAM-F", _QAM_PAPER, qam_curve="QAM-F", bench_domain="cube-triple"),
    AgentSpec("qam-e", QamEAgent, QamEAgentConfig, "QAM-E", _QAM_PAPER, qam_curve="QAM-E", bench_domain="cube-triple"),
    AgentSpec("fedit", FEditAgent, FEditAgentConfig, "FEdit",
              "P. Dong, Q. Li, D. Sadigh, C. Finn 2025, EXPO: Stable Reinforcement Learning with Expressive Policies "
              "(arXiv 2507.07986), as the QAM paper runs it", qam_curve="FEdit"),
    AgentSpec("dsrl", DsrlAgent, DsrlAgentConfig, "DSRL",
              "A. Wagenmaker et al. 2025, Steering Your Diffusion Policy with Latent Space Reinforcement Learning "
              "(arXiv 2506.15799), as the QAM paper runs it", qam_curve="DSRL"),
    AgentSpec("rebrac", ReBracAgent, ReBracAgentConfig, "ReBRAC",
              "D. Tarasov, V. Kurenkov, A. Nikulin, S. Kolesnikov 2023, Revisiting the Minimalist Approach to Offline "
              "Reinforcement Learning (arXiv 2305.09836), as the QAM paper runs it", qam_curve="ReBRAC"),
    AgentSpec("fbrac", FBracAgent, FBracAgentConfig, "FBRAC",
              f"{_FQL_PAPER}, its flow BRAC baseline, as the QAM paper runs it", qam_curve="FBRAC"),
    AgentSpec("ifql", IfqlAgent, IfqlAgentConfig, "IFQL",
              "S. Park, Q. Li, S. Levine 2025, Flow Q-Learning (arXiv 2502.02538): IFQL, the flow variant of IDQL "
              "(P. Hansen-Estruch et al. 2023, arXiv 2304.10573), as the QAM paper runs it", qam_curve="IFQL"),
    AgentSpec("fawac", FawacAgent, FawacAgentConfig, "FAWAC",
              "A. Nair, A. Gupta, M. Dalal, S. Levine 2020, AWAC: Accelerating Online Reinforcement Learning with "
              "Offline Datasets (arXiv 2006.09359), with a flow policy, as the QAM paper runs it", qam_curve="FAWAC"),
    # BAM: QAM with the fine-tuned flow trained through its sampling chain (the QAM paper's ablation).
    AgentSpec("bam", BamAgent, BamAgentConfig, "BAM", _QAM_PAPER, qam_curve="BAM"),
    # CGQL: classifier guidance of the BC flow by grad Q (the QAM paper's baselines), in its three modes.
    AgentSpec("cgql", CgqlAgent, CgqlAgentConfig, "CGQL", _QAM_PAPER, qam_curve="CGQL"),
    AgentSpec("cgql-m", CgqlAgent, CgqlAgentConfig, "CGQL-M", _QAM_PAPER, qam_curve="CGQL-M"),
    AgentSpec("cgql-l", CgqlAgent, CgqlAgentConfig, "CGQL-L", _QAM_PAPER, qam_curve="CGQL-L"),
    AgentSpec("qsm", DiffusionAgent, DiffusionAgentConfig, "QSM",
              "M. Psenka, A. Escontrela, P. Abbeel, Y. Ma 2024, Learning a Diffusion Model Policy from Rewards via "
              "Q-Score Matching (arXiv 2312.11752), as the QAM paper runs it", qam_curve="QSM"),
    AgentSpec("dac", DiffusionAgent, DiffusionAgentConfig, "DAC",
              "L. Fang, R. Liu, J. Zhang, W. Wang, B.-Y. Jing 2025, Diffusion Actor-Critic: Formulating Constrained "
              "Policy Iteration as Diffusion Noise Regression for Offline Reinforcement Learning (arXiv 2405.20555), "
              "as the QAM paper runs it", qam_curve="DAC"),
):
    register(_spec)
del _spec


def __getattr__(name: str) -> Any:
    """The agent lists, derived from the registry (:mod:`qchunk.agents.registry`) on each access:
    ``AGENT_NAMES`` (every agent), ``FLOW_AGENT_NAMES``, ``SAC_AGENT_NAMES``, ``QAM_AGENT_NAMES``,
    ``STEERED_AGENT_NAMES`` (one preset family each, :func:`qchunk.agents.presets.agent_family`),
    ``AGENT_CLASSES`` (config class -> agent class) and ``CONFIG_FIELDS`` (every agent field)."""
    if name == "AGENT_CLASSES":
        return {cls: agent_class(cls) for cls in config_classes()}
    if name == "CONFIG_FIELDS":
        return tuple(dict.fromkeys(f.name for cls in config_classes() for f in dataclasses.fields(cls)))
    if name.endswith("_AGENT_NAMES") or name == "AGENT_NAMES":
        from qchunk.agents import presets

        return getattr(presets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_agent(
    name: str,
    observation_dim: int,
    action_dim: int,
    preset: str = "paper",
    domain: str | None = None,
    seed: int = 0,
    **overrides: Any,
) -> Agent:
    """Build agent ``name`` (a registered agent, see :data:`AGENT_NAMES`) with fresh parameters.

    Args:
        name: the agent's registered name (``qc``, ``qc-fql``, ``rlpd``, ``qam``, ...; :data:`AGENT_NAMES`).
        observation_dim: width of a state vector.
        action_dim: width A of one action.
        preset: ``paper`` (4x512 networks, the paper's settings), ``quick`` (2x256, for CPU demos) or ``qam``
            (the QAM paper's protocol, for the agents it runs).
        domain: selects alpha / N from the paper's table (default ``cube-double``).
        seed: integer seed of the initial parameters and of the agent's update key.
        **overrides: any field of the agent's config class (e.g. ``horizon=10``, ``q_agg="min"``).
    Raises:
        QchunkError: unknown agent, preset, domain or setting, or invalid dimensions/values.
    """
    config = agent_config(name, preset, domain, **overrides)
    for label, value in (("observation_dim", observation_dim), ("action_dim", action_dim)):
        if int(value) < 1:
            raise QchunkError(f"{label} must be a positive integer, got {value}")
    return create_agent(config, observation_dim, action_dim, seed)


__all__ = [
    "AGENT_CLASSES",
    "AGENT_NAMES",
    "CONFIG_FIELDS",
    "DEFAULT_DOMAIN",
    "DOMAIN_NAMES",
    "DOMAIN_STRENGTHS",
    "FLOW_AGENT_NAMES",
    "PRESET_NAMES",
    "QAM_AGENT_NAMES",
    "SAC_AGENT_NAMES",
    "STEERED_AGENT_NAMES",
    "Agent",
    "AgentConfig",
    "BamAgent",
    "BamAgentConfig",
    "CgqlAgent",
    "CgqlAgentConfig",
    "DiffusionAgent",
    "DiffusionAgentConfig",
    "DsrlAgent",
    "DsrlAgentConfig",
    "FBracAgent",
    "FBracAgentConfig",
    "FEditAgent",
    "FEditAgentConfig",
    "FawacAgent",
    "FawacAgentConfig",
    "FlowAgent",
    "FlowAgentConfig",
    "FlowNetworks",
    "IfqlAgent",
    "IfqlAgentConfig",
    "QamAgent",
    "QamAgentConfig",
    "QamEAgent",
    "QamEAgentConfig",
    "QamFAgent",
    "QamFAgentConfig",
    "ReBracAgent",
    "ReBracAgentConfig",
    "SacAgent",
    "SacAgentConfig",
    "SacNetworks",
    "SteeredFlowConfig",
    "agent_config",
    "agent_config_from_dict",
    "agent_names",
    "build_networks",
    "build_sac_networks",
    "create_agent",
    "make_agent",
]


def agent_config_from_dict(d: dict[str, Any]) -> AgentConfig:
    """The agent config written as ``dataclasses.asdict(config)`` (a run's ``config.json``), exactly.

    Raises:
        QchunkError: ``d`` names no known agent or holds fields its family does not have.
    """
    name = d.get("agent")
    if name not in agent_names():
        raise QchunkError(f"the stored agent config names no known agent ({name!r})")
    cls = config_class(name)
    try:
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})
    except TypeError as e:
        raise QchunkError(f"the stored {name} config does not fit this qchunk version ({e})") from None


def create_agent(config: AgentConfig, observation_dim: int, action_dim: int, seed: int = 0) -> Agent:
    """Fresh parameters for an already resolved ``config`` (see :func:`make_agent` to resolve a preset)."""
    cls = agent_class(type(config))
    return cls.create(config, int(observation_dim), int(action_dim), seed=seed)
