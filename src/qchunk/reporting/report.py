"""``qchunk report SWEEP_DIR``: a markdown and HTML summary of a sweep.

It holds the table-1-style numbers (success after the offline phase -> after the online phase, per method
and domain, mean over tasks and seeds with a stratified-bootstrap CI), the same per task, the paper's
published numbers for comparison, the learning-curve figure, and the run metadata (settings, versions,
hardware, time). ``summary.json`` holds the numbers for scripts.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
import platform
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro

from qchunk.errors import QchunkError
from qchunk.fileio import atomic_write_json, atomic_write_text, require_writable
from qchunk.grammar import check_name
from qchunk.ownership import MARK, refuse_foreign_files
from qchunk.plotting.bootstrap import Interval, stratified_bootstrap_ci
from qchunk.plotting.curves import domain_key, figure_paths, legend_key, natural_key, plot_curves
from qchunk.plotting.reference import paper_aggregate, paper_curve, qam_domain, qam_method, qam_value
from qchunk.plotting.runs import RunRecord, load_runs
from qchunk.training.run_dir import CONFIG_FILE, RESULT_FILE, RunDir, in_own_folder

#: The paper's five OGBench domains (its "all" column averages them).
_PAPER_DOMAINS = ("puzzle-3x3", "scene", "cube-double", "cube-triple", "cube-quadruple")


@dataclass
class ReportArgs:
    """Write a markdown + HTML report of a sweep: table-1 numbers with CIs, figures, metadata."""

    sweep_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="SWEEP_DIR")]
    """A sweep directory (or any directory holding run directories)."""
    out: str | None = None
    """Output directory (default SWEEP_DIR/report)."""
    by: str = "agent"
    """Group runs per `agent` (plus differing settings) or per comma-separated settings (as `qchunk plot`)."""
    reference: str | None = None
    """`paper` or `qam`: also overlay those published curves in the figure (as `qchunk plot --reference`; the
    published numbers tables are always there)."""
    resamples: int = 5000
    """Bootstrap resamples."""
    confidence: float = 0.95
    """Confidence level of the intervals."""
    seed: int = 0
    """Seed of the bootstrap's random generator."""


# ------------------------------------------------------------------------------------------- numbers
@dataclass
class Cell:
    """One table cell: the end-of-offline and end-of-online success of a label on a domain (or task)."""

    offline: Interval | None
    online: Interval | None
    runs: int
    """Runs in the group."""
    offline_n: int
    online_n: int
    """Runs that have reached the end of each phase."""
    offline_expected: int
    online_expected: int
    """Runs that have that phase at all (online-only runs have no offline phase)."""


def _ci(values_per_task: Sequence[list[float]], rng, n_resamples, confidence) -> Interval | None:
    strata = [np.asarray(v, np.float64) for v in values_per_task if v]
    return stratified_bootstrap_ci(strata, rng, n_resamples, confidence) if strata else None


def cell(runs: Sequence[RunRecord], rng: np.random.Generator, n_resamples: int = 5000,
         confidence: float = 0.95) -> Cell:
    """End-of-phase success of ``runs`` (one label): mean over tasks of the seed means, stratified CI."""
    tasks: dict[tuple[str, str], list[RunRecord]] = {}
    for r in runs:
        tasks.setdefault((r.domain, r.task), []).append(r)
    keys = sorted(tasks, key=lambda k: (domain_key(k[0]), natural_key(k[1])))
    out = {}
    for phase in ("offline", "online"):
        vals = [[v for r in tasks[k] if (v := r.value_at_end_of(phase)) is not None] for k in keys]
        out[phase] = (_ci(vals, rng, n_resamples, confidence), sum(map(len, vals)))
    expected_off = sum(r.offline_steps > 0 for r in runs)
    expected_on = sum(r.online_steps > 0 for r in runs)
    return Cell(out["offline"][0], out["online"][0], len(runs), out["offline"][1], out["online"][1],
                expected_off, expected_on)


def _pct(x: float, scale: float = 100.0) -> str:
    return f"{scale * x:.0f}"


