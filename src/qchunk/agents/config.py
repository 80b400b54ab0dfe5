"""The typed, frozen configurations of the agents.

:class:`AgentConfig` holds what every agent shares (chunking, critic ensemble, optimisation);
:class:`FlowAgentConfig` (qc, qc-fql, bfn, bfn-n, fql, fql-n) and :class:`SacAgentConfig` (rlpd, rlpd-ac,
qc-rlpd) add their policy's settings. :mod:`qchunk.agents.presets` holds the named values (the paper's and a
CPU-sized ``quick`` one) and the per-domain constraint strengths.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Literal

from qchunk.errors import QchunkError, require_finite


@dataclass(frozen=True)
class AgentConfig:
    """Settings every agent has. Build a concrete config with :func:`qchunk.agents.agent_config`."""

    agent: str = "qc"
    """Variant name this config was resolved for (e.g. ``qc``, ``qc-fql``, ``rlpd``); informational, the
    behaviour is set by the fields below."""
    preset: str = "paper"
    """Preset the config was resolved from (``paper`` or ``quick``); informational."""
    domain: str = "cube-double"
    """Domain whose per-domain settings were applied; informational."""
    horizon: int = 5
    """Data chunk length h: the sampler must produce windows of h steps; the TD target discounts the
    bootstrap by ``discount**horizon``."""
    chunked: bool = True
    """Critic and policy act on the whole flattened chunk (``h*A`` numbers, executed open-loop). False
    gives the biased n-step baselines (``-n``): critic and policy read only the FIRST action of each
    window and the agent acts one action at a time, while the target still uses the h-step return."""
    discount: float = 0.99
    """Per-step discount gamma."""
    tau: float = 0.005
    """Polyak rate of the target critic: ``target <- tau * online + (1 - tau) * target``."""
    lr: float = 3e-4
    """Adam learning rate (one Adam over all trained parameters, as the reference code)."""
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Hidden widths of the actor networks."""
    critic_hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Hidden widths of each critic."""
    actor_layer_norm: bool = False
    """LayerNorm in the actor networks (off in the paper)."""
    critic_layer_norm: bool = True
    """LayerNorm in the critics (on in the paper)."""
    num_critics: int = 2
    """Critic ensemble size K (the paper: 2 for the flow agents, 10 for the RLPD family)."""
    q_agg: Literal["mean", "min"] = "mean"
    """How the K target critics are combined in the TD target (the paper: ``mean``, i.e. no clipped
    double-Q; ``min`` is clipped double-Q over the whole ensemble)."""

    pretrains_offline: ClassVar[bool] = True
    """Whether the family trains on the offline data before going online (flow agents) or starts online
    from scratch with the offline data mixed into every batch (the RLPD family)."""

    def __post_init__(self) -> None:
        # tyro and **overrides may hand over lists; keep the dataclass hashable (jit static field).
        for name in ("actor_hidden_dims", "critic_hidden_dims"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(int(v) for v in value))
        for f in dataclasses.fields(self):  # every float knob: NaN and inf pass the range checks below
            if isinstance(getattr(self, f.name), float):
                require_finite(getattr(self, f.name), f"bad agent config: {f.name}")
        for ok, message in self._checks():
            if not ok:
                raise QchunkError(f"bad agent config: {message}")

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            (self.q_agg in ("mean", "min"), f"q_agg must be 'mean' or 'min', got {self.q_agg!r}"),
            (self.horizon >= 1, f"horizon must be >= 1, got {self.horizon}"),
            (self.num_critics >= 1, f"num_critics must be >= 1, got {self.num_critics}"),
            (0.0 < self.discount <= 1.0, f"discount must be in (0, 1], got {self.discount}"),
            (0.0 < self.tau <= 1.0, f"tau must be in (0, 1], got {self.tau}"),
            (self.lr > 0.0, f"lr must be > 0, got {self.lr}"),
            (len(self.actor_hidden_dims) >= 1 and min(self.actor_hidden_dims) >= 1,
             f"actor_hidden_dims must be positive widths, got {self.actor_hidden_dims}"),
            (len(self.critic_hidden_dims) >= 1 and min(self.critic_hidden_dims) >= 1,
             f"critic_hidden_dims must be positive widths, got {self.critic_hidden_dims}"),
        ]

    @property
    def action_horizon(self) -> int:
        """Actions executed open-loop per policy query: ``horizon`` for chunked agents, else 1."""
        return self.horizon if self.chunked else 1

    def policy_dim(self, action_dim: int) -> int:
        """Width of a policy output / critic action input: ``action_horizon * action_dim``."""
        return self.action_horizon * action_dim

    def replace(self, **changes: object) -> AgentConfig:
        """A copy with ``changes`` applied (validated like a new config)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class FlowAgentConfig(AgentConfig):
    """All settings of a flow agent (qc, qc-fql, bfn, bfn-n, fql, fql-n). Build one with
    :func:`qchunk.agents.agent_config`. Best-of-N selection ranks candidates by the ``q_agg`` of the online
    critics; the ``distill`` actor's Q term always averages the ensemble, as the reference code."""

    policy: Literal["best_of_n", "distill"] = "best_of_n"
    """How actions are extracted from the flow BC policy. ``best_of_n``: sample ``num_samples``
    outputs of the flow (Euler, ``flow_steps`` steps, clipped to [-1, 1]) and keep the one with the
    highest ensemble-aggregated Q (the acting AND the TD-target action; QC, BFN). ``distill``: a
    one-step policy ``mu(s, z)`` trained with ``-Q + alpha * ||mu - flow||^2`` (QC-FQL, FQL)."""
    num_samples: int = 32
    """N, candidates per state for ``policy='best_of_n'`` (unused by ``distill``)."""
    alpha: float = 100.0
    """Distillation (behaviour-constraint) weight for ``policy='distill'`` (unused by ``best_of_n``)."""
    flow_steps: int = 10
    """Euler steps T of the flow policy's integration from noise (u=0) to action (u=1)."""
    normalize_q_loss: bool = False
    """Divide the ``distill`` actor's ``-Q`` term by ``mean |Q|`` (FQL option; off in the paper)."""

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            *super()._checks(),
            (self.policy in ("best_of_n", "distill"), f"policy must be 'best_of_n' or 'distill', got {self.policy!r}"),
            (self.num_samples >= 1, f"num_samples must be >= 1, got {self.num_samples}"),
            (self.flow_steps >= 1, f"flow_steps must be >= 1, got {self.flow_steps}"),
            (self.alpha >= 0.0, f"alpha must be >= 0, got {self.alpha}"),
        ]


