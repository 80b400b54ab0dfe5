"""``RunResult``, what :func:`qchunk.training.train` returns, and its one-paragraph summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class RunResult:
    """What :func:`train` returns."""

    run_dir: Path
    offline_success: float | None
    """Success rate of the evaluation at the end of the offline phase."""
    final_success: float | None
    """Success rate of the last evaluation."""
    best_success: float | None
    evals: list[dict[str, Any]]
    seconds: float
    offline_updates_per_s: float | None
    online_steps_per_s: float | None
    summary: str

    def to_json(self) -> dict[str, Any]:
        """The numbers of ``result.json``."""
        return {"finished": True, "offline_success": self.offline_success, "final_success": self.final_success,
                "best_success": self.best_success, "seconds": self.seconds,
                "offline_updates_per_s": self.offline_updates_per_s, "online_steps_per_s": self.online_steps_per_s,
                "summary": self.summary}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def summarize(cfg, task, pretrains_offline: bool, offline_ratio: float | None, run_dir: Path,
              evals: list[dict[str, Any]], throughput: dict[str, float], seconds: float) -> RunResult:
    """The :class:`RunResult` of a run with evaluation rows ``evals``; ``cfg`` is its resolved TrainConfig."""
    offline = [e for e in evals if e["phase"] == "offline"]
    off_s = offline[-1]["success"] if offline else None
    final = evals[-1]["success"] if evals else None
    best = max((e["success"] for e in evals), default=None)
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
    first = f"{_pct(off_s)} after the offline phase" if pretrains_offline else \
        f"{_pct(evals[0]['success'] if evals else None)} at the start"
    text = (", ".join(parts) + f". Success rate over {cfg.eval_episodes} episodes: {first}, {_pct(final)} at "
            f"the end (best {_pct(best)}). Results are in {run_dir} (eval.csv, train.csv, tb/, checkpoints/).")
    return RunResult(run_dir, off_s, final, best, evals, seconds, throughput.get("offline_updates_per_s"),
                     throughput.get("online_steps_per_s"), text)
