"""Learning curves: success rate vs steps, mean over seeds with stratified-bootstrap CIs (``qchunk plot``).

One figure, one row per domain: the domain's aggregate (mean over its tasks, CI by a bootstrap stratified
by task) and then one panel per task (mean over seeds, CI by a bootstrap over seeds). The offline phase is
shaded grey. The x axis is the run's global step: offline gradient steps, then offline steps + online
environment steps. Online-only runs (0 offline steps, e.g. RLPD) are drawn from where the other runs'
offline phase ends, as in the paper.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from qchunk.errors import QchunkError
from qchunk.fileio import atomic_open, require_writable
from qchunk.grammar import check_name
from qchunk.ownership import figure_metadata, refuse_foreign_files
from qchunk.plotting.bootstrap import Interval, stratified_bootstrap_ci
from qchunk.plotting.reference import qam_counterparts
from qchunk.plotting.runs import RunRecord, load_runs

#: Domain order of the paper's table 1; other domains follow alphabetically.
DOMAIN_ORDER = ("puzzle-3x3", "scene", "cube-double", "cube-triple", "cube-quadruple", "robomimic")

#: What the y axis shows, by the eval.csv column runs are read from (see ``RunRecord.metric``).
METRIC_LABELS = {"success": "success rate", "normalized_score": "normalised score", "return": "return"}

#: What ``--out`` may end in (matplotlib writes each of them); ``.png`` and ``.svg`` come as a pair.
FIGURE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".eps")

#: One colour per agent (curves of one agent in several settings take the colour cycle instead).
AGENT_COLORS = {"QC": "#d62728", "QC-FQL": "#ff7f0e", "BFN": "#1f77b4", "BFN-n": "#17becf", "FQL": "#2ca02c",
                "FQL-n": "#8c564b", "RLPD": "#9467bd", "RLPD-AC": "#e377c2", "QC-RLPD": "#7f7f7f"}
_CYCLE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf")


@dataclass
class PlotArgs:
    """Plot success-rate learning curves (mean over seeds, 95% stratified-bootstrap CI) per task and per domain."""

    paths: Annotated[tuple[str, ...], tyro.conf.Positional,
                     tyro.conf.arg(metavar="RUN_OR_SWEEP_DIR", help_behavior_hint="(required: one or more)")]
    """Run directories, or sweep directories searched recursively for runs."""
    by: str = "agent"
    """Curves per `agent` (plus any setting that differs between its runs on a task, e.g. `QC-FQL h=10`), or
    per value of comma-separated settings, e.g. `horizon` or `agent,num_critics`."""
    reference: Annotated[str | None, tyro.conf.arg(help=(
        "`paper`: overlay the Q-chunking paper's published curves (dashed) for its methods. `qam`: overlay the "
        "QAM paper's released per-seed curves (dashed, hatched CI bootstrapped from its 12 seeds) for the agents "
        f"with a counterpart there ({qam_counterparts()})."))] = None
    """`paper` or `qam`: the published curves to overlay (the help lists the agents with a QAM counterpart)."""
    out: str | None = None
    """Where the figure goes. `fig.png`, `fig.svg` or `fig` (no suffix): both `fig.png` and `fig.svg`;
    `fig.pdf`, `.jpg`, `.jpeg`, `.tif`, `.tiff`, `.webp`, `.eps`: just that file; an existing directory or
    a path ending in `/`: `learning_curves.png` and `.svg` in it (created if needed); any other suffix is
    refused. Default: <first dir>/plots/learning_curves.png (and .svg)."""
    resamples: int = 5000
    """Bootstrap resamples (the paper: 5000)."""
    confidence: float = 0.95
    """Confidence level of the intervals."""
    seed: int = 0
    """Seed of the bootstrap's random generator (same seed, same intervals)."""


@dataclass
class Curve:
    """One plotted curve: a label on a task or a domain aggregate."""

    label: str
    domain: str
    task: str | None
    """None for the domain aggregate."""
    x: np.ndarray
    """Global steps (online-only runs shifted past the offline phase)."""
    interval: Interval
    n_tasks: int
    n_seeds: tuple[int, ...]
    """Seeds per task."""


def natural_key(text: str) -> list:
    """Sort key that orders ``h=5`` before ``h=10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def legend_key(label: str) -> tuple:
    """Paper order for the paper's agents, natural order for the rest."""
    order = list(AGENT_COLORS)
    head = label.split(" ")[0]
    return (order.index(head) if head in order else len(order), natural_key(label))


