"""Multi-seed training in one process: seed k of a vmapped run equals a single run of seed k."""

from __future__ import annotations

import csv
import os
import signal
import subprocess

import numpy as np
import pytest
from flax import serialization

from qchunk.agents import make_agent
from qchunk.errors import QchunkError
from qchunk.training import parse_seeds, train
from qchunk.training.checkpoint import latest_checkpoint
from test_training import TIMING_COLUMNS, _wait_for_checkpoint, cli_args, read_rows, tiny_config


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("0,2,5") == [0, 2, 5]
    assert parse_seeds("1-2,7") == [1, 2, 7]
    for bad in ("a-b", "3-1", "0,0", "-1", ""):
        with pytest.raises(QchunkError):
            parse_seeds(bad)


def _numeric_rows(path):
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if k not in TIMING_COLUMNS and k != "phase" and v != ""}
                for row in csv.DictReader(f)]


@pytest.mark.slow
def test_vmapped_seeds_match_single_runs_and_write_the_same_files(tiny_ogbench_dir, tmp_path):
    multi = tmp_path / "multi"
    done = subprocess.run([*cli_args(tiny_ogbench_dir, multi), "--seeds", "0-1"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "seed 0: Trained qc-fql" in done.stdout and "seed 1: Trained qc-fql" in done.stdout
    single = tmp_path / "single"
    train(tiny_config(tiny_ogbench_dir, seed=1), single)

    seed1 = multi / "seed1"
    assert sorted(os.listdir(seed1)) == sorted(os.listdir(single))
    assert sorted(os.listdir(seed1 / "checkpoints")) == sorted(os.listdir(single / "checkpoints"))
    assert read_rows(seed1 / "eval.csv") == read_rows(single / "eval.csv")
    got, want = _numeric_rows(seed1 / "train.csv"), _numeric_rows(single / "train.csv")
    assert [r.keys() for r in got] == [r.keys() for r in want]
    for a, b in zip(got, want, strict=True):
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), key
    # the final agents agree to float tolerance (vmapped kernels may sum in another order)
    agents = []
    for run in (seed1, single):
        ckpt = latest_checkpoint(run / "checkpoints")
        template = make_agent("qc-fql", _obs_dim(tiny_ogbench_dir), 5, preset="quick", domain="puzzle-3x3",
                              **tiny_config(tiny_ogbench_dir).agent_overrides())
        agents.append(serialization.from_bytes(template, ckpt.agent_bytes()))
    for a, b in zip(*(jax_leaves(x.params) for x in agents), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    # seed 0 is a different run
    assert read_rows(multi / "seed0" / "train.csv", drop=TIMING_COLUMNS) != read_rows(seed1 / "train.csv")
    assert (multi / "seed0" / "result.json").is_file() and (seed1 / "result.json").is_file()


def _obs_dim(dataset_dir):
    with np.load(dataset_dir / "puzzle-3x3-play-v0.npz") as z:
        return int(z["observations"].shape[1])


def jax_leaves(tree):
    import jax

    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


@pytest.mark.slow
def test_multi_seed_run_stops_on_sigint_and_resumes(tiny_ogbench_dir, tmp_path):
    run = tmp_path / "multi"
    args = [*cli_args(tiny_ogbench_dir, run), "--seeds", "0,3"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_checkpoint(run / "seed3", 25, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "every seed saved a checkpoint" in err and "Traceback" not in err
    steps = {latest_checkpoint(run / f"seed{s}" / "checkpoints").step for s in (0, 3)}
    assert len(steps) == 1 and steps.pop() >= 25  # both seeds checkpointed at the same step
    done = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    for s in (0, 3):
        assert read_rows(run / f"seed{s}" / "eval.csv")[-1]["step"] == "210"


def test_multi_seed_refuses_bad_seeds(tiny_ogbench_dir, tmp_path):
    p = subprocess.run([*cli_args(tiny_ogbench_dir, tmp_path / "r"), "--seeds", "2-1"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip() == "error: --seeds: bad seed range '2-1', the end is below the start"
    assert not (tmp_path / "r").exists()