def format_cell(c: Cell, ci: bool = True, scale: float = 100.0) -> str:
    """``67 [60, 74] → 98 [96, 99]`` (the values times ``scale``: 100 for success rates and normalised
    scores, 1 for returns); ``–`` for a phase the runs do not have; ``*`` when some runs have not reached
    that point yet."""
    parts = []
    for iv, n, expected in ((c.offline, c.offline_n, c.offline_expected), (c.online, c.online_n, c.online_expected)):
        if expected == 0:
            parts.append("–")
        elif iv is None:
            parts.append("…")
        else:
            text = _pct(float(iv.point), scale)
            if ci:
                text += f" [{_pct(float(iv.low), scale)}, {_pct(float(iv.high), scale)}]"
            parts.append(text + ("*" if n < expected else ""))
    return " → ".join(parts)


# ----------------------------------------------------------------------------------- document model
@dataclass
class _Table:
    header: list[str]
    rows: list[list[str]]


class _Doc:
    """A tiny document (headings, paragraphs, lists, tables, images) rendered to markdown and HTML."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, Any]] = []

    def h(self, level: int, text: str) -> None:
        self.blocks.append((f"h{level}", text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: Sequence[str]) -> None:
        self.blocks.append(("ul", list(items)))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", _Table(header, rows)))

    def img(self, md_src: str, html_src: str, alt: str) -> None:
        self.blocks.append(("img", (md_src, html_src, alt)))

    def markdown(self) -> str:
        out = []
        for kind, v in self.blocks:
            if kind.startswith("h"):
                out.append("#" * int(kind[1]) + " " + v)
            elif kind == "p":
                out.append(v)
            elif kind == "ul":
                out.append("\n".join(f"- {i}" for i in v))
            elif kind == "table":
                esc = [[c.replace("|", "\\|") for c in row] for row in [v.header, *v.rows]]
                lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join(["---"] * len(v.header)) + "|"]
                lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
                out.append("\n".join(lines))
            elif kind == "img":
                out.append(f"![{v[2]}]({v[0]})")
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        e = html.escape
        body = []
        for kind, v in self.blocks:
            if kind.startswith("h"):
                body.append(f"<{kind}>{e(v)}</{kind}>")
            elif kind == "p":
                body.append(f"<p>{_inline_code(e(v))}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline_code(e(i))}</li>" for i in v) + "</ul>")
            elif kind == "table":
                head = "".join(f"<th>{e(c)}</th>" for c in v.header)
                rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in v.rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif kind == "img":
                body.append(f'<figure><img src="{e(v[1])}" alt="{e(v[2])}"></figure>')
        style = ("body{font-family:system-ui,sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}"
                 "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
                 "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}"
                 "td:first-child{font-weight:600}img{max-width:100%}code{background:#f3f3f3;padding:0 3px}")
        return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{e(title)}</title><style>{style}"
                f"</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _inline_code(text: str) -> str:
    parts = text.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


# ------------------------------------------------------------------------------------------ metadata
def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds / 60:.1f} min"


def _summarise_values(runs: Sequence[RunRecord], key: str) -> str:
    counts = Counter(json.dumps(r.train.get(key)) for r in runs)

    def fmt(v: str) -> str:
        x = json.loads(v)
        return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else str(x)

    return ", ".join(f"{fmt(v)} ({n} runs)" if len(counts) > 1 else fmt(v) for v, n in counts.most_common())


def _metadata(runs: Sequence[RunRecord], sweep_dir: Path) -> tuple[list[str], dict[str, Any]]:
    items, meta = [], {}
    manifest = {}
    try:
        manifest = json.loads((sweep_dir / "sweep.json").read_text())
    except (OSError, ValueError):
        pass
    planned = len(manifest.get("runs", [])) if isinstance(manifest.get("runs"), list) else None
    finished = sum(r.finished for r in runs)
    failed = sum((r.path / "sweep-error.txt").is_file() and not r.finished for r in runs)
    state = f"{len(runs)} run directories: {finished} finished, {len(runs) - finished} not finished"
    if failed:
        state += f" ({failed} with a sweep-error.txt)"
    if planned is not None:
        state += f"; {planned} runs planned in sweep.json" + (f" (recipe `{manifest['recipe']}`)"
                                                              if manifest.get("recipe") else "")
    items.append(state)
    for key in ("preset", "offline_steps", "online_steps", "eval_every", "eval_episodes"):
        items.append(f"{key}: {_summarise_values(runs, key)}")
    versions = Counter(json.dumps({k: v for k, v in r.versions.items() if k != "device"}, sort_keys=True)
                       for r in runs if r.versions)
    for v, n in versions.most_common():
        items.append("versions: " + ", ".join(f"{k} {x}" for k, x in json.loads(v).items()) + f" ({n} runs)")
    devices = Counter(str(r.versions.get("device", "?")) for r in runs if r.versions)
    if devices:
        items.append("JAX device: " + ", ".join(f"{d} ({n} runs)" for d, n in devices.most_common()))
    hosts: Counter[str] = Counter()
    for r in runs:
        try:
            task = json.loads((r.path / "sweep-task.json").read_text())
            hosts[f"{task.get('host')} ({task.get('cpu_count')} cores; per run {task.get('cpus')} CPU, "
                  f"{task.get('gpus')} GPU)"] += 1
        except (OSError, ValueError, AttributeError):
            continue
    if hosts:
        items.append("hosts: " + "; ".join(f"{h}: {n} runs" for h, n in hosts.most_common()))
    seconds = [float(r.result["seconds"]) for r in runs if r.finished and r.result.get("seconds") is not None]
    if seconds:
        items.append(f"run time: {_hours(sum(seconds))} in total over {len(seconds)} finished runs "
                     f"(per run: median {_hours(float(np.median(seconds)))}, max {_hours(max(seconds))})")
    starts = [RunDir(r.path).file(CONFIG_FILE).stat().st_mtime for r in runs]
    ends = [RunDir(r.path).file(RESULT_FILE).stat().st_mtime for r in runs if r.finished]
    if starts and ends:
        fmt = "%Y-%m-%d %H:%M"
        items.append(f"wall clock: first run started {_dt.datetime.fromtimestamp(min(starts)).strftime(fmt)}, "
                     f"last finished {_dt.datetime.fromtimestamp(max(ends)).strftime(fmt)}")
    meta.update(planned=planned, finished=finished, runs=len(runs), seconds=sum(seconds) if seconds else None)
    return items, meta


# ---------------------------------------------------------------------------------------------- main
def write_report(sweep_dir: str | Path, out_dir: str | Path | None = None, *, by: str = "agent",
                 reference: str | None = None, n_resamples: int = 5000, confidence: float = 0.95,
                 seed: int = 0) -> list[Path]:
    """Write ``report.md``, ``report.html``, ``summary.json`` and the learning-curve figure (PNG + SVG).

    Returns:
        The written paths.
    Raises:
        QchunkError: no runs, or no run has evaluated yet.
    """
    sweep_dir = Path(sweep_dir).expanduser()
    out = Path(out_dir).expanduser() if out_dir else sweep_dir / "report"
    require_writable(out, "--out", is_dir=True)  # before the bootstrap, not after it
    refuse_foreign_files([out / "report.md", out / "report.html", out / "summary.json",
                          *figure_paths(out / "learning_curves.png")], also=in_own_folder)  # only qchunk's
    runs = load_runs([sweep_dir], by)
    if not any(r.steps.size for r in runs):
        raise QchunkError(f"no run under {sweep_dir} has an evaluation yet (eval.csv); report again later")
    rng = np.random.default_rng(seed)
    labels = sorted({r.label for r in runs}, key=legend_key)
    domains = sorted({r.domain for r in runs}, key=domain_key)
    figure = plot_curves(runs, out / "learning_curves.png", reference=reference, n_resamples=n_resamples,
                         confidence=confidence, seed=seed)

    doc = _Doc()
    title = f"qchunk report: {sweep_dir.name}"
    doc.h(1, title)
    n_tasks = len({(r.domain, r.task) for r in runs})
    doc.p(f"{len(runs)} runs of {len(labels)} method(s) on {n_tasks} task(s) in {len(domains)} domain(s), from "
          f"`{sweep_dir}`. Generated {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}.")

    metric = runs[0].metric  # one for all runs (plot_curves refuses a mix)
    scale = 1.0 if metric == "return" else 100.0
    doc.h(2, {"success": "Success rate (%)", "normalized_score": "Normalised score (x100: 0 random, 100 expert)",
              "return": "Return"}[metric] + ": after the offline phase → after the online phase")
    doc.p(f"Mean over the tasks of each domain of the mean over seeds, with a {100 * confidence:.0f}% "
          f"stratified-bootstrap CI ({n_resamples} resamples, seeds resampled within each task). `–`: the method "
          "has no such phase (online-only); `*`: some runs have not reached that point yet (the value uses "
          "those that have); `…`: none has.")
    summary: dict[str, Any] = {"domains": {}, "tasks": {}}
    columns = [*domains, "all"] if len(domains) > 1 else domains
    rows = []
    for label in labels:
        row = [label]
        for d in columns:
            group = [r for r in runs if r.label == label and (d == "all" or r.domain == d)]
            if not group:
                row.append("")
                continue
            c = cell(group, rng, n_resamples, confidence)
            row.append(format_cell(c, scale=scale))
            summary["domains"].setdefault(label, {})[d] = _cell_json(c)
        rows.append(row)
    tasks_per_domain = {d: sorted({r.task for r in runs if r.domain == d}, key=natural_key) for d in domains}
    def tasks_text(n: int) -> str:
        return f"{n} task{'s' if n != 1 else ''}"

    doc.table(["method", *(f"{d} ({tasks_text(len(tasks_per_domain[d]))})" if d != "all"
                           else f"all ({tasks_text(n_tasks)})" for d in columns)], rows)

    _published(doc, labels, domains, runs)
    summary["qam"] = _published_qam(doc, labels, domains, runs, rng, n_resamples, confidence, seed)

    doc.h(2, "Learning curves")
    doc.p("Offline phase shaded grey; the x axis counts offline gradient steps, then online environment steps. "
          "Domain panels average the tasks (CI stratified by task); task panels average the seeds.")
    doc.img(figure[0].name, figure[1].name, "learning curves")

    doc.h(2, "Per task")
    measured = {"success": "success %", "normalized_score": "normalised score x100", "return": "return"}[metric]
    doc.p(f"Mean over seeds ({measured}, after offline → after online); the number of seeds in brackets.")
    for d in domains:
        doc.h(3, d)
        trows = []
        for label in labels:
            row = [label]
            for t in tasks_per_domain[d]:
                group = [r for r in runs if r.label == label and r.domain == d and r.task == t]
                if not group:
                    row.append("")
                    continue
                c = cell(group, rng, n_resamples, confidence)
                row.append(f"{format_cell(c, ci=False, scale=scale)} ({len(group)})")
                summary["tasks"].setdefault(label, {})[f"{d}/{t}"] = _cell_json(c)
            trows.append(row)
        doc.table(["method", *tasks_per_domain[d]], trows)

    doc.h(2, "Runs")
    items, meta = _metadata(runs, sweep_dir)
    items.append(f"report made on {platform.node()} ({platform.platform()}, Python {sys.version.split()[0]})")
    doc.ul(items)
    summary["meta"] = meta

    out.mkdir(parents=True, exist_ok=True)
    md, page = out / "report.md", out / "report.html"
    atomic_write_text(md, doc.markdown() + f"\n<!-- {MARK} -->\n")
    atomic_write_text(page, doc.html(title).replace("<head>", f'<head><meta name="generator" content="{MARK}">', 1))
    atomic_write_json(out / "summary.json", {**summary, "written_by": MARK})
    umask = os.umask(0)
    os.umask(umask)
    for path in (md, page, out / "summary.json"):
        path.chmod(0o666 & ~umask)  # atomic writes create private files; a report is meant to be shared
    return [md, page, out / "summary.json", *figure]


def _cell_json(c: Cell) -> dict[str, Any]:
    def iv(x: Interval | None):
        return None if x is None else {"mean": float(x.point), "ci_low": float(x.low), "ci_high": float(x.high)}

    return {"offline": iv(c.offline), "online": iv(c.online), "runs": c.runs, "offline_runs": c.offline_n,
            "online_runs": c.online_n}


def _published(doc: _Doc, labels: Sequence[str], domains: Sequence[str], runs: Sequence[RunRecord]) -> None:
    """The paper's table-1 numbers for the methods and domains of this sweep (from its released curves)."""
    paper_domains = [d for d in domains if d in _PAPER_DOMAINS]
    known = [lab for lab in labels if paper_curve(lab, paper_domains[0]) is not None] if paper_domains else []
    if not known:
        return
    tasks = {d: sorted({r.task for r in runs if r.domain == d}, key=natural_key) for d in paper_domains}
    full = all(len(tasks[d]) == 5 for d in paper_domains)
    cols = paper_domains + (["all"] if full and set(paper_domains) == set(_PAPER_DOMAINS) else [])
    rows = []
    for label in known:
        row = [label]
        for d in cols:
            curve = paper_curve(label, "all") if d == "all" else paper_aggregate(label, d, tasks[d])
            if curve is None:
                row.append("")
                continue
            off = _value_at(curve, 1.0) if curve.steps[0] < 1.0 else None
            on = _value_at(curve, 2.0)
            row.append(f"{'–' if off is None else _pct(off)} → {'…' if on is None else _pct(on)}")
        rows.append(row)
    lengths = {(r.offline_steps, r.online_steps) for r in runs}
    note = ("" if lengths <= {(1_000_000, 1_000_000), (0, 1_000_000)} else
            " This sweep's runs are shorter or longer ("
            + ", ".join(f"{a:,} + {b:,}" for a, b in sorted(lengths)) + " steps), so the numbers are not directly "
            "comparable.")
    doc.h(2, "Published (the paper, 1M offline + 1M online steps)")
    doc.p("Success % after offline → after online, from the authors' released curves: the mean over the same "
          "tasks as above (4 seeds each)." + note)
    doc.table(["method", *cols], rows)


