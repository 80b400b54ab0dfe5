"""The fidelity cases: which of the authors' agents to record, with which settings.

A case is the authors' agent class at small sizes with the method's own K and T, one configuration of its
switches. ``CASES`` is the union of the per-family lists; the fixture of case ``NAME`` is
``tests/fixtures/fidelity/NAME.npz``. Runs in the authors' environment; imports nothing from qchunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SMALL = (32, 32)
"""Hidden widths of every network in the fixtures."""


@dataclass(frozen=True)
class Case:
    """One recorded update of one of the authors' agents."""

    name: str
    """Fixture name (``NAME.npz``)."""
    repo: str
    """``qc`` (github:ColinQiyangLi/qc) or ``qam`` (github:ColinQiyangLi/qam)."""
    module: str
    """The agent module, e.g. ``agents.qam``."""
    cls: str
    """The agent class in it, e.g. ``QAMAgent``."""
    config: dict[str, Any] = field(default_factory=dict)
    """Overrides of the module's ``get_config()`` (sizes included)."""
    horizon: int = 3
    """``horizon_length`` (the chunk length h and the sampled window)."""
    update_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments of ``agent.update`` and ``agent.total_loss`` (e.g. ``full_update``)."""
    loss_kwargs: dict[str, Any] | None = None
    """Keyword arguments of ``agent.total_loss`` where they differ from ``update_kwargs`` (None: the same); e.g.
    ReBRAC's ``update(full_update=False)`` still computes ``total_loss`` with its default ``full_update=True``."""
    seed: int = 0
    """Seed of ``create`` (parameters and the agent's key)."""
    warmup: int = 2
    """Updates before the recorded one (at most 2): with 2, every target network differs from its online one and
    Adam has state; 0 records the first update after ``create`` (targets equal to the online networks)."""
    act_per_state: bool = False
    """Record ``sample_actions`` one state at a time (key ``i`` of ``split(PRNGKey(7), B)`` for state ``i``), for
    agents whose ``sample_actions`` takes a single state (IFQL's best-of-N)."""


def qam_case(name: str, **config: Any) -> Case:
    """A case of ``agents/qam.py`` (QAM, QAM-F, QAM-E) at small sizes, the paper's K=10 and T=10."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True}
    return Case(name, "qam", "agents.qam", "QAMAgent", {**base, **config})


QAM_CASES = [
    qam_case("qam"),
    qam_case("qam-inv-temp-1", inv_temp=1.0),
    qam_case("qam-residual", inv_temp=1.0, residual=True),
    qam_case("qam-no-target-actor", inv_temp=1.0, target_actor=False),
    qam_case("qam-online-critic-grad", inv_temp=1.0, use_target_grad=False),
    qam_case("qam-no-clip-adjoint", inv_temp=1.0, clip_adj=False),
    qam_case("qam-no-clip-grad", inv_temp=1.0, clip_grad=False),
    qam_case("qam-best-of-4", inv_temp=1.0, best_of_n=4),
    qam_case("qam-bc-acting", inv_temp=0.0),
    qam_case("qam-rho-0", inv_temp=1.0, rho=0.0),
    qam_case("qam-f", inv_temp=1.0, fql_alpha=10.0),
    qam_case("qam-f-residual", inv_temp=1.0, fql_alpha=10.0, residual=True),
    qam_case("qam-e", inv_temp=1.0, edit_scale=0.3),
    qam_case("qam-e-residual", inv_temp=1.0, edit_scale=0.3, residual=True),
    qam_case("qam-f-inv-temp-0", inv_temp=0.0, fql_alpha=10.0),
    qam_case("qam-e-inv-temp-0", inv_temp=0.0, edit_scale=0.3),
]
"""QAM and its switches; QAM-F is ``fql_alpha > 0``, QAM-E ``edit_scale > 0`` (0 is QAM, the ``qam`` case)."""

def fedit_case(name: str, **config: Any) -> Case:
    """A case of ``agents/fedit.py`` (FEdit) at small sizes, the paper's K=10 and T=10."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True, "edit_scale": 0.2}
    return Case(name, "qam", "agents.fedit", "FEditAgent", {**base, **config})