def domain_key(domain: str) -> tuple:
    """Sort key: the paper's domain order (table 1), then any other domain alphabetically."""
    return (DOMAIN_ORDER.index(domain) if domain in DOMAIN_ORDER else len(DOMAIN_ORDER), domain)


def offline_end(runs: Sequence[RunRecord]) -> int:
    """Where the offline phase ends on the shared x axis: the longest offline phase among ``runs``."""
    return max((r.offline_steps for r in runs), default=0)


def _x(run: RunRecord, shift: int) -> np.ndarray:
    return run.steps + (shift if run.offline_steps == 0 else 0)


def _matrix(runs: Sequence[RunRecord], shift: int, steps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seeds x steps success matrix on the union of the runs' steps (NaN where a run has no evaluation)."""
    if steps is None:
        steps = np.unique(np.concatenate([_x(r, shift) for r in runs]))
    out = np.full((len(runs), steps.size), np.nan)
    for i, r in enumerate(runs):
        x = _x(r, shift)
        # a resumed run may repeat a step only if its eval.csv was edited; keep the last value of each step
        _, last = np.unique(x[::-1], return_index=True)
        keep = x.size - 1 - last
        out[i, np.searchsorted(steps, x[keep])] = r.success[keep]
    return steps, out


def compute_curves(runs: Sequence[RunRecord], rng: np.random.Generator, n_resamples: int = 5000,
                   confidence: float = 0.95) -> list[Curve]:
    """Per-task and per-domain curves of every label (runs must be labelled; runs without evals are ignored)."""
    runs = [r for r in runs if r.steps.size]
    shift = offline_end(runs)
    by_task: dict[tuple[str, str, str], list[RunRecord]] = {}
    for r in runs:
        by_task.setdefault((r.label, r.domain, r.task), []).append(r)
    curves: list[Curve] = []
    for (label, domain, task), group in sorted(by_task.items(), key=lambda kv: (domain_key(kv[0][1]),
                                                                               natural_key(kv[0][2]),
                                                                               natural_key(kv[0][0]))):
        steps, mat = _matrix(sorted(group, key=lambda r: r.seed), shift)
        curves.append(Curve(label, domain, task, steps, stratified_bootstrap_ci([mat], rng, n_resamples, confidence),
                            1, (len(group),)))
    by_domain: dict[tuple[str, str], dict[str, list[RunRecord]]] = {}
    for (label, domain, task), group in by_task.items():
        by_domain.setdefault((label, domain), {})[task] = group
    for (label, domain), tasks in sorted(by_domain.items(), key=lambda kv: (domain_key(kv[0][1]),
                                                                            natural_key(kv[0][0]))):
        if len(tasks) < 2:
            continue
        steps = np.unique(np.concatenate([_x(r, shift) for g in tasks.values() for r in g]))
        strata = [_matrix(sorted(tasks[t], key=lambda r: r.seed), shift, steps)[1]
                  for t in sorted(tasks, key=natural_key)]
        curves.append(Curve(label, domain, None, steps, stratified_bootstrap_ci(strata, rng, n_resamples, confidence),
                            len(tasks), tuple(len(tasks[t]) for t in sorted(tasks, key=natural_key))))
    return curves


def label_colors(labels: Sequence[str]) -> dict[str, str]:
    """Fixed colours for the paper's agents; the colour cycle when labels are settings of one agent."""
    labels = sorted(set(labels), key=natural_key)
    if all(lab in AGENT_COLORS for lab in labels):
        return {lab: AGENT_COLORS[lab] for lab in labels}
    return {lab: _CYCLE[i % len(_CYCLE)] for i, lab in enumerate(labels)}


def _unit(max_x: float) -> tuple[float, str]:
    if max_x >= 200_000:
        return 1e6, "millions"
    if max_x >= 2_000:
        return 1e3, "thousands"
    return 1.0, ""


def _reference_x(steps_m: np.ndarray, offline: int, online: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Map the paper's x (millions; 0-1 offline, 1-2 online) onto this figure's phases. Returns x, a mask of
    the points kept, and whether the axis had to be rescaled."""
    if offline in (0, 1_000_000) and online in (0, 1_000_000):
        if offline == 0:
            keep = steps_m >= 1.0 - 1e-9
            return (steps_m - 1.0) * 1e6, keep, False
        return steps_m * 1e6, np.ones(steps_m.shape, bool), False
    keep = np.ones(steps_m.shape, bool) if offline > 0 else steps_m >= 1.0 - 1e-9
    x = np.where(steps_m <= 1.0, steps_m * offline, offline + (steps_m - 1.0) * online)
    return x, keep, True


def figure_paths(out: str | os.PathLike, name: str = "learning_curves") -> list[Path]:
    """The files a figure saved to ``out`` is written to (the rule of ``qchunk plot --out``).

    ``x.png``, ``x.svg`` or ``x`` without a suffix: ``[x.png, x.svg]``; another suffix of
    :data:`FIGURE_SUFFIXES`: ``[out]``; an existing directory or a path ending in ``/``: ``name.png`` and
    ``name.svg`` in it.

    Raises:
        QchunkError: a suffix matplotlib cannot write (or one not in :data:`FIGURE_SUFFIXES`).
    """
    text = os.fspath(out)
    path = Path(text).expanduser()
    if text.endswith(("/", os.sep)) or path.is_dir():
        path = path / f"{name}.png"
    suffix = path.suffix.lower()
    if suffix in ("", ".png", ".svg"):
        stem = path.with_suffix("") if suffix else path
        return [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    if suffix not in FIGURE_SUFFIXES:
        raise QchunkError(f"--out {text}: cannot write a {suffix} figure; end it in {', '.join(FIGURE_SUFFIXES)}, "
                          "or give a directory (ending in /)")
    return [path]


def plot_curves(runs: Sequence[RunRecord], out: str | Path, *, reference: str | None = None,
                n_resamples: int = 5000, confidence: float = 0.95, seed: int = 0,
                curves: Sequence[Curve] | None = None) -> list[Path]:
    """Draw the learning-curve figure of labelled ``runs`` and save it to ``out`` (see :func:`figure_paths`:
    ``x.png`` writes ``x.png`` and ``x.svg``, ``x.pdf`` just ``x.pdf``, a directory ``learning_curves.png``
    and ``.svg`` in it).

    Returns:
        The written paths (:func:`figure_paths` of ``out``).
    Raises:
        QchunkError: no run has an evaluation yet, an unknown ``reference`` or an unsupported suffix.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if reference is not None:
        check_name(reference, ("paper", "qam", "none"), "--reference")
    evaluated = [r for r in runs if r.steps.size]
    if not evaluated:
        raise QchunkError("no evaluations yet in these runs (eval.csv is empty or missing); plot again later")
    metrics = {r.metric for r in evaluated}
    if len(metrics) > 1:
        raise QchunkError(f"these runs measure different things ({', '.join(sorted(metrics))}: tasks with and "
                          "without a success signal); plot them separately")
    measure = METRIC_LABELS[metrics.pop()]
    if curves is None:
        curves = compute_curves(evaluated, np.random.default_rng(seed), n_resamples, confidence)
    shift = offline_end(evaluated)
    online_len = max((r.online_steps for r in evaluated), default=0)
    max_x = max(float(c.x.max()) for c in curves)
    scale, unit = _unit(max(max_x, shift + online_len))
    colors = label_colors([c.label for c in curves])

    domains = sorted({c.domain for c in curves}, key=domain_key)
    panels: dict[str, list[str | None]] = {}
    for d in domains:
        tasks = sorted({c.task for c in curves if c.domain == d and c.task is not None}, key=natural_key)
        panels[d] = ([None] if len(tasks) > 1 else []) + tasks
    ncols = max(len(p) for p in panels.values())
    width = max(3.4 * ncols + 0.4, 5.0)
    fig, axes = plt.subplots(len(domains), ncols, figsize=(width, 2.7 * len(domains) + 1.1),
                             squeeze=False, sharey=True, layout="constrained")
    rescaled = False
    seeds_per_label: dict[str, set[int]] = {}
    for row, d in enumerate(domains):
        for col in range(ncols):
            ax = axes[row][col]
            if col >= len(panels[d]):
                ax.set_visible(False)
                continue
            task = panels[d][col]
            if shift > 0:
                ax.axvspan(0, shift / scale, color="0.90", zorder=0, lw=0)
            for c in (c for c in curves if c.domain == d and c.task == task):
                color = colors[c.label]
                x = c.x / scale
                ok = np.isfinite(c.interval.point)
                ax.fill_between(x[ok], c.interval.low[ok], c.interval.high[ok], color=color, alpha=0.18, lw=0)
                ax.plot(x[ok], c.interval.point[ok], color=color, lw=1.8, marker="o" if ok.sum() <= 6 else None,
                        ms=3.5)
                seeds_per_label.setdefault(c.label, set()).update(c.n_seeds)
                if reference == "paper":
                    rescaled |= _draw_reference(ax, c.label, d, task, panels[d][1:], shift, online_len, scale, color)
                elif reference == "qam":
                    from qchunk.plotting.reference import draw_qam

                    rescaled |= draw_qam(ax, c.label, d, task, panels[d][1:], shift, online_len, scale, color,
                                         n_resamples, confidence, seed)
            ax.set_title(f"{d}: mean of {len(panels[d]) - 1} tasks" if task is None else f"{d} {task}",
                         fontsize=10, fontweight="bold" if task is None else "normal")
            ax.set_xlim(left=0)
            if measure == METRIC_LABELS["success"]:
                ax.set_ylim(-0.03, 1.03)
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.grid(True, color="0.85", lw=0.6)
            ax.set_axisbelow(True)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
            if col == 0:
                ax.set_ylabel(measure)
    narrow = width < 8
    phases = (f"offline gradient steps,{chr(10) if narrow else ' '}then online environment steps" if shift > 0
              else "environment steps")
    fig.supxlabel(phases + (f" ({unit})" if unit else ""), fontsize=10)
    handles = []
    for label in sorted(colors, key=legend_key):
        seeds = sorted(seeds_per_label.get(label, ()))
        n = (f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}") if seeds else "0"
        handles.append(Line2D([], [], color=colors[label], lw=2, label=f"{label} ({n} seed{'s' if n != '1' else ''})"))
    if reference in ("paper", "qam"):
        handles.append(Line2D([], [], color="0.3", lw=1.4, ls="--",
                              label=("paper" if reference == "paper" else "QAM release (hatched: CI)")
                              + (" (x rescaled to these phase lengths)" if rescaled else "")))
    if shift > 0:
        handles.append(Patch(color="0.90", label="offline phase"))
    # as many legend entries per row as fit the figure's width (about 0.06 in per character at 9 pt)
    ncol, used = 0, 0.0
    for h in handles:
        used += 0.06 * len(h.get_label()) + 0.6
        if used > width - 0.3 and ncol:
            break
        ncol += 1
    fig.legend(handles=handles, loc="outside upper center", ncol=ncol, frameon=False, fontsize=9,
               title=f"{measure}: mean over seeds,{chr(10) if narrow else ' '}shaded "
                     f"{100 * confidence:.0f}% stratified-bootstrap CI ({n_resamples} resamples)", title_fontsize=10)
    paths = figure_paths(out)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    for path in paths:
        fmt = path.suffix.lower()[1:]
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format=fmt, metadata=figure_metadata(fmt),
                        **({} if fmt in ("svg", "pdf", "eps") else {"dpi": 150}))
    plt.close(fig)
    return paths


def _draw_reference(ax, label: str, domain: str, task: str | None, tasks: Sequence[str | None], offline: int,
                    online: int, scale: float, color: str) -> bool:
    from qchunk.plotting.reference import paper_aggregate, paper_curve

    ref = paper_curve(label, domain, task) if task is not None else paper_aggregate(label, domain, tasks)
    if ref is None:
        return False
    x, keep, rescaled = _reference_x(ref.steps, offline, online)
    ax.plot(x[keep] / scale, ref.mean[keep], color=color, lw=1.3, ls="--", alpha=0.9)
    return rescaled


def main(args: PlotArgs) -> int:
    """``qchunk plot``."""
    if args.resamples < 1:
        raise QchunkError(f"--resamples must be >= 1, got {args.resamples}")
    if not 0 < args.confidence < 1 or not math.isfinite(args.confidence):
        raise QchunkError(f"--confidence must be in (0, 1), got {args.confidence}")
    if args.reference is not None:
        check_name(args.reference, ("paper", "qam", "none"), "--reference")
    if not args.paths:
        raise QchunkError("qchunk plot needs at least one RUN_OR_SWEEP_DIR (a run directory holds config.json), "
                          "e.g. qchunk plot runs/")
    runs = load_runs(args.paths, args.by)
    out = args.out if args.out else Path(args.paths[0]).expanduser() / "plots" / "learning_curves.png"
    for path in figure_paths(out):  # before the bootstrap
        require_writable(path, "--out", is_dir=False)
    from qchunk.training.run_dir import in_own_folder

    refuse_foreign_files(figure_paths(out), also=in_own_folder)  # a figure is replaced only if qchunk drew it
    paths = plot_curves(runs, out, reference=args.reference, n_resamples=args.resamples,
                        confidence=args.confidence, seed=args.seed)
    labels = sorted({r.label for r in runs}, key=natural_key)
    print(f"{len(runs)} runs, curves: {', '.join(labels)}")
    for p in paths:
        print(f"wrote {p}")
    return 0


__all__ = ["FIGURE_SUFFIXES", "Curve", "PlotArgs", "compute_curves", "figure_paths", "label_colors",
           "main", "plot_curves"]
