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
    distinct_targets: bool = False
    """Replace every target network (``modules_target_NAME``) by ``NAME`` of an agent created with ``seed + 1``,
    so that target and online networks differ (``create`` makes them equal, and a swap would go unnoticed)."""


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



def dsrl_case(name: str, horizon: int = 3, **config: Any) -> Case:
    """A case of ``agents/dsrl.py`` (DSRL) at small sizes, on chunks as the QAM runs (K=10, T=10), with target
    networks apart from the online ones."""
    base = {"actor_hidden_dims": SMALL, "value_hidden_dims": SMALL, "action_chunking": True}
    return Case(name, "qam", "agents.dsrl", "DSRLAgent", {**base, **config}, horizon, distinct_targets=True)


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
latent actor has none), the target entropy, and h=1 (the mazes); target networks distinct from the online
ones."""

CASES: list[Case] = [*QAM_CASES, *DSRL_CASES]
"""Every case, by name."""


def case_named(name: str) -> Case:
    """The case called ``name`` (KeyError with the known names otherwise)."""
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(f"unknown case {name!r}; known: {', '.join(c.name for c in CASES)}")
