"""The sweep's live status table: each run's state and progress, read from its run directory."""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qchunk.experiments.grid import RunSpec
from qchunk.training.run_dir import EVAL_CSV, TRAIN_CSV, RunDir


def run_state(run_dir: Path) -> str:
    """``finished`` (result.json says so), ``interrupted`` (config.json but not finished) or ``new``."""
    run = RunDir(run_dir)
    if run.is_finished():
        return "finished"
    return "interrupted" if run.holds_run() else "new"


def _last_csv_row(path: Path) -> dict[str, str] | None:
    """The header and last line of a CSV file (reads only its ends)."""
    try:
        with open(path, "rb") as f:
            header = f.readline().decode()
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 8192))
            tail = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return None
    if not header or not tail or tail[-1].strip() == header.strip():
        return None
    rows = list(csv.DictReader(io.StringIO(header + tail[-1] + "\n")))
    return rows[0] if rows else None


@dataclass
class RunStatus:
    """What the live table shows for one run."""

    spec: RunSpec
    run_dir: Path
    total_steps: int
    state: str = "queued"
    """queued, running, finished, skipped (finished before), interrupted, cancelled or failed."""
    message: str = ""
    step: int = 0
    phase: str = ""
    success: float | None = None
    offline_success: float | None = None
    measure: str = ""
    """The last evaluation of a task without a success signal: ``score 0.53`` (normalised) or ``return -178.5``."""
    submitted: float = 0.0
    """When its task was submitted (time.time())."""

    def refresh(self) -> None:
        """Read the run's progress from its eval.csv / train.csv."""
        ev = _last_csv_row(RunDir(self.run_dir).file(EVAL_CSV))
        if ev is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.success, self.measure = _measured(ev)
                self.phase = ev["phase"]
                self.step = max(self.step, int(ev["step"]))
        tr = _last_csv_row(RunDir(self.run_dir).file(TRAIN_CSV))
        if tr is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.step = max(self.step, int(tr["step"]))
                self.phase = self.phase if ev is not None and int(ev["step"]) >= int(tr["step"]) else tr["phase"]


def _measured(row: dict[str, str]) -> tuple[float | None, str]:
    """(success rate, "") of an eval.csv row, or (None, "score 0.53" / "return -178.5") for a task without a
    success signal (success NaN)."""
    success = float(row["success"])
    if math.isfinite(success):
        return success, ""
    with contextlib.suppress(KeyError, ValueError):
        score = float(row["normalized_score"])
        if math.isfinite(score):
            return None, f"score {score:.2f}"
    return None, f"return {float(row['return']):.1f}"


def result_text(status: RunStatus) -> str:
    """A finished run in words: ``success 40% after offline, 80% at the end``, or what was measured instead."""
    if status.success is None and status.offline_success is None:
        return f"{status.measure or '-'} at the end"
    off = "-" if status.offline_success is None else f"{100 * status.offline_success:.0f}%"
    fin = "-" if status.success is None else f"{100 * status.success:.0f}%"
    return f"success {off} after offline, {fin} at the end"


def _short_env(env: str) -> str:
    """``cube-double-play-singletask-task2-v0`` -> ``cube-double t2``."""
    head, _, rest = env.partition("-play-singletask-")
    return f"{head} t{rest.removeprefix('task').removesuffix('-v0')}" if rest.startswith("task") else env


def _steps(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    if n >= 10_000:
        return f"{n / 1e3:.0f}K"
    return str(n)


def format_table(statuses: Sequence[RunStatus], max_rows: int | None = None) -> str:
    """The status table: one row per run (``max_rows``: keep running/failed rows first, then summarise)."""
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.state] = counts.get(s.state, 0) + 1
    order = ("running", "queued", "finished", "skipped", "interrupted", "cancelled", "failed")
    head = " | ".join(f"{counts[k]} {k}" for k in order if k in counts)
    rows = list(statuses)
    hidden = 0
    if max_rows is not None and len(rows) > max_rows:
        priority = {"running": 0, "failed": 1, "interrupted": 2, "finished": 3, "queued": 4, "cancelled": 5,
                    "skipped": 6}
        keep = sorted(rows, key=lambda s: priority.get(s.state, 9))[:max_rows]
        hidden = len(rows) - len(keep)
        rows = [s for s in rows if s in keep]
    # "success" only over success rates: a task without a success signal shows its score or return
    table = [("run", "state", "progress", "phase", "result" if any(s.measure for s in rows) else "success")]
    for s in rows:
        pct = (s.measure or "-") if s.success is None else f"{100 * s.success:.0f}%"
        if s.offline_success is not None and s.state in ("finished", "skipped"):
            pct = f"{100 * s.offline_success:.0f}% -> {pct}"
        prog = f"{_steps(s.step)}/{_steps(s.total_steps)}" if s.step else f"-/{_steps(s.total_steps)}"
        state = s.state + (f": {s.message}" if s.message and s.state in ("failed", "interrupted") else "")
        table.append((f"{_short_env(s.spec.env)} {s.spec.label} seed{s.spec.seed}", state, prog, s.phase or "-", pct))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    lines = [head]
    for r in table:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    if hidden:
        lines.append(f"... and {hidden} more runs")
    return "\n".join(lines)


class StatusDisplay:
    """Redraws the table in place on a terminal; elsewhere prints one line per state change."""

    def __init__(self, statuses: list[RunStatus], stream=None):
        self.statuses = statuses
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self._drawn = 0
        self._last_summary = time.monotonic()

    def event(self, status: RunStatus, text: str) -> None:
        if not self.tty:
            stamp = _dt.datetime.now().strftime("%H:%M:%S")
            print(f"[{stamp}] {_short_env(status.spec.env)} {status.spec.label} seed{status.spec.seed}: {text}",
                  file=self.stream, flush=True)

    def update(self, force: bool = False) -> None:
        if self.tty:
            height = shutil.get_terminal_size((120, 40)).lines
            text = format_table(self.statuses, max_rows=max(5, height - 4))
            clear = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
            self.stream.write(clear + text + "\n")
            self.stream.flush()
            self._drawn = text.count("\n") + 1
        elif force or time.monotonic() - self._last_summary > 60:
            self._last_summary = time.monotonic()
            print(format_table(self.statuses, max_rows=0).splitlines()[0], file=self.stream, flush=True)

    def final(self) -> None:
        if self.tty:
            self.update()
        else:
            print(format_table(self.statuses, max_rows=60), file=self.stream, flush=True)

