"""Published learning curves: the Q-chunking paper's (``paper_curves.json``) and the QAM paper's released
per-seed curves (``qam_curves.json``), both in ``qchunk/resources``.

Q-chunking paper (``--reference paper``):

Keys are ``ogbench-task/<domain>-play-task<N>/<METHOD>``, ``ogbench-domain/<domain>/<METHOD>`` (and
``ogbench-domain/all/<METHOD>``) and ``robomimic-task/<task>/<METHOD>``. Steps are in millions of
environment + gradient steps: 0-1 offline, 1-2 online (online-only methods: 1-2 only). Values are success
rates in [0, 1] with 95% bootstrap CIs.

QAM paper (``--reference qam``; Li and Levine, arXiv 2601.14234): 12 seeds per task, success every 50K steps of
1M offline + 0.5M online steps (RLPD online only), on 50 OGBench tasks of 10 domains; keys
``task/<task name>/<method>``, ``domain/<domain>-<type>/<method>``, ``all/all/<method>``. Its CIs are not
released; :func:`qam_interval` computes them from the seeds with :mod:`qchunk.plotting.bootstrap`, as qchunk's
own curves. Which qchunk agent matches which method of either set: its registration
(:class:`qchunk.agents.registry.AgentSpec`: ``paper_curve``, ``qam_curve`` and ``qam_datasets``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from qchunk.agents.registry import agent_of_label, agent_specs, paper_curve_key, qam_curve_key
from qchunk.plotting.bootstrap import Interval, stratified_bootstrap_ci
from qchunk.tasks import DOMAINS


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
    """The paper's method name for a curve label that is a plain agent's display name (``QC-FQL``) with a
    published curve (its registration's ``paper_curve``), else None."""
    return paper_curve_key(label)


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


# ------------------------------------------------------------------------------------------------- QAM
#: The reference curve sets ``qchunk plot --reference`` (and ``qchunk report --reference``) overlay.
REFERENCES = ("paper", "qam")

#: QAM's protocol in millions of steps: 1M offline gradient steps, then 0.5M online environment steps.
QAM_OFFLINE_M, QAM_ONLINE_M = 1.0, 0.5


def qam_counterparts() -> str:
    """The agents with a QAM-release counterpart, for help texts: ``qam, ..., qc-fql (manipulation), fql (navigate
    mazes), ...`` (FQL and RLPD ran on chunks of 5 on the ``play`` domains and on single actions on the mazes)."""
    where = {"play": "manipulation", "navigate": "navigate mazes"}
    return ", ".join(s.name + ("" if len(s.qam_datasets) > 1 else f" ({where[s.qam_datasets[0]]})")
                     for s in agent_specs() if s.qam_curve is not None)


@dataclass(frozen=True)
class SeedCurves:
    """One released per-seed curve of the QAM paper."""

    key: str
    """``task/<task name>/<method>``, ``domain/<domain>-<type>/<method>`` or ``all/all/<method>``."""
    steps: np.ndarray
    """``(P,)`` in millions of steps: 0.05..1.0 offline, 1.05..1.5 online (RLPD: 1.05..1.5 only)."""
    seeds: np.ndarray
    """``(n_seeds, P)`` success rates in [0, 1] (12 seeds)."""
    mean: np.ndarray
    """``(P,)`` the released mean over seeds."""


@functools.cache
def qam_curves() -> dict[str, SeedCurves]:
    """Every released QAM curve by key (read once from ``qchunk/resources/qam_curves.json``)."""
    text = resources.files("qchunk.resources").joinpath("qam_curves.json").read_text()
    return {k: SeedCurves(k, np.asarray(v["steps"], np.float64), np.asarray(v["seeds"], np.float64),
                          np.asarray(v["mean"], np.float64))
            for k, v in json.loads(text)["curves"].items()}


def _agent_of(label: str) -> str:
    """The agent name of a plain curve label (``QC-FQL`` -> ``qc-fql``; an agent name stays itself)."""
    return agent_of_label(label) or label.lower()


def qam_domain(domain: str) -> str | None:
    """The QAM release's domain key of a qchunk domain (``cube-double`` -> ``cube-double-play``,
    ``antmaze-large`` -> ``antmaze-large-navigate``), or None for a domain the release does not have."""
    d = DOMAINS.get(domain)
    key = None if d is None else d.dataset.removesuffix("-v0")
    return key if key is not None and any(k.startswith(f"domain/{key}/") for k in qam_curves()) else None


def qam_method(label: str, domain: str) -> str | None:
    """The QAM release's method label for a plain curve label on ``domain`` (the agent's registration:
    ``qam_curve`` on its ``qam_datasets``), or None when it has no counterpart there."""
    if qam_domain(domain) is None:
        return None
    return qam_curve_key(_agent_of(label), DOMAINS[domain].dataset_type)


def qam_strata(label: str, domain: str, tasks: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """The released per-seed curves of ``label``'s counterpart on ``tasks`` (``["task1", "task3"]``) of
    ``domain``: ``(steps (P,), [seeds (n_seeds, P) per task])``, or None if any is missing."""
    method = qam_method(label, domain)
    if method is None or not tasks:
        return None
    curves = qam_curves()
    parts = []
    for t in tasks:
        number = t.removeprefix("task")
        curve = curves.get(f"task/{DOMAINS[domain].task_name(int(number))}/{method}") if number.isdigit() else None
        if curve is None:
            return None
        parts.append(curve)
    if any(p.steps.shape != parts[0].steps.shape or not np.allclose(p.steps, parts[0].steps) for p in parts):
        return None
    return parts[0].steps, [p.seeds for p in parts]


@functools.cache
def _qam_interval(label: str, domain: str, tasks: tuple[str, ...], n_resamples: int, confidence: float,
                  seed: int) -> tuple[np.ndarray, Interval] | None:
    found = qam_strata(label, domain, tasks)
    if found is None:
        return None
    steps, strata = found
    return steps, stratified_bootstrap_ci(strata, np.random.default_rng(seed), n_resamples, confidence)


def qam_interval(label: str, domain: str, tasks: Sequence[str], n_resamples: int = 5000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[np.ndarray, Interval] | None:
    """The QAM release's curve of ``label``'s counterpart over ``tasks`` of ``domain``, with its CI computed
    from the released seeds exactly as qchunk's own curves: the mean over tasks of the seed means, a
    stratified bootstrap over seeds within each task (one task: a plain bootstrap over its seeds), with
    ``np.random.default_rng(seed)``. Over all five tasks the point estimate is the released domain mean.

    Returns:
        ``(steps (P,) in millions, Interval of (P,))``, or None (no counterpart, or a task is missing).
    """
    tasks = tuple(sorted(tasks, key=lambda t: (len(t), t)))
    return _qam_interval(label, domain, tasks, int(n_resamples), float(confidence), int(seed))


def qam_x(steps_m: np.ndarray, offline: int, online: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """QAM's x (millions; 0-1 offline, 1-1.5 online) on a figure whose phases are ``offline`` gradient steps
    and ``online`` environment steps (``offline`` 0: online-only runs, drawn from 0). Returns the x values,
    a mask of the points kept (online points only when ``offline`` is 0), and whether the axis had to be
    rescaled (phase lengths other than QAM's)."""
    steps_m = np.asarray(steps_m, np.float64)
    on = steps_m > QAM_OFFLINE_M + 1e-9
    native = offline in (0, int(QAM_OFFLINE_M * 1e6)) and online in (0, int(QAM_ONLINE_M * 1e6))
    online_scale = 1e6 if native else online / QAM_ONLINE_M
    online_x = (steps_m - QAM_OFFLINE_M) * online_scale
    if offline == 0:
        return online_x, on, not native
    offline_scale = 1e6 if native else offline / QAM_OFFLINE_M
    return np.where(on, offline + online_x, steps_m * offline_scale), np.ones(steps_m.shape, bool), not native


def draw_qam(ax, label: str, domain: str, task: str | None, tasks: Sequence[str | None], offline: int, online: int,
             scale: float, color: str, n_resamples: int = 5000, confidence: float = 0.95, seed: int = 0) -> bool:
    """Overlay the QAM release's curve of ``label``'s counterpart (dashed, its CI hatched lightly) on ``ax``:
    task ``task``, or for ``task`` None the mean over ``tasks`` of ``domain``. Returns whether the x axis was
    rescaled; draws nothing without a counterpart."""
    chosen = [task] if task is not None else [t for t in tasks if t is not None]
    found = qam_interval(label, domain, chosen, n_resamples, confidence, seed)
    if found is None:
        return False
    steps, iv = found
    x, keep, rescaled = qam_x(steps, offline, online)
    ax.fill_between(x[keep] / scale, iv.low[keep], iv.high[keep], facecolor="none", edgecolor=color, alpha=0.45,
                    hatch="////", lw=0)
    ax.plot(x[keep] / scale, iv.point[keep], color=color, lw=1.3, ls="--", alpha=0.9)
    return rescaled


def qam_value(label: str, domain: str, tasks: Sequence[str], phase: str, n_resamples: int = 5000,
              confidence: float = 0.95, seed: int = 0) -> Interval | None:
    """The QAM release's success of ``label``'s counterpart over ``tasks`` at the end of ``phase``
    (``offline``: 1.0M steps, ``online``: 1.5M) as a scalar :class:`Interval`, or None (no counterpart,
    or no such point: RLPD has no offline phase)."""
    found = qam_interval(label, domain, tasks, n_resamples, confidence, seed)
    if found is None:
        return None
    steps, iv = found
    hit = np.flatnonzero(np.isclose(steps, QAM_OFFLINE_M if phase == "offline" else QAM_OFFLINE_M + QAM_ONLINE_M))
    if not hit.size:
        return None
    i = hit[0]
    return Interval(iv.point[i], iv.low[i], iv.high[i])
