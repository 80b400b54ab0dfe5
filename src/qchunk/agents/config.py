"""The typed, frozen configurations of the agents.

:class:`AgentConfig` holds what every agent shares (chunking, critic ensemble, optimisation);
:class:`FlowAgentConfig` (the flow agents), :class:`SacAgentConfig` (the RLPD family), :class:`QamAgentConfig`
(QAM, a flow agent), :class:`FEditAgentConfig` and :class:`DsrlAgentConfig` (both :class:`SteeredFlowConfig`),
:class:`QamFAgentConfig` and :class:`QamEAgentConfig` (QAM's and FEdit's fields) add their policy's settings.
Each agent's registration (:mod:`qchunk.agents.registry`) names its config class; :mod:`qchunk.agents.presets`
holds the named values (the paper's and a CPU-sized ``quick`` one) and the per-domain constraint strengths.
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
    rho: float = 0.0
    """Pessimism of the TD target: ``mean_k Q'_k - rho * std_k Q'_k`` over the K target critics instead of
    ``q_agg`` (0, the Q-chunking paper: off; the QAM protocol, ``--preset qam``: 0.5 for every method, 0 on
    humanoidmaze). Needs ``q_agg='mean'``."""

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
            (self.rho >= 0.0, f"rho must be >= 0, got {self.rho}"),
            (self.rho == 0.0 or self.q_agg == "mean",
             f"rho > 0 (the target mean - rho * std) needs q_agg='mean', got q_agg={self.q_agg!r}"),
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
    bc_weighting: Literal["step", "chunk"] = "step"
    """How the flow-matching BC loss weights the steps past an episode end (``valid = 0``): ``step``, the
    Q-chunking code's (each such step zeroed, the mean over all numbers; ``--preset paper``), or ``chunk``,
    the QAM code's (a chunk whose window crosses an episode end dropped whole; every QAM-paper method and
    ``--preset qam``)."""

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            *super()._checks(),
            (self.policy in ("best_of_n", "distill"), f"policy must be 'best_of_n' or 'distill', got {self.policy!r}"),
            (self.num_samples >= 1, f"num_samples must be >= 1, got {self.num_samples}"),
            (self.flow_steps >= 1, f"flow_steps must be >= 1, got {self.flow_steps}"),
            (self.alpha >= 0.0, f"alpha must be >= 0, got {self.alpha}"),
            (self.bc_weighting in ("step", "chunk"),
             f"bc_weighting must be 'step' or 'chunk', got {self.bc_weighting!r}"),
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
    (QC-RLPD: 0.01); data actions are clipped to +-(1 - 1e-5), as the authors'."""
    bc_mask: Literal["none", "chunk", "step"] = "none"
    """Which data the BC term's log-likelihood counts: ``none``, the QC code's (``--preset paper``): the whole
    flattened chunk of every window, also the steps past an episode end; ``chunk``, the QAM code's
    (``--preset qam``): the whole chunk, times ``valid`` of its last step (a window crossing an episode end
    dropped); ``step``: only the steps inside the episode (each step's log-density times its ``valid``; qchunk's
    earlier rule, which no authors' code uses)."""
    networks: Literal["rlpd", "qam"] = "rlpd"
    """The layers of critic and actor trunk: ``rlpd``, the QC repo's RLPD networks (``--preset paper``): ReLU,
    LayerNorm before it; ``qam``, the QAM repo's ``utils/networks.py`` (``--preset qam``): GELU, LayerNorm after
    it. The actor's ``mean - rho * std`` score and the target use ``rho`` under both (0 at the paper preset)."""
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
            (self.bc_mask in ("none", "chunk", "step"),
             f"bc_mask must be 'none', 'chunk' or 'step', got {self.bc_mask!r}"),
            (self.networks == "rlpd" or self.networks == "qam",  # two comparisons, not a list of agent names
             f"networks must be 'rlpd' or 'qam', got {self.networks!r}"),
        ]

    def target_entropy(self, action_dim: int) -> float:
        """The temperature's entropy target for per-step action dimension ``action_dim``."""
        return self.target_entropy_per_dim * self.policy_dim(action_dim)