@dataclass(frozen=True)
class SacAgentConfig(AgentConfig):
    """All settings of a SAC-style agent with prior data (rlpd, rlpd-ac, qc-rlpd): a tanh-squashed
    Gaussian actor over (flattened) chunks, a LayerNorm critic ensemble, an automatically tuned entropy
    temperature, trained online from scratch on batches that mix offline and online chunks.
    Build one with :func:`qchunk.agents.agent_config`."""

    backup_entropy: bool = False
    """Add the entropy bonus ``-temperature * log pi(a'|s')`` to the bootstrapped value in the TD target
    (standard SAC). Off in the paper's runs (the authors' best RLPD setting)."""
    init_temperature: float = 1.0
    """Initial entropy temperature (learned through its logarithm)."""
    target_entropy_per_dim: float = -0.5
    """Target entropy per policy-output dimension: the temperature is tuned so that the policy's entropy
    approaches ``target_entropy_per_dim * h * A`` (the paper: -0.5 x action dims)."""
    bc_coef: float = 0.0
    """Weight of the behaviour-cloning term ``-bc_coef * log pi(data chunk | s)`` in the actor loss
    (QC-RLPD: 0.01; steps past an episode end are left out of the log-likelihood)."""
    eval_policy: Literal["sample", "mean"] = "sample"
    """Evaluation actions: ``sample`` draws them from the tanh-Gaussian like exploration (the authors'
    evaluation, with which the paper's numbers were measured); ``mean`` takes the deterministic squashed
    mean ``tanh(mean(s))``."""

    pretrains_offline: ClassVar[bool] = False

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            *super()._checks(),
            (self.init_temperature > 0.0, f"init_temperature must be > 0, got {self.init_temperature}"),
            (self.bc_coef >= 0.0, f"bc_coef must be >= 0, got {self.bc_coef}"),
            (self.eval_policy in ("sample", "mean"),
             f"eval_policy must be 'sample' or 'mean', got {self.eval_policy!r}"),
        ]

    def target_entropy(self, action_dim: int) -> float:
        """The temperature's entropy target for per-step action dimension ``action_dim``."""
        return self.target_entropy_per_dim * self.policy_dim(action_dim)


FLOW_CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FlowAgentConfig))
"""Names of all :class:`FlowAgentConfig` fields."""
SAC_CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SacAgentConfig))
"""Names of all :class:`SacAgentConfig` fields."""
CONFIG_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(FLOW_CONFIG_FIELDS + SAC_CONFIG_FIELDS))
"""Names of every agent field of either family (the ``**overrides`` keys some agent accepts)."""
