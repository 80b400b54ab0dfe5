"""``RunState``: what a run must remember to continue exactly (checkpointed as ``state.json``).

Counters, the sampler's numpy generator, the evaluation and train.csv rows, timing, and the exploration
statistics' window. The JAX keys of acting and evaluation are not state: they are folded from the seed
and a counter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qchunk.analysis import CoherenceTracker

COUNTERS = ("grad_steps", "offline_steps", "env_steps", "episodes", "eval_rounds", "shard")


def _pairs(rows: list[dict[str, Any]]) -> list[list[list[Any]]]:
    """CSV rows as ``[[column, value], ...]``: JSON keeps their column order (state.json sorts dict keys)."""
    return [[[k, v] for k, v in row.items()] for row in rows]


@dataclass
class RunState:
    """The mutable state of one seed's run."""

    seed: int
    rng: np.random.Generator
    """Draws every batch of the chunk sampler."""
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    evals: list[dict[str, Any]] = field(default_factory=list)
    """Rows of eval.csv so far."""
    train_rows: list[dict[str, Any]] = field(default_factory=list)
    """Rows of train.csv so far."""
    throughput: dict[str, float] = field(default_factory=dict)
    online_started: bool = False
    tracker: CoherenceTracker = field(default_factory=lambda: CoherenceTracker(every=5))
    elapsed_before: float = 0.0
    """Seconds spent by earlier processes of this run (resumes add up)."""
    started_at: float = field(default_factory=time.perf_counter)

    @classmethod
    def new(cls, seed: int) -> RunState:
        return cls(seed, np.random.default_rng(np.random.SeedSequence([seed, 0xDA7A])))

    @property
    def step(self) -> int:
        """Global step: offline gradient steps, then offline_steps + online environment steps."""
        return self.counters["offline_steps"] + self.counters["env_steps"]

    def reached(self, offline_steps: int, online_steps: int) -> bool:
        """Both phases are complete."""
        return self.counters["offline_steps"] >= offline_steps and self.counters["env_steps"] >= online_steps

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return {"counters": dict(self.counters), "rng": self.rng.bit_generator.state,
                "evals": _pairs(self.evals), "train_rows": _pairs(self.train_rows), "throughput": self.throughput,
                "online_started": self.online_started, "coherence": self.tracker.state_dict(),
                "elapsed_s": self.elapsed()}

    def load(self, d: dict[str, Any]) -> None:
        """Restore from :meth:`to_dict`'s output (the clock restarts now)."""
        self.counters.update(d["counters"])
        self.rng.bit_generator.state = d["rng"]
        self.evals = [dict(r) for r in d["evals"]]
        self.train_rows = [dict(r) for r in d["train_rows"]]
        self.throughput = dict(d["throughput"])
        self.online_started = bool(d["online_started"])
        self.tracker.load_state_dict(d["coherence"])
        self.elapsed_before = float(d["elapsed_s"])
        self.started_at = time.perf_counter()


class PhaseClock:
    """Throughput of the phase that runs in this process (offline updates or online env steps per second)."""

    def __init__(self) -> None:
        self.phase: str | None = None

    def enter(self, phase: str, counter: int) -> None:
        """Called every step with the phase's counter; starts the clock when the phase changes."""
        if phase != self.phase:
            self.phase, self._start, self._t0 = phase, counter, time.perf_counter()

    def rate(self, counter: int) -> float:
        return (counter - self._start) / max(time.perf_counter() - self._t0, 1e-9)
