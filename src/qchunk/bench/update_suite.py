"""The ``update`` suite: update throughput and acting latency of every agent and preset, and how the
update cost grows with the chunk length h and the best-of-N width N.

Every row is :func:`qchunk.bench.update.bench_agent` on the synthetic cube-double batch (obs 37,
action 5, batch 256): ``updates_per_s`` (median step), ``compile_s``, ``act_ms`` (one chunk for one
observation) and ``params``. The scaling series vary one field of one agent (default QC) with everything
else at the preset's values; ``relative_cost`` is the step time over that of the series' first point. A
scaling point whose resolved config equals an agent row's is taken from that row, not measured twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qchunk.agents import agent_config
from qchunk.agents.registry import agent_names, agent_specs
from qchunk.bench.update import bench_agent


@dataclass(frozen=True)
class UpdateSettings:
    """What the ``update`` suite measures."""

    agents: tuple[str, ...] = field(default_factory=agent_names)
    """Agents with a throughput row (default: every registered agent)."""
    presets: tuple[str, ...] = ("quick", "paper")
    """Presets with a throughput row per agent."""
    domain: str = "cube-double"
    """Domain of the strengths (alpha, N)."""
    agent_domains: dict[str, str] = field(default_factory=lambda: {s.name: s.bench_domain for s in agent_specs()
                                                                   if s.bench_domain is not None})
    """Agents measured on another domain than ``domain``: their registration's ``bench_domain``, where no
    per-domain value switches part of the agent off (the QAM variants on cube-triple: the QAM reproduction
    script's alpha and edit_scale are 0 on cube-double, which makes them QAM)."""
    steps: int = 20
    """Timed updates per agent row."""
    act_repeats: int = 20
    """Timed ``sample_actions`` calls per row."""
    scan: bool = True
    """Also time ``update_many`` (lax.scan) in the agent rows."""
    scaling_agent: str = "qc"
    """Agent of the h and N series."""
    scaling_preset: str = "paper"
    """Preset of the h and N series."""
    horizons: tuple[int, ...] = (1, 5, 10, 25)
    """Chunk lengths h of the h series."""
    num_samples: tuple[int, ...] = (4, 8, 16, 32, 64)
    """Best-of-N widths of the N series."""
    scaling_steps: int = 10
    """Timed updates per scaling point."""
    seed: int = 0
    """Seed of agents and batches."""
    agent_overrides: dict[str, Any] = field(default_factory=dict)
    """Agent fields applied to every row (tests use tiny networks)."""

    @classmethod
    def quick(cls, agent: str | None = None, preset: str | None = None, **changes: Any) -> UpdateSettings:
        """The quick set's size: the quick preset, fewer steps, no scan, N in {4, 32, 64}."""
        base = {"presets": (preset or "quick",), "steps": 10, "act_repeats": 10, "scan": False,
                "scaling_preset": preset or "quick", "num_samples": (4, 32, 64), "scaling_steps": 5}
        if agent is not None:
            base["agents"] = (agent,)
        return cls(**{**base, **changes})

    @classmethod
    def full(cls, agent: str | None = None, preset: str | None = None, **changes: Any) -> UpdateSettings:
        """Full size: both presets, the paper preset for the scaling series."""
        base: dict[str, Any] = {}
        if agent is not None:
            base["agents"] = (agent,)
        if preset is not None:
            base.update(presets=(preset,), scaling_preset=preset)
        return cls(**{**base, **changes})


def _row(result: dict[str, Any]) -> dict[str, Any]:
    keep = ("agent", "preset", "domain", "horizon", "num_samples", "updates_per_s", "step_ms_median", "compile_s",
            "act_ms", "params")
    out = {k: result[k] for k in keep}
    out["step_ms"] = out.pop("step_ms_median")
    return out


def run_update(settings: UpdateSettings) -> dict[str, Any]:
    """Measure the agent rows and the two scaling series; returns the results document body."""
    s = settings
    measured: dict[Any, dict[str, Any]] = {}  # resolved config -> bench_agent result

    def measure(name: str, preset: str, steps: int, act_repeats: int, scan: bool, **changes: Any) -> dict[str, Any]:
        overrides = {**s.agent_overrides, **changes}
        agent_fields = {k: v for k, v in overrides.items() if k != "batch_size"}  # batch_size: a run setting
        domain = s.agent_domains.get(name, s.domain)
        key = (name, overrides.get("batch_size"), agent_config(name, preset, domain, **agent_fields))
        if key not in measured:
            print(f"[bench] update: {name} ({preset}) {changes or ''}", flush=True)
            measured[key] = bench_agent(name, preset, domain, steps=steps, act_repeats=act_repeats, scan=scan,
                                        seed=s.seed, **overrides)
        return measured[key]

    agents = []
    for preset in s.presets:
        for name in s.agents:
            result = measure(name, preset, s.steps, s.act_repeats, s.scan)
            agents.append({**_row(result), "scan_updates_per_s": result["scan_updates_per_s"],
                           "batch_size": result["batch_size"], "metrics_finite": result["metrics_finite"]})

    def series(field_name: str, values: tuple[int, ...]) -> dict[str, Any] | None:
        if not values or s.scaling_agent not in agent_names():
            return None
        rows = [_row(measure(s.scaling_agent, s.scaling_preset, s.scaling_steps, 3, False, **{field_name: v}))
                for v in values]
        for row, v in zip(rows, values, strict=True):
            row[field_name] = v
            row["relative_cost"] = row["step_ms"] / rows[0]["step_ms"]
        return {"agent": s.scaling_agent, "preset": s.scaling_preset, "field": field_name, "rows": rows}

    return {
        "domain": s.domain,
        "observation_dim": 37,
        "action_dim": 5,
        "agents": agents,
        "horizon_scaling": series("horizon", s.horizons),
        "num_samples_scaling": series("num_samples", s.num_samples),
    }
