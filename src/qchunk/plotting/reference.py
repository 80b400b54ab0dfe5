"""The paper's published learning curves (``qchunk/resources/paper_curves.json``).

Keys are ``ogbench-task/<domain>-play-task<N>/<METHOD>``, ``ogbench-domain/<domain>/<METHOD>`` (and
``ogbench-domain/all/<METHOD>``) and ``robomimic-task/<task>/<METHOD>``. Steps are in millions of
environment + gradient steps: 0-1 offline, 1-2 online (online-only methods: 1-2 only). Values are success
rates in [0, 1] with 95% bootstrap CIs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from qchunk.plotting.runs import DISPLAY_NAMES


@dataclass(frozen=True)
class ReferenceCurve:
    """One published curve."""

    key: str
    steps: np.ndarray
    """In millions of steps (offline phase 0-1, online 1-2)."""
    mean: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray


@functools.cache
def paper_curves() -> dict[str, ReferenceCurve]:
    """All published curves, by key (read once from the package resource)."""
    text = resources.files("qchunk.resources").joinpath("paper_curves.json").read_text()
    raw = json.loads(text)["curves"]
    return {k: ReferenceCurve(k, *(np.asarray(v[f], np.float64) for f in ("steps", "mean", "ci_low", "ci_high")))
            for k, v in raw.items()}


def paper_method(label: str) -> str | None:
    """The paper's method name for a curve label that is a plain agent (``QC-FQL``), else None."""
    return label if label in DISPLAY_NAMES.values() else None


def paper_curve(label: str, domain: str, task: str | None = None) -> ReferenceCurve | None:
    """The published curve of ``label`` on ``domain`` (``task``: ``task2``; None: the domain aggregate)."""
    method = paper_method(label)
    if method is None:
        return None
    curves = paper_curves()
    if domain == "robomimic":
        return curves.get(f"robomimic-task/{task}/{method}") if task is not None else None
    if task is None:
        return curves.get(f"ogbench-domain/{domain}/{method}")
    return curves.get(f"ogbench-task/{domain}-play-{task}/{method}")


def paper_aggregate(label: str, domain: str, tasks: Sequence[str]) -> ReferenceCurve | None:
    """The published mean over exactly ``tasks`` (``["task1", "task3"]``) of ``domain``: the domain curve when
    all five tasks are given, else the mean of the published per-task curves (None if any is missing)."""
    if sorted(tasks) == [f"task{i}" for i in range(1, 6)]:
        found = paper_curve(label, domain)
        if found is not None:
            return found
    parts = [paper_curve(label, domain, t) for t in tasks]
    if not parts or any(p is None for p in parts) or any(p.steps.shape != parts[0].steps.shape for p in parts):
        return None
    stack = {f: np.mean([getattr(p, f) for p in parts], axis=0) for f in ("mean", "ci_low", "ci_high")}
    # the mean of per-task CI bounds is not a CI of the mean; only the mean is drawn
    return ReferenceCurve(f"mean of {len(parts)} tasks", parts[0].steps, **stack)


def paper_value(label: str, domain: str, at: float) -> tuple[float, float, float] | None:
    """``(mean, ci_low, ci_high)`` of the published domain curve at ``at`` million steps (1.0: end of the
    offline phase, 2.0: end of online), or None."""
    curve = paper_curve(label, domain)
    if curve is None:
        return None
    hit = np.flatnonzero(np.isclose(curve.steps, at))
    if not hit.size:
        return None
    i = hit[0]
    return float(curve.mean[i]), float(curve.ci_low[i]), float(curve.ci_high[i])