@dataclass(frozen=True)
class QamAgentConfig(FlowAgentConfig):
    """All settings of Q-learning with Adjoint Matching (``qam``; Li & Levine 2026): the flow agent's BC flow
    and chunked critic ensemble plus a fine-tuned flow trained by adjoint matching towards
    ``pi(a|s) ~ pi_BC(a|s) exp(inv_temp * Q(s, a))`` (:mod:`qchunk.agents.qam`). Acting and the TD-target
    action take the best of ``num_samples`` Euler samples of the fine-tuned flow under the ``q_agg`` of the
    online critics (the paper: N=1, one sample). The defaults are the reference implementation's
    (github.com/ColinQiyangLi/qam, ``agents/qam.py``), which every run of the paper's main results uses;
    ``inv_temp``, ``rho``, ``horizon`` and ``discount`` vary per domain and come from its
    ``experiments/reproduce.py`` (:data:`~qchunk.agents.presets.QAM_INV_TEMP`,
    :data:`~qchunk.agents.presets.QAM_PROTOCOL_SETTINGS`). ``alpha`` and ``normalize_q_loss`` are unused."""

    inv_temp: float = 0.3
    """Inverse temperature beta of the target ``pi_BC exp(beta * Q)``: the adjoint starts at
    ``-beta * grad_a Q(s, a)``. Per domain (0.3 .. 30 in the paper); 0.3 is the reference default. 0 acts with
    the BC flow."""
    rho: float = 0.5
    """Pessimism of the TD target: ``mean_k Q'_k - rho * std_k Q'_k`` over the K target critics (the paper:
    0.5, 0 on humanoidmaze). Needs ``q_agg='mean'``; 0 is the plain ``q_agg``."""
    bc_weighting: Literal["step", "chunk"] = "chunk"
    """The BC flow loss's weighting of steps past an episode end (see :class:`FlowAgentConfig`); ``chunk``, the QAM
    code's."""
    adjoint: Literal["authors", "exact"] = "authors"
    """How the lean adjoint is integrated backwards (:func:`~qchunk.agents.adjoint.lean_adjoint`): ``authors``,
    the reference code's scheme (every step, the last one included, with the SDE drift
    ``2 v_BC(x_i, u_i + h) - x_i / (u_i + h)``), or ``exact``, the exact discrete adjoint of the sampling chain
    (the drift at ``(x_i, u_i)``, the last step through the ODE step's Jacobian); see ``docs/fidelity.md``."""
    residual: bool = False
    """Residual parameterisation: the fine-tuned field is ``v_BC + v_res`` and the network learns ``v_res``
    (an ablation; off in the paper's runs, where the fine-tuned network is a full velocity field)."""
    target_actor: bool = True
    """The BC field inside adjoint matching (the last sampling step, the adjoint's vector-Jacobian products
    and ``v_base`` of the loss) is a Polyak-averaged copy of the BC flow (rate ``tau``), not the online one."""
    target_critic_grad: bool = True
    """The adjoint's initial condition is the action-gradient of the target critics' ensemble mean (else of
    the online critics')."""
    clip_adjoint: bool = True
    """The critic gradient that starts the adjoint is taken at ``clip(x_1, -1, 1)``: zero along the numbers
    of the sampled chunk that left the action box."""
    max_grad_norm: float = 1.0
    """Clip the global norm of the whole update's gradient (critic and flows together, as the reference) to
    this value before Adam; 0 turns clipping off."""

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            *super()._checks(),
            (self.policy == "best_of_n",
             f"qam acts with the best of N fine-tuned flow samples: policy must be 'best_of_n', got {self.policy!r}"),
            (self.inv_temp >= 0.0, f"inv_temp must be >= 0, got {self.inv_temp}"),
            (self.adjoint in ("authors", "exact"), f"adjoint must be 'authors' or 'exact', got {self.adjoint!r}"),
            (self.max_grad_norm >= 0.0, f"max_grad_norm must be >= 0 (0: no clipping), got {self.max_grad_norm}"),
        ]