FEDIT_CASES = [
    fedit_case("fedit"),
    fedit_case("fedit-best-of-4", best_of_n=4, edit_scale=0.5),
    fedit_case("fedit-rho-0", rho=0.0),
]
"""FEdit (the QAM paper's baseline) and its switches."""



def acfql_case(name: str, horizon: int = 3, **config: Any) -> Case:
    """A case of the Q-chunking repo's ``agents/acfql.py`` (QC, QC-FQL, BFN, BFN-n, FQL, FQL-n) at small sizes,
    the paper's K=2 and T=10."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL}
    return Case(name, "qc", "agents.acfql", "ACFQLAgent", {**base, **config}, horizon=horizon)


def qam_fql_case(name: str, horizon: int = 3, **config: Any) -> Case:
    """A case of the QAM repo's ``agents/fql.py`` (its FQL: qchunk's qc-fql / fql at ``--preset qam``) at small
    sizes with the QAM protocol's K=10, T=10, rho=0.5 and chunking (the reproduction script's)."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True, "num_qs": 10}
    return Case(name, "qam", "agents.fql", "FQLAgent", {**base, **config}, horizon=horizon)


FLOW_CASES = [
    acfql_case("acfql-qc-fql", actor_type="distill-ddpg"),
    acfql_case("acfql-qc", actor_type="best-of-n", actor_num_samples=32),
    acfql_case("acfql-bfn", horizon=1, actor_type="best-of-n", actor_num_samples=4),
    acfql_case("acfql-bfn-n", actor_type="best-of-n", actor_num_samples=4, action_chunking=False),
    acfql_case("acfql-fql", horizon=1, actor_type="distill-ddpg"),
    acfql_case("acfql-fql-n", actor_type="distill-ddpg", action_chunking=False),
    acfql_case("acfql-qc-q-min", actor_type="best-of-n", actor_num_samples=32, q_agg="min"),
    acfql_case("acfql-qc-fql-q-min", actor_type="distill-ddpg", q_agg="min"),
    acfql_case("acfql-qc-fql-layer-norm", actor_type="distill-ddpg", actor_layer_norm=True, layer_norm=False),
    qam_fql_case("qam-fql", alpha=100.0),
    qam_fql_case("qam-fql-h1", horizon=1, alpha=100.0),
    qam_fql_case("qam-fql-rho-0", alpha=100.0, rho=0.0),
]
"""The flow family: acfql's actor types (``distill-ddpg`` = qc-fql / fql / fql-n, ``best-of-n`` = qc / bfn / bfn-n),
chunked and not (``action_chunking=False``: the ``-n`` baselines), ``q_agg``, layer norms; the QAM repo's FQL with
and without its pessimistic target and at h=1 (its mazes)."""


def acrlpd_case(name: str, horizon: int = 3, **config: Any) -> Case:
    """A case of the QC repo's ``agents/acrlpd.py`` (RLPD, RLPD-AC, QC-RLPD) at small sizes, the paper's K=10."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True}
    return Case(name, "qc", "agents.acrlpd", "ACRLPDAgent", {**base, **config}, horizon=horizon)


def qam_rlpd_case(name: str, horizon: int = 3, **config: Any) -> Case:
    """A case of the QAM repo's ``agents/rlpd.py`` (RLPD and RLPD-AC of the QAM protocol) at small sizes."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True}
    return Case(name, "qam", "agents.rlpd", "RLPDAgent", {**base, **config}, horizon=horizon)