def _published_qam(doc: _Doc, labels: Sequence[str], domains: Sequence[str], runs: Sequence[RunRecord],
                   rng: np.random.Generator, n_resamples: int, confidence: float, seed: int) -> dict[str, Any]:
    """QAM's released numbers next to ours: for every label with a counterpart in the QAM release
    (:func:`qchunk.plotting.reference.qam_method`), our row and, under it, the release's success after its
    offline phase -> after its online phase over the same tasks, CI from its 12 seeds. Returns them by label
    and domain (``summary.json["qam"]``)."""
    if getattr(runs[0], "metric", "success") != "success":  # the release holds success rates only
        return {}
    cols = [d for d in domains if qam_domain(d) is not None]
    known = [lab for lab in labels if any(qam_method(lab, d) for d in cols)]
    if not known:
        return {}
    rows, out = [], {}
    for label in known:
        ours, theirs, methods = [label], [], set()
        for d in cols:
            group = [r for r in runs if r.label == label and r.domain == d]
            method = qam_method(label, d)
            if method is None or not group:
                ours.append("")
                theirs.append("")
                continue
            tasks = sorted({r.task for r in group}, key=natural_key)
            ours.append(format_cell(cell(group, rng, n_resamples, confidence)))
            ivs = {ph: qam_value(label, d, tasks, ph, n_resamples, confidence, seed) for ph in ("offline", "online")}
            theirs.append(" → ".join("–" if iv is None else f"{_pct(float(iv.point))} [{_pct(float(iv.low))}, "
                                     f"{_pct(float(iv.high))}]" for iv in ivs.values()))
            methods.add(method)
            out.setdefault(label, {})[d] = {"method": method, "tasks": tasks, **{
                ph: None if iv is None else {"mean": float(iv.point), "ci_low": float(iv.low),
                                             "ci_high": float(iv.high)} for ph, iv in ivs.items()}}
        rows += [ours, [f"↳ QAM release: {', '.join(sorted(methods))}", *theirs]]
    doc.h(2, "QAM's released results next to ours (1M offline + 0.5M online steps, 12 seeds)")
    doc.p(f"Each method with a counterpart in the per-seed results released with QAM (Li and Levine, arXiv "
          f"2601.14234): our numbers as above, and under them the release's success % after its 1M offline steps "
          f"→ after its 0.5M online steps over the same tasks, with a {100 * confidence:.0f}% stratified-bootstrap "
          "CI computed from its seeds. Its FQL and RLPD ran on chunks of 5 on manipulation (our qc-fql, rlpd-ac) "
          "and on single actions on the mazes (our fql, rlpd). The numbers are directly comparable only for runs "
          "of the same protocol (1M offline + 0.5M online steps).")
    doc.table(["method", *cols], rows)
    return out


def _value_at(curve, at: float) -> float | None:
    hit = np.flatnonzero(np.isclose(curve.steps, at))
    return float(curve.mean[hit[0]]) if hit.size else None


def main(args: ReportArgs) -> int:
    """``qchunk report``."""
    if args.resamples < 1:
        raise QchunkError(f"--resamples must be >= 1, got {args.resamples}")
    if not (0 < args.confidence < 1) or not math.isfinite(args.confidence):
        raise QchunkError(f"--confidence must be in (0, 1), got {args.confidence}")
    if args.reference is not None:
        check_name(args.reference, ("paper", "qam", "none"), "--reference")
    paths = write_report(args.sweep_dir, args.out, by=args.by, reference=args.reference, n_resamples=args.resamples,
                         confidence=args.confidence, seed=args.seed)
    for p in paths:
        print(f"wrote {p}")
    return 0
