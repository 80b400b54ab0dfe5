"""The agent registry: one :class:`AgentSpec` per agent name, the single source of every list of agents.

A registration carries the agent's name, its agent and config classes, its display name (plots, reports),
its keys in the two released reference-curve sets (the Q-chunking paper's ``paper_curves.json`` and the QAM
paper's ``qam_curves.json``) and the paper that defines it. The built-in agents are registered, in the order
every list shows them, by :mod:`qchunk.agents` at import; :func:`register` adds one from Python.

Everything that lists or names agents derives from here: :func:`qchunk.agents.agent_config` (names, config
classes), the ``--agent`` help of ``train`` and ``bench`` and the agent-field flags, plot labels
(:func:`display_name`), the ``--reference paper`` / ``--reference qam`` overlays (:func:`paper_curve_key`,
:func:`qam_curve_key`), the agents ``--preset qam`` runs (:func:`qam_preset_agents`) and the ``qam-main``
recipe, the sweep's agent check, and the rows of ``qchunk bench``. Per-domain values stay in
:mod:`qchunk.agents.presets`, keyed by the registered name.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from qchunk.agents.config import AgentConfig
from qchunk.errors import QchunkError, did_you_mean, require

#: The QAM release's dataset types: OGBench manipulation (``play``) and navigation mazes (``navigate``).
QAM_DATASET_TYPES: tuple[str, ...] = ("play", "navigate")

_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True)
class AgentSpec:
    """One agent's registration (see the module docstring for what derives from it)."""

    name: str
    """The agent's name on the command line and in ``config.json`` (lower case, digits and ``-``)."""
    agent: type
    """The agent class: ``agent.create(config, observation_dim, action_dim, seed=seed)`` builds one."""
    config: type[AgentConfig]
    """Its config class (a frozen dataclass deriving from :class:`~qchunk.agents.config.AgentConfig`). Several
    agents may share one config class (presets of one family), all with the same agent class."""
    display: str
    """Its label in plots and reports, as the papers write it (``QC-FQL``); unique among the agents."""
    reference: str
    """The paper that defines the method (authors, year, title, arXiv id)."""
    paper_curve: str | None = None
    """Its method key in the Q-chunking paper's published curves (``paper_curves.json``), or None."""
    qam_curve: str | None = None
    """Its method key in the QAM paper's released curves (``qam_curves.json``), or None. An agent with one runs
    under ``--preset qam`` (the QAM protocol)."""
    qam_datasets: tuple[str, ...] = QAM_DATASET_TYPES
    """The dataset types (:data:`QAM_DATASET_TYPES`) where :attr:`qam_curve` is this agent's counterpart: the
    release ran FQL and RLPD on chunks of 5 on ``play`` (qchunk's chunked agents) and on single actions on
    ``navigate`` (the single-action ones)."""
    bench_domain: str | None = None
    """The domain ``qchunk bench`` measures it on when not the suite's (one where its per-domain values do not
    switch part of it off); None: the suite's domain."""

    @property
    def online_only(self) -> bool:
        """True for agents that train online from scratch, with the offline data as prior data."""
        return not self.config.pretrains_offline


_SPECS: dict[str, AgentSpec] = {}


def register(spec: AgentSpec, *, replace: bool = False) -> AgentSpec:
    """Register ``spec`` so that every command and list knows the agent; returns it.

    Raises:
        QchunkError: a bad name, a name or display name taken (unless ``replace``), a config class that is not
            an agent config, or one already registered with another agent class.
    """
    require(isinstance(spec.name, str) and _NAME.fullmatch(spec.name) is not None,
            f"agent name {spec.name!r} must be lower-case letters, digits and '-' (it is a CLI value)")
    require(replace or spec.name not in _SPECS, f"agent {spec.name!r} is already registered; pass replace=True")
    require(isinstance(spec.config, type) and issubclass(spec.config, AgentConfig)
            and dataclasses.is_dataclass(spec.config),
            f"agent {spec.name!r}: config must be an AgentConfig dataclass, got {spec.config!r}")
    require(callable(getattr(spec.agent, "create", None)),
            f"agent {spec.name!r}: agent class {spec.agent!r} has no create(config, observation_dim, action_dim)")
    for other in _SPECS.values():
        if other.name == spec.name:
            continue
        require(other.display != spec.display,
                f"agent {spec.name!r}: display name {spec.display!r} is {other.name!r}'s")
        require(other.config is not spec.config or other.agent is spec.agent,
                f"agent {spec.name!r}: config class {spec.config.__name__} builds {other.agent.__name__} "
                f"(agent {other.name!r}); one config class has one agent class")
    for dataset in spec.qam_datasets:
        require(dataset in QAM_DATASET_TYPES, f"agent {spec.name!r}: unknown dataset type {dataset!r}")
    _SPECS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove agent ``name`` from the registry (for tests and plugins; no error if it is not there)."""
    _SPECS.pop(name, None)


def agent_specs() -> tuple[AgentSpec, ...]:
    """Every registration, in registration order."""
    return tuple(_SPECS.values())


def agent_names() -> tuple[str, ...]:
    """Every registered agent name, in registration order."""
    return tuple(_SPECS)


def agent_spec(name: str) -> AgentSpec:
    """The registration of agent ``name``.

    Raises:
        QchunkError: an unknown name (with the closest and the list of names).
    """
    spec = _SPECS.get(name)
    if spec is None:
        raise QchunkError(f"unknown agent {name!r}{did_you_mean(name, _SPECS)}; choose one of: {', '.join(_SPECS)}")
    return spec


def config_classes() -> dict[type[AgentConfig], tuple[str, ...]]:
    """Every registered config class and the agents it configures, in registration order."""
    found: dict[type[AgentConfig], tuple[str, ...]] = {}
    for spec in _SPECS.values():
        found[spec.config] = (*found.get(spec.config, ()), spec.name)
    return found


def agent_class(config: type[AgentConfig]) -> type[Any]:
    """The agent class a config class builds.

    Raises:
        QchunkError: no registered agent has that config class.
    """
    for spec in _SPECS.values():
        if spec.config is config:
            return spec.agent
    raise QchunkError(f"no registered agent is configured by {config.__name__}")


def display_name(agent: str) -> str:
    """The display name of agent ``agent`` (``qc-fql`` -> ``QC-FQL``); an unregistered name stays itself."""
    spec = _SPECS.get(agent)
    return agent if spec is None else spec.display


def agent_of_label(label: str) -> str | None:
    """The agent whose display name is ``label`` (``QC-FQL`` -> ``qc-fql``), or None."""
    return next((s.name for s in _SPECS.values() if s.display == label), None)


def paper_curve_key(label: str) -> str | None:
    """The Q-chunking paper's method key of a curve label that is a plain agent's display name, or None."""
    agent = agent_of_label(label)
    return None if agent is None else _SPECS[agent].paper_curve


def qam_curve_key(agent: str, dataset_type: str) -> str | None:
    """The QAM release's method key of agent ``agent`` on datasets of ``dataset_type`` (``play`` or
    ``navigate``), or None when it has no counterpart there."""
    spec = _SPECS.get(agent)
    if spec is None or spec.qam_curve is None or dataset_type not in spec.qam_datasets:
        return None
    return spec.qam_curve


def qam_preset_agents() -> tuple[str, ...]:
    """The agents ``--preset qam`` (the QAM paper's protocol) is defined for: those with a QAM release curve."""
    return tuple(s.name for s in _SPECS.values() if s.qam_curve is not None)