RLPD_CASES = [
    acrlpd_case("rlpd", horizon=1),
    acrlpd_case("rlpd-ac"),
    acrlpd_case("rlpd-n", action_chunking=False),
    acrlpd_case("rlpd-ac-min", q_agg="min"),
    acrlpd_case("rlpd-ac-temperature", init_temp=0.1, target_entropy_multiplier=1.0),
    acrlpd_case("qc-rlpd", bc_alpha=0.01),
    acrlpd_case("qc-rlpd-bc-1", bc_alpha=1.0),
    acrlpd_case("qc-rlpd-n", bc_alpha=1.0, action_chunking=False),
    qam_rlpd_case("qam-rlpd", horizon=1),
    qam_rlpd_case("qam-rlpd-ac"),
    qam_rlpd_case("qam-rlpd-ac-rho-0", rho=0.0),
    qam_rlpd_case("qam-rlpd-n", action_chunking=False),
    qam_rlpd_case("qam-rlpd-ac-bc-1", bc_alpha=1.0),
]
"""The RLPD family: the paper preset's rlpd (h=1), rlpd-ac (chunks), the n-step variant (``action_chunking``
off), clipped double-Q (``q_agg`` min), another temperature and target entropy, qc-rlpd (``bc_alpha`` 0.01, and 1
so that the BC term's masking shows); the QAM repo's (``--preset qam``: GELU networks, ``rho``) likewise."""



def dsrl_case(name: str, horizon: int = 3, **config: Any) -> Case:
    """A case of ``agents/dsrl.py`` (DSRL) at small sizes, on chunks as the QAM runs (K=10, T=10)."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True}
    return Case(name, "qam", "agents.dsrl", "DSRLAgent", {**base, **config}, horizon)


DSRL_CASES = [
    dsrl_case("dsrl"),
    dsrl_case("dsrl-online-latent", use_target_latent=False),
    dsrl_case("dsrl-noise-scale", noise_scale=0.6),
    dsrl_case("dsrl-best-of-4", best_of_n=4),
    dsrl_case("dsrl-rho-0", rho=0.0),
    dsrl_case("dsrl-first-action", action_chunking=False),
    dsrl_case("dsrl-actor-layer-norm", actor_layer_norm=True),
    dsrl_case("dsrl-entropy-1", target_entropy_multiplier=1.0),
    dsrl_case("dsrl-h1", horizon=1),
]
"""DSRL and its switches: the latent flow (``use_target_latent``), ``noise_scale``, best-of-N acting, the
pessimism ``rho``, first-action critic and policy (``action_chunking=False``), LayerNorm in the BC flow (the
latent actor has none), the target entropy, and h=1 (the mazes)."""

def dcgql_case(name: str, horizon: int = 3, **config: Any) -> Case:
    """A case of ``agents/dcgql.py`` (QSM with ``actor_loss_type='qsm'``, DAC with ``'dac'``) at small sizes, on
    chunks as the QAM runs (K=10, 10 diffusion steps, the VP schedule)."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True}
    return Case(name, "qam", "agents.dcgql", "DCGQLAgent", {**base, **config}, horizon)


_QSM = {"actor_loss_type": "qsm", "inv_temp": 10.0, "alpha": 10.0, "clip_sampler_before": False,
        "clip_sampler_after": True}
_DAC = {"actor_loss_type": "dac", "alpha": 1.0, "clip_sampler_before": True, "clip_sampler_after": False}

DCGQL_CASES = [
    dcgql_case("qsm", **_QSM),
    dcgql_case("dac", **_DAC),
    dcgql_case("qsm-online-critic-grad", **{**_QSM, "use_target_critic_grad": False}),
    dcgql_case("dac-online-critic-grad", **{**_DAC, "use_target_critic_grad": False}),
    dcgql_case("qsm-no-clip", **{**_QSM, "clip_sampler_after": False}),
    dcgql_case("dac-clip-both", **{**_DAC, "clip_sampler_after": True}),
    dcgql_case("qsm-cosine", **{**_QSM, "beta_schedule": "cosine"}),
    dcgql_case("dac-linear", **{**_DAC, "beta_schedule": "linear"}),
    dcgql_case("dac-steps-5", **{**_DAC, "diffusion_steps": 5}),
    dcgql_case("qsm-rho-0", **{**_QSM, "rho": 0.0}),
    dcgql_case("qsm-first-action", **{**_QSM, "action_chunking": False}),
    dcgql_case("dac-h1", horizon=1, **_DAC),
    dcgql_case("qsm-actor-layer-norm", **{**_QSM, "actor_layer_norm": True}),
]
"""QSM and DAC at their QAM-protocol switches (QSM: clip after each step; DAC: clip the one-step estimate before
it), the critic whose action-gradient drives the actor (``use_target_critic_grad``), the other clip settings, the
cosine and linear schedules, 5 diffusion steps, the pessimism ``rho``, the first-action critic and policy
(``action_chunking=False``), h=1 (the mazes) and LayerNorm in the noise network."""