@dataclass(frozen=True)
class SteeredFlowConfig(AgentConfig):
    """Settings shared by the agents that steer a flow-matching BC policy over chunks with a tanh-squashed
    Gaussian actor and an automatically tuned entropy temperature, as the QAM paper runs them: FEdit
    (:class:`FEditAgentConfig`, the actor edits the flow's chunk) and DSRL (:class:`DsrlAgentConfig`, the
    actor chooses the flow's initial noise). Both pre-train offline and go on online with the same losses;
    the critic is a K=10 ensemble over chunks with the pessimistic target ``mean - rho * std``."""

    flow_steps: int = 10
    """Euler steps T of the BC flow's integration from noise (u=0) to chunk (u=1)."""
    num_samples: int = 1
    """N steered chunks per state for acting and the TD target, the one with the highest ensemble-mean
    online Q kept (the QAM release's ``best_of_n``; 1 in all its runs: no selection)."""
    rho: float = 0.5
    """Pessimism of the TD target: ``mean_k Q'_k - rho * std_k Q'_k`` over the K target critics (the QAM
    paper: 0.5; 0 on humanoidmaze). Needs ``q_agg='mean'``; 0 is the plain ensemble mean."""
    bc_weighting: Literal["step", "chunk"] = "chunk"
    """How the flow-matching BC loss weights the steps past an episode end (``valid = 0``): ``chunk``, the QAM
    code's (a chunk whose window crosses an episode end dropped whole), or ``step``, the Q-chunking code's (each
    such step zeroed, the mean over all numbers)."""
    init_temperature: float = 1.0
    """Initial entropy temperature of the tanh-Gaussian actor (learned through its logarithm)."""
    target_entropy_per_dim: float = -0.5
    """Target entropy per policy-output dimension: the temperature is tuned so that the actor's entropy
    approaches ``target_entropy_per_dim * h * A`` (the QAM release: -0.5 x the chunk's dimensions)."""

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            *super()._checks(),
            (self.flow_steps >= 1, f"flow_steps must be >= 1, got {self.flow_steps}"),
            (self.num_samples >= 1, f"num_samples must be >= 1, got {self.num_samples}"),
            (self.init_temperature > 0.0, f"init_temperature must be > 0, got {self.init_temperature}"),
            (self.bc_weighting in ("step", "chunk"),
             f"bc_weighting must be 'step' or 'chunk', got {self.bc_weighting!r}"),
        ]

    def target_entropy(self, action_dim: int) -> float:
        """The temperature's entropy target for per-step action dimension ``action_dim``."""
        return self.target_entropy_per_dim * self.policy_dim(action_dim)


@dataclass(frozen=True)
class FEditAgentConfig(SteeredFlowConfig):
    """All settings of FEdit (``fedit``; the flow + edit policy of EXPO, Dong et al. 2025, as the QAM paper
    runs it): a BC flow over chunks and a tanh-Gaussian edit policy ``e ~ pi(. | s, base chunk)``; the
    agent acts with ``clip(base + edit_scale * e, -1, 1)``. Build one with
    :func:`qchunk.agents.agent_config`."""

    edit_scale: float = 0.2
    """Largest change the edit policy may make to each number of the base chunk (the edit is in (-1, 1),
    times this; per domain in the presets, from the QAM reproduction script). Not the reference default
    (``edit_scale = 0``, no edit at all): fedit and qam-e off the paper's table (a task without a per-domain
    value) should train their edit policy; 0.2 is the script's most common value."""

    def _checks(self) -> list[tuple[bool, str]]:
        return [*super()._checks(), (self.edit_scale >= 0.0, f"edit_scale must be >= 0, got {self.edit_scale}")]


