"""``RunResult``, what :func:`qchunk.training.train` returns, and its one-paragraph summary."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class RunResult:
    """What :func:`train` returns."""

    run_dir: Path
    offline_success: float | None
    """Success rate of the evaluation at the end of the offline phase (None for a task without a success
    signal; the summary then reports the normalised score or the return)."""
    final_success: float | None
    """Success rate of the last evaluation."""
    best_success: float | None
    evals: list[dict[str, Any]]
    seconds: float
    offline_updates_per_s: float | None
    online_steps_per_s: float | None
    summary: str

    @classmethod
    def from_json(cls, run_dir: Path, data: dict[str, Any], evals: list[dict[str, Any]]) -> RunResult:
        """The result a finished run wrote to ``result.json`` (``data``), with its evaluation rows ``evals``."""
        return cls(run_dir, data.get("offline_success"), data.get("final_success"), data.get("best_success"), evals,
                   float(data.get("seconds") or 0.0), data.get("offline_updates_per_s"),
                   data.get("online_steps_per_s"), str(data.get("summary", "")))

    def to_json(self) -> dict[str, Any]:
        """The numbers of ``result.json``."""
        return {"finished": True, "offline_success": self.offline_success, "final_success": self.final_success,
                "best_success": self.best_success, "seconds": self.seconds,
                "offline_updates_per_s": self.offline_updates_per_s, "online_steps_per_s": self.online_steps_per_s,
                "summary": self.summary}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _measure(evals: list[dict[str, Any]]) -> tuple[str, str, Any]:
    """(eval.csv column, its name in the summary, formatter) that summarises a run: the success rate, or for
    a task without a success signal (success NaN) the normalised score where present, else the return."""
    if not evals or any(math.isfinite(float(e["success"])) for e in evals):
        return "success", "Success rate", _pct
    if "normalized_score" in evals[0]:
        return "normalized_score", "Normalised score (0 random, 1 expert)", lambda x: "n/a" if x is None else f"{x:.2f}"
    return "return", "Return", lambda x: "n/a" if x is None else f"{x:.1f}"


def summarize(cfg, task, pretrains_offline: bool, offline_ratio: float | None, run_dir: Path,
              evals: list[dict[str, Any]], throughput: dict[str, float], seconds: float) -> RunResult:
    """The :class:`RunResult` of a run with evaluation rows ``evals``; ``cfg`` is its resolved TrainConfig."""
    offline = [e for e in evals if e["phase"] == "offline"]
    key, measure, fmt = _measure(evals)
    off_s = float(offline[-1][key]) if offline else None
    final = float(evals[-1][key]) if evals else None
    best = max((float(e[key]) for e in evals), default=None)
    kind = "-1/0 success" if task.benchmark == "robomimic" else ("sparse" if cfg.sparse else "dense")
    if pretrains_offline:
        plan = f"{cfg.offline_steps:,} offline gradient steps then {cfg.online_steps:,} online environment steps"
    else:
        plan = (f"{cfg.online_steps:,} online environment steps from scratch, "
                f"{100 * offline_ratio:.0f}% of every batch from the offline data")
    parts = [f"Trained {cfg.agent} on {cfg.env} ({kind} reward, {cfg.preset} preset): {plan} in "
             f"{seconds / 60:.1f} min"]
    if "offline_updates_per_s" in throughput:
        parts.append(f"offline {throughput['offline_updates_per_s']:.0f} updates/s")
    if "online_steps_per_s" in throughput:
        parts.append(f"online {throughput['online_steps_per_s']:.0f} env steps/s")
    first = f"{fmt(off_s)} after the offline phase" if pretrains_offline else \
        f"{fmt(float(evals[0][key]) if evals else None)} at the start"
    text = (", ".join(parts) + f". {measure} over {cfg.eval_episodes} episodes: {first}, {fmt(final)} at "
            f"the end (best {fmt(best)}). Results are in {run_dir} (eval.csv, train.csv, tb/, checkpoints/).")
    if key != "success":  # result.json's success fields stay success rates: the task has none
        off_s = final = best = None
    return RunResult(run_dir, off_s, final, best, evals, seconds, throughput.get("offline_updates_per_s"),
                     throughput.get("online_steps_per_s"), text)