def rebrac_case(name: str, horizon: int = 3, full_update: bool = True, **config: Any) -> Case:
    """A case of ``agents/rebrac.py`` (ReBRAC) at small sizes, on chunks as the QAM runs (K=10), with a non-zero BC
    weight. ``full_update``: the step also moves the target networks (the authors' ``i % actor_freq == 0``); the
    loss is the same either way (``update`` computes ``total_loss`` with its default ``full_update=True``)."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True, "alpha_actor": 0.1}
    return Case(name, "qam", "agents.rebrac", "ReBRACAgent", {**base, **config}, horizon,
                update_kwargs={"full_update": full_update}, loss_kwargs={})


REBRAC_CASES = [
    rebrac_case("rebrac"),
    rebrac_case("rebrac-no-target-step", full_update=False),
    rebrac_case("rebrac-noise-clip", actor_noise=0.5, actor_noise_clip=0.3),
    rebrac_case("rebrac-noise-0", actor_noise=0.0, alpha_actor=0.01),
    rebrac_case("rebrac-rho-0", rho=0.0),
    rebrac_case("rebrac-first-action", action_chunking=False),
    rebrac_case("rebrac-h1", horizon=1),
    rebrac_case("rebrac-actor-layer-norm", actor_layer_norm=True),
]
"""ReBRAC and its switches: whether the step moves the targets (``full_update``), the TD target's action noise
(clipped, and off as on most of the QAM domains), the pessimism ``rho``, first-action critic and actor
(``action_chunking=False``), h=1 (the mazes) and LayerNorm in the actor."""


def fbrac_case(name: str, horizon: int = 3, **config: Any) -> Case:
    """A case of ``agents/fbrac.py`` (FBRAC) at small sizes, on chunks as the QAM runs (K=10, T=10), with ``alpha``
    1 so that the Q term (``-Q / alpha``) weighs as much as the BC flow loss."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True, "alpha": 1.0}
    return Case(name, "qam", "agents.fbrac", "FBRACAgent", {**base, **config}, horizon)


FBRAC_CASES = [
    fbrac_case("fbrac"),
    fbrac_case("fbrac-best-of-4", best_of_n=4),
    fbrac_case("fbrac-rho-0", rho=0.0),
    fbrac_case("fbrac-first-action", action_chunking=False),
    fbrac_case("fbrac-h1", horizon=1),
    fbrac_case("fbrac-actor-layer-norm", actor_layer_norm=True, alpha=30.0),
]
"""FBRAC and its switches: best-of-N acting and TD target, the pessimism ``rho``, first-action critic and flow
(``action_chunking=False``), h=1 (the mazes), LayerNorm in the flow (with a larger ``alpha``)."""

