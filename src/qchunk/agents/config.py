"""The typed, frozen configuration of the flow agent family (qc, qc-fql, bfn, bfn-n, fql, fql-n).

Every variant is a setting of :class:`FlowAgentConfig`; :mod:`qchunk.agents.presets` holds the named
values (the paper's and a CPU-sized ``quick`` one) and the per-domain constraint strengths.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from qchunk.errors import QchunkError


@dataclass(frozen=True)
class FlowAgentConfig:
    """All settings of a flow agent. Build one with :func:`qchunk.agents.agent_config`."""

    agent: str = "qc"
    """Variant name this config was resolved for (``qc``, ``qc-fql``, ``bfn``, ``bfn-n``, ``fql``,
    ``fql-n``); informational, the behaviour is set by the fields below."""
    preset: str = "paper"
    """Preset the config was resolved from (``paper`` or ``quick``); informational."""
    domain: str = "cube-double"
    """Domain whose constraint strength (``alpha`` / ``num_samples``) was applied; informational."""

    policy: Literal["best_of_n", "distill"] = "best_of_n"
    """How actions are extracted from the flow BC policy. ``best_of_n``: sample ``num_samples``
    outputs of the flow (Euler, ``flow_steps`` steps, clipped to [-1, 1]) and keep the one with the
    highest ensemble-aggregated Q (the acting AND the TD-target action; QC, BFN). ``distill``: a
    one-step policy ``mu(s, z)`` trained with ``-Q + alpha * ||mu - flow||^2`` (QC-FQL, FQL)."""
    horizon: int = 5
    """Data chunk length h: the sampler must produce windows of h steps; the TD target discounts the
    bootstrap by ``discount**horizon``."""
    chunked: bool = True
    """Critic and policy act on the whole flattened chunk (``h*A`` numbers, executed open-loop). False
    gives the biased n-step baselines (``-n``): critic and policy read only the FIRST action of each
    window and the agent acts one action at a time, while the target still uses the h-step return."""
    num_samples: int = 32
    """N, candidates per state for ``policy='best_of_n'`` (unused by ``distill``)."""
    alpha: float = 100.0
    """Distillation (behaviour-constraint) weight for ``policy='distill'`` (unused by ``best_of_n``)."""
    flow_steps: int = 10
    """Euler steps T of the flow policy's integration from noise (u=0) to action (u=1)."""

    discount: float = 0.99
    """Per-step discount gamma."""
    tau: float = 0.005
    """Polyak rate of the target critic: ``target <- tau * online + (1 - tau) * target``."""
    lr: float = 3e-4
    """Adam learning rate (one Adam over all trained parameters, as the reference code)."""
    batch_size: int = 256
    """Chunks per gradient step; read by the training loop and the benchmark, not by the agent."""
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Hidden widths of the flow velocity field and the one-step policy."""
    critic_hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Hidden widths of each critic."""
    actor_layer_norm: bool = False
    """LayerNorm in the actor networks (off in the paper)."""
    critic_layer_norm: bool = True
    """LayerNorm in the critics (on in the paper)."""
    num_critics: int = 2
    """Critic ensemble size K."""
    q_agg: Literal["mean", "min"] = "mean"
    """How the K critics are combined for the TD target and for best-of-N selection (the paper: mean).
    The ``distill`` actor's Q term always averages the ensemble, as the reference code."""
    normalize_q_loss: bool = False
    """Divide the ``distill`` actor's ``-Q`` term by ``mean |Q|`` (FQL option; off in the paper)."""
    utd_ratio: int = 1
    """Gradient updates per environment step online (the training loop stacks this many batches and
    calls ``update_many``); the paper uses 1 (UTD 5 in one ablation)."""

    def __post_init__(self) -> None:
        # tyro and **overrides may hand over lists; keep the dataclass hashable (jit static field).
        for name in ("actor_hidden_dims", "critic_hidden_dims"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(int(v) for v in value))
        checks = [
            (self.policy in ("best_of_n", "distill"), f"policy must be 'best_of_n' or 'distill', got {self.policy!r}"),
            (self.q_agg in ("mean", "min"), f"q_agg must be 'mean' or 'min', got {self.q_agg!r}"),
            (self.horizon >= 1, f"horizon must be >= 1, got {self.horizon}"),
            (self.num_samples >= 1, f"num_samples must be >= 1, got {self.num_samples}"),
            (self.flow_steps >= 1, f"flow_steps must be >= 1, got {self.flow_steps}"),
            (self.num_critics >= 1, f"num_critics must be >= 1, got {self.num_critics}"),
            (0.0 < self.discount <= 1.0, f"discount must be in (0, 1], got {self.discount}"),
            (0.0 < self.tau <= 1.0, f"tau must be in (0, 1], got {self.tau}"),
            (self.lr > 0.0, f"lr must be > 0, got {self.lr}"),
            (self.alpha >= 0.0, f"alpha must be >= 0, got {self.alpha}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.utd_ratio >= 1, f"utd_ratio must be >= 1, got {self.utd_ratio}"),
            (len(self.actor_hidden_dims) >= 1 and min(self.actor_hidden_dims) >= 1,
             f"actor_hidden_dims must be positive widths, got {self.actor_hidden_dims}"),
            (len(self.critic_hidden_dims) >= 1 and min(self.critic_hidden_dims) >= 1,
             f"critic_hidden_dims must be positive widths, got {self.critic_hidden_dims}"),
        ]
        for ok, message in checks:
            if not ok:
                raise QchunkError(f"bad flow agent config: {message}")

    @property
    def action_horizon(self) -> int:
        """Actions executed open-loop per policy query: ``horizon`` for chunked agents, else 1."""
        return self.horizon if self.chunked else 1

    def policy_dim(self, action_dim: int) -> int:
        """Width of a policy output / critic action input: ``action_horizon * action_dim``."""
        return self.action_horizon * action_dim

    def replace(self, **changes: object) -> FlowAgentConfig:
        """A copy with ``changes`` applied (validated like a new config)."""
        return dataclasses.replace(self, **changes)


CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FlowAgentConfig))
"""Names of all :class:`FlowAgentConfig` fields (the valid ``**overrides`` keys)."""