@dataclass(frozen=True)
class DsrlAgentConfig(SteeredFlowConfig):
    """All settings of DSRL (``dsrl``; diffusion steering by RL, Wagenmaker et al. 2025, as the QAM paper runs
    it): SAC in the latent-noise space of the BC flow. The actor outputs the flow's initial noise
    ``w = noise_scale * tanh(u)``, the action is the flow's Euler solution from ``w``; a latent critic
    ``Q_w(s, w)`` distilled from the chunk critic through the flow gives the actor its gradient. Every field
    default is the QAM release's (``agents/dsrl.py``; checked update by update in ``tests/fixtures/fidelity``);
    ``actor_layer_norm`` reaches the BC flow only (the latent actor has no LayerNorm, as there). Build one
    with :func:`qchunk.agents.agent_config`."""

    noise_scale: float = 1.0
    """Range of the latent noise the actor may choose: ``w`` in ``(-noise_scale, noise_scale)`` per number
    (per domain in the presets, from the QAM reproduction script)."""
    latent_flow: Literal["target", "online"] = "target"
    """Which copy of the BC flow maps noise to chunks when acting, in the TD target and in the latent
    critic's target: ``target``, a Polyak average (rate ``tau``) of the BC flow, so the latent space moves
    slowly (the QAM release's ``use_target_latent=True``), or ``online``, the BC flow itself."""

    def _checks(self) -> list[tuple[bool, str]]:
        return [
            *super()._checks(),
            (self.noise_scale > 0.0, f"noise_scale must be > 0, got {self.noise_scale}"),
            (self.latent_flow in ("target", "online"),
             f"latent_flow must be 'target' or 'online', got {self.latent_flow!r}"),
        ]


@dataclass(frozen=True)
class QamFAgentConfig(QamAgentConfig):
    """All settings of QAM-F (``qam-f``; Li & Levine 2026): QAM plus an FQL one-step policy ``mu(s, z)``
    distilled from the fine-tuned flow (:mod:`qchunk.agents.qam_variants`). ``mu`` is trained with FQL's loss
    ``-mean_k Q_k(s, clip(mu(s, z))) + alpha * ||mu(s, z) - clip(fine_flow(s, z))||^2`` (the fine-tuned flow's
    Euler solution from the same noise ``z``, without gradient) and is the acting and TD-target policy (the
    best of ``num_samples`` under the ensemble-mean online Q). ``alpha = 0`` trains no one-step policy: the
    agent is QAM, as the authors' code switches it (their script sets 0 on puzzle-3x3 and cube-double).
    Build one with :func:`qchunk.agents.agent_config`."""

    alpha: float = 30.0
    """Distillation weight of the one-step policy towards the fine-tuned flow's chunk (FQL's alpha; per
    domain from the QAM reproduction script, 0 .. 300). 0: no one-step policy, act with the fine-tuned flow.
    Not the reference default (``fql_alpha = 0``, which makes the agent QAM): ``qam-f`` off the paper's table
    (a task without a per-domain value) should train its one-step policy; 30 is the script's value on
    cube-quadruple and the mazes."""


@dataclass(frozen=True)
class QamEAgentConfig(QamAgentConfig, FEditAgentConfig):
    """All settings of QAM-E (``qam-e``; Li & Levine 2026): QAM plus FEdit's tanh-Gaussian edit policy on top
    of the fine-tuned flow's chunk (:mod:`qchunk.agents.qam_variants`): the agent acts with
    ``clip(fine chunk + edit_scale * e, -1, 1)``, ``e ~ pi_e(. | s, fine chunk)`` trained by the SAC loss
    with an entropy temperature tuned to ``target_entropy_per_dim * h * A``. The QAM fields and the edit
    fields (``edit_scale``, ``init_temperature``, ``target_entropy_per_dim``) are those of
    :class:`QamAgentConfig` and :class:`FEditAgentConfig`. ``edit_scale = 0`` trains no edit policy: the
    agent is QAM, as the authors' code switches it (their script sets 0 on scene and cube-double).
    Build one with :func:`qchunk.agents.agent_config`."""


FLOW_CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FlowAgentConfig))
"""Names of all :class:`FlowAgentConfig` fields."""
SAC_CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SacAgentConfig))
"""Names of all :class:`SacAgentConfig` fields."""