def ifql_case(name: str, horizon: int = 3, **config: Any) -> Case:
    """A case of ``agents/ifql.py`` (IFQL) at small sizes, on chunks as the QAM runs (K=10, T=10, N=32)."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True}
    return Case(name, "qam", "agents.ifql", "IFQLAgent", {**base, **config}, horizon, act_per_state=True)


IFQL_CASES = [
    ifql_case("ifql"),
    ifql_case("ifql-kappa-0.7", kappa=0.7, num_samples=4),
    ifql_case("ifql-rho-0", rho=0.0),
    ifql_case("ifql-first-action", action_chunking=False),
    ifql_case("ifql-h1", horizon=1),
]
"""IFQL and its switches: the expectile ``kappa`` (with N=4 candidates), the pessimism ``rho`` of the value's
target, first-action critic and policy (``action_chunking=False``) and h=1 (the mazes)."""


def fawac_case(name: str, horizon: int = 3, seed: int = 0, **config: Any) -> Case:
    """A case of ``agents/fawac.py`` (FAWAC) at small sizes, on chunks as the QAM runs (K=10, T=10)."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True}
    return Case(name, "qam", "agents.fawac", "FAWACAgent", {**base, **config}, horizon, seed=seed)


FAWAC_CASES = [
    fawac_case("fawac"),
    fawac_case("fawac-inv-temp-100", inv_temp=100.0),
    fawac_case("fawac-rho-0", rho=0.0),
    fawac_case("fawac-first-action", seed=1, action_chunking=False),
    fawac_case("fawac-h1", seed=1, horizon=1),
]
"""FAWAC and its switches: a large ``inv_temp`` (weights reach the clip at 100), the pessimism ``rho``, first-action
critic and policy (``action_chunking=False``) and h=1 (the mazes)."""

def bam_case(name: str, **config: Any) -> Case:
    """A case of ``agents/bam.py`` (basic adjoint matching) at small sizes, the paper's K=10 and T=10."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True, "inv_temp": 1.0}
    return Case(name, "qam", "agents.bam", "BAMAgent", {**base, **config})


BAM_CASES = [
    bam_case("bam"),
    bam_case("bam-residual", residual=True),
    bam_case("bam-no-target-actor", target_actor=False),
    bam_case("bam-best-of-4", best_of_n=4),
    bam_case("bam-bc-acting", inv_temp=0.0),
    bam_case("bam-rho-0", rho=0.0),
]
"""BAM and its switches: the residual field, the online BC field in the chain (``target_actor`` off), best-of-N
acting, ``inv_temp`` 0 (acting with the BC flow; no critic term) and the pessimism ``rho`` (TD target and the
actor's Q)."""

def cgql_case(name: str, **config: Any) -> Case:
    """A case of ``agents/cgql.py`` (CGQL in its three modes) at small sizes, the paper's K=10 and T=10."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True, "inv_temp": 1.0}
    return Case(name, "qam", "agents.cgql", "CGQLAgent", {**base, **config})


CGQL_CASES = [
    cgql_case("cgql"),
    cgql_case("cgql-m", mode="mse", noisy_coef=0.1),
    cgql_case("cgql-l", mode="linex", noisy_coef=0.1),
    cgql_case("cgql-l-clipped", mode="linex", noisy_coef=0.1, inv_temp=10.0, isd_clip=0.0),
    cgql_case("cgql-online-guidance", target_guidance=False),
    cgql_case("cgql-m-best-of-4", mode="mse", noisy_coef=0.1, best_of_n=4),
    cgql_case("cgql-bc", inv_temp=0.0),
    cgql_case("cgql-rho-0", rho=0.0),
]
"""CGQL's modes (``simple``, ``mse``, ``linex``; LinEx also with its exponential cut off everywhere), the online BC
field in the guided sampler (``target_guidance`` off), best-of-N acting, ``inv_temp`` 0 (no guidance) and the
pessimism ``rho``. ``separate=True`` (an unused extra critic) is not recorded: qchunk does not build it."""

CASES: list[Case] = [*QAM_CASES, *FEDIT_CASES, *FLOW_CASES, *RLPD_CASES, *DSRL_CASES, *REBRAC_CASES, *FBRAC_CASES,
                     *IFQL_CASES, *FAWAC_CASES, *BAM_CASES, *CGQL_CASES, *DCGQL_CASES]
"""Every case, by name."""


def case_named(name: str) -> Case:
    """The case called ``name`` (KeyError with the known names otherwise)."""
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(f"unknown case {name!r}; known: {', '.join(c.name for c in CASES)}")
