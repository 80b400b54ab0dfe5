"""Named settings of the flow agent family: variants, presets and the paper's per-domain strengths.

``agent_config(name, preset, domain, **overrides)`` resolves, in order: the variant's structure
(:data:`VARIANTS`), the preset's sizes (:data:`PRESETS`), the domain's ``alpha`` / ``N``
(:data:`DOMAIN_STRENGTHS`, the table of the paper's appendix), then the caller's overrides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qchunk.agents.config import CONFIG_FIELDS, FlowAgentConfig
from qchunk.errors import QchunkError

AGENT_NAMES: tuple[str, ...] = ("qc", "qc-fql", "bfn", "bfn-n", "fql", "fql-n")
"""The flow agent variants ``make_agent`` builds."""

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
}
"""Structure of each variant (which policy, window length, chunked or first-action critic)."""

_PAPER_OPTIMISATION: dict[str, Any] = {
    "batch_size": 256, "lr": 3e-4, "discount": 0.99, "tau": 0.005, "num_critics": 2, "flow_steps": 10,
    "critic_layer_norm": True, "actor_layer_norm": False,
}
"""Settings both presets share with the paper."""

PRESETS: dict[str, dict[str, Any]] = {
    # The paper: 4x512 MLPs for every network, batch 256, Adam 3e-4, gamma 0.99, K=2, T=10.
    "paper": {**_PAPER_OPTIMISATION, "actor_hidden_dims": (512, 512, 512, 512),
              "critic_hidden_dims": (512, 512, 512, 512)},
    # CPU smoke/demo runs: the paper's algorithm with 2x256 networks (about 90 qc-fql updates/s on 2 cores;
    # the quickstart's measured default).
    "quick": {**_PAPER_OPTIMISATION, "actor_hidden_dims": (256, 256), "critic_hidden_dims": (256, 256)},
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
    "robomimic": DomainStrengths(10000.0, 10000.0, 10000.0, 4, 4, 16),
}
"""Per-domain alpha and N; keys are the environment registry's domain keys plus ``robomimic``
(lift, can and square share one row)."""

DOMAIN_NAMES: tuple[str, ...] = tuple(DOMAIN_STRENGTHS)
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)


def domain_settings(name: str, domain: str) -> dict[str, Any]:
    """The per-domain field values of agent ``name`` in ``domain`` (``alpha`` or ``num_samples``)."""
    row = DOMAIN_STRENGTHS[domain]
    return {
        "qc": {"num_samples": row.qc_n},
        "bfn": {"num_samples": row.bfn_n},
        "bfn-n": {"num_samples": row.bfn_n_n},
        "qc-fql": {"alpha": row.qc_fql_alpha},
        "fql": {"alpha": row.fql_alpha},
        "fql-n": {"alpha": row.fql_n_alpha},
    }[name]


def _choose(kind: str, value: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise QchunkError(f"unknown {kind} {value!r}; choose one of: {', '.join(valid)}")
    return value


def agent_config(
    name: str, preset: str = "paper", domain: str | None = None, **overrides: Any
) -> FlowAgentConfig:
    """Resolve the configuration of flow agent ``name`` without building networks.

    Args:
        name: one of :data:`AGENT_NAMES`.
        preset: one of :data:`PRESET_NAMES` (``paper`` or ``quick``).
        domain: one of :data:`DOMAIN_NAMES`; selects alpha / N (default ``cube-double``).
        **overrides: any :class:`FlowAgentConfig` field, applied last.
    Raises:
        QchunkError: unknown name, preset, domain or override field, or an invalid value.
    """
    _choose("agent", name, AGENT_NAMES)
    _choose("preset", preset, PRESET_NAMES)
    domain = _choose("domain", DEFAULT_DOMAIN if domain is None else domain, DOMAIN_NAMES)
    settable = tuple(f for f in CONFIG_FIELDS if f not in ("agent", "preset", "domain"))
    unknown = sorted(set(overrides) - set(settable))
    if unknown:
        raise QchunkError(
            f"unknown flow agent setting(s) {', '.join(unknown)}; valid settings: {', '.join(settable)}"
        )
    fields: dict[str, Any] = {"agent": name, "preset": preset, "domain": domain}
    fields.update(VARIANTS[name])
    fields.update(PRESETS[preset])
    fields.update(domain_settings(name, domain))
    fields.update(overrides)
    try:
        return FlowAgentConfig(**fields)
    except TypeError as e:  # e.g. a value of the wrong kind for a tuple field
        raise QchunkError(f"bad flow agent setting: {e}") from None
