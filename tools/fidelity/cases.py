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
    seed: int = 0
    """Seed of ``create`` (parameters and the agent's key)."""
    perturb_targets: float = 0.0
    """If > 0, every ``modules_target_*`` parameter gets fixed Gaussian noise of this scale before the update, so
    that target and online networks differ (at ``create`` they are equal, and swapping them would go unseen)."""


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
]
"""QAM and its switches; QAM-F is ``fql_alpha > 0``, QAM-E ``edit_scale > 0`` (0 is QAM, the ``qam`` case)."""

def acrlpd_case(name: str, horizon: int = 3, perturb_targets: float = 0.0, **config: Any) -> Case:
    """A case of the QC repo's ``agents/acrlpd.py`` (RLPD, RLPD-AC, QC-RLPD) at small sizes, the paper's K=10."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True}
    return Case(name, "qc", "agents.acrlpd", "ACRLPDAgent", {**base, **config}, horizon=horizon,
                perturb_targets=perturb_targets)


def qam_rlpd_case(name: str, horizon: int = 3, perturb_targets: float = 0.0, **config: Any) -> Case:
    """A case of the QAM repo's ``agents/rlpd.py`` (RLPD and RLPD-AC of the QAM protocol) at small sizes."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True}
    return Case(name, "qam", "agents.rlpd", "RLPDAgent", {**base, **config}, horizon=horizon,
                perturb_targets=perturb_targets)


RLPD_CASES = [
    acrlpd_case("rlpd", horizon=1),
    acrlpd_case("rlpd-ac"),
    acrlpd_case("rlpd-n", action_chunking=False),
    acrlpd_case("rlpd-ac-min", q_agg="min"),
    acrlpd_case("rlpd-ac-target-apart", perturb_targets=0.1),
    acrlpd_case("rlpd-ac-temperature", init_temp=0.1, target_entropy_multiplier=1.0),
    acrlpd_case("qc-rlpd", bc_alpha=0.01),
    acrlpd_case("qc-rlpd-bc-1", bc_alpha=1.0),
    acrlpd_case("qc-rlpd-n", bc_alpha=1.0, action_chunking=False),
    qam_rlpd_case("qam-rlpd", horizon=1),
    qam_rlpd_case("qam-rlpd-ac"),
    qam_rlpd_case("qam-rlpd-ac-rho-0", rho=0.0),
    qam_rlpd_case("qam-rlpd-n", action_chunking=False),
    qam_rlpd_case("qam-rlpd-ac-bc-1", bc_alpha=1.0),
    qam_rlpd_case("qam-rlpd-ac-target-apart", perturb_targets=0.1),
]
"""The RLPD family: the paper preset's rlpd (h=1), rlpd-ac (chunks), the n-step variant (``action_chunking``
off), clipped double-Q (``q_agg`` min), target critics apart from the online ones, another temperature and target
entropy, qc-rlpd (``bc_alpha`` 0.01, and 1 so that the BC term's masking shows); the QAM repo's (``--preset qam``:
GELU networks, ``rho``) likewise."""

CASES: list[Case] = [*QAM_CASES, *RLPD_CASES]
"""Every case, by name."""


def case_named(name: str) -> Case:
    """The case called ``name`` (KeyError with the known names otherwise)."""
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(f"unknown case {name!r}; known: {', '.join(c.name for c in CASES)}")
