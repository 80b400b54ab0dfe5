"""The committed learning evidence (docs/evidence): every run record there is a finished run of its recipe's
grid that the sweep would accept as its own today (same resolved run settings, same agent config), all on one
dataset directory, so a figure drawn from it never mixes runs of different settings. Records made by an older
update (docs/evidence/superseded) are kept whole and finished, but are no longer runs of today's code."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from qchunk.agents import agent_config
from qchunk.experiments.sweep import SweepArgs, plan_sweep, settings_conflicts
from qchunk.plotting.runs import find_run_dirs, read_run
from qchunk.tasks import get_task
from qchunk.training.run_dir import CONFIG_FILE, EVAL_CSV, RESULT_FILE, TRAIN_CSV

EVIDENCE = Path(__file__).resolve().parents[1] / "docs" / "evidence"
SUPERSEDED = EVIDENCE / "superseded"
RECIPE_DIRS = sorted(p for p in EVIDENCE.iterdir() if p.is_dir() and p != SUPERSEDED) if EVIDENCE.is_dir() else []
KEPT_FILES = {CONFIG_FILE, EVAL_CSV, TRAIN_CSV, RESULT_FILE}


def test_there_is_committed_evidence():
    assert [p.name for p in RECIPE_DIRS] == [] and [p.name for p in SUPERSEDED.iterdir()] == ["successors-cpu"]


def test_superseded_records_are_whole_finished_runs():
    runs = [read_run(p) for p in find_run_dirs([SUPERSEDED])]
    assert len(runs) == 6
    for run in runs:
        assert {f.name for f in run.path.iterdir()} == KEPT_FILES and run.result is not None, run.path


@pytest.mark.parametrize("recipe_dir", RECIPE_DIRS, ids=lambda p: p.name)
def test_every_run_record_is_a_finished_run_the_recipes_sweep_would_accept(recipe_dir: Path):
    runs = [read_run(p) for p in find_run_dirs([recipe_dir])]
    dataset_dirs = {r.train["dataset_dir"] for r in runs}
    assert len(dataset_dirs) == 1, f"runs on different datasets: {dataset_dirs}"
    plan = plan_sweep(SweepArgs(recipe=recipe_dir.name, out=str(recipe_dir), dataset_dir=dataset_dirs.pop()))
    planned = {recipe_dir / spec.rel_dir: spec for spec in plan.runs}
    assert {r.path for r in runs} <= set(planned), "a run outside the recipe's grid"
    assert settings_conflicts(plan) == {}  # the resolved TrainConfig of each record is the recipe's
    for run in runs:
        rel = run.path.relative_to(recipe_dir)
        assert {f.name for f in run.path.iterdir()} == KEPT_FILES, rel  # no checkpoints, no tb
        train = run.train
        expected_agent = agent_config(train["agent"], train["preset"], get_task(train["env"]).domain.name)
        assert run.agent_config == json.loads(json.dumps(dataclasses.asdict(expected_agent))), rel
        assert run.result is not None, f"{rel} has not finished (no result.json)"
        offline, online, every = train["offline_steps"], train["online_steps"], train["eval_every"]
        expected = [*range(every, offline + 1, every), *range(offline + every, offline + online + 1, every)]
        assert run.steps.tolist() == expected, rel
        assert run.online.tolist() == [s > offline for s in expected], rel
        # a success rate over eval_episodes episodes is a multiple of 1 / eval_episodes, in [0, 1]
        hits = run.success * train["eval_episodes"]
        np.testing.assert_allclose(hits, np.round(hits), atol=1e-9)
        assert np.all((run.success >= 0) & (run.success <= 1)), rel
