"""Offline-to-online training on a real OGBench task: outputs, kill-and-resume equivalence, clean stops."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_TASK
from qchunk.analysis import load_online_states
from qchunk.errors import QchunkError
from qchunk.training import NonFiniteLoss, TrainConfig, train
from qchunk.training.checkpoint import latest_checkpoint
from qchunk.training.config import AgentOverrides

QCHUNK = str(Path(sys.executable).parent / "qchunk")
TINY_NETS = dict(actor_hidden_dims=(32, 32), critic_hidden_dims=(32, 32))
TIMING_COLUMNS = {"eval_seconds", "steps_per_s", "sample_frac"}


def tiny_config(dataset_dir, **changes):
    base = dict(agent="qc-fql", env=TINY_TASK, preset="quick", dataset_dir=str(dataset_dir), offline_steps=60,
                online_steps=150, eval_every=50, eval_episodes=2, episode_length=30, start_training=20,
                log_every=25, checkpoint_every=25, eval_workers=1, progress=False, batch_size=32,
                overrides=AgentOverrides(**TINY_NETS))
    base.update(changes)
    return TrainConfig(**base)


def cli_args(dataset_dir, run_dir, online_steps=150, extra=()):
    return [QCHUNK, "train", "--agent", "qc-fql", "--env", TINY_TASK, "--preset", "quick", "--dataset-dir",
            str(dataset_dir), "--offline-steps", "60", "--online-steps", str(online_steps), "--eval-every", "50",
            "--eval-episodes", "2", "--episode-length", "30", "--start-training", "20", "--log-every", "25",
            "--checkpoint-every", "25", "--eval-workers", "1", "--no-progress", "--actor-hidden-dims", "32", "32",
            "--critic-hidden-dims", "32", "32", "--batch-size", "32", "--run-dir", str(run_dir), *extra]


def read_rows(path, drop=TIMING_COLUMNS):
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_end_to_end_run_writes_every_output(tiny_ogbench_dir, tmp_path):
    result = train(tiny_config(tiny_ogbench_dir, save_online_states=True), tmp_path / "run")
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["agent"] == "qc-fql" and config["train"]["sparse"] is True  # puzzle: sparse
    assert config["agent"]["horizon"] == 5 and "jax" in config["versions"]
    evals = read_rows(run / "eval.csv")
    assert [(r["step"], r["phase"]) for r in evals] == [
        ("50", "offline"), ("60", "offline"), ("110", "online"), ("160", "online"), ("210", "online")]
    for r in evals:
        assert 0.0 <= float(r["success"]) <= 1.0 and float(r["episode_length"]) <= 30
        assert float(r["return"]) >= -30  # sparse: -1 per unsolved step
    train_rows = read_rows(run / "train.csv", drop=())
    assert [int(r["step"]) for r in train_rows] == [25, 50, 60, 85, 110, 135, 160, 185, 210]  # 60: offline's last
    assert {"critic/loss", "critic/q_mean", "steps_per_s", "grad_steps", "env_steps"} <= set(train_rows[0])
    assert int(train_rows[-1]["grad_steps"]) == 60 + (150 - 20 + 1)  # online updates start at step 20
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    # online checkpoints land at episode ends (every 30 env steps here)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000000180", "step_0000000210"]
    assert result.final_success == float(evals[-1]["success"])
    assert "Success rate over 2 episodes" in result.summary
    # exploration statistics: temporal coherence of the end effector (every 5 steps) in online rows
    online_rows = [r for r in train_rows if r["phase"] == "online"]
    assert all(0.0 < float(r["explore/ee_step_l2"]) < 1.0 and float(r["explore/ee_pairs"]) > 0 for r in online_rows)
    assert all(0.0 <= float(r["explore/gripper_contact_frac"]) <= 1.0 for r in online_rows)
    states = load_online_states(run / "online_states.npz")
    assert list(states["env_step"]) == list(range(150)) and states["ee_pos"].shape == (150, 3)
    assert list(np.unique(states["episode"])) == [0, 1, 2, 3, 4]  # 30-step episodes
    finished = json.loads((run / "result.json").read_text())
    assert finished["finished"] is True and finished["final_success"] == result.final_success


@pytest.mark.slow
def test_extra_data_appends_another_runs_collected_transitions(tiny_ogbench_dir, tmp_path):
    collector = tmp_path / "collector"
    train(tiny_config(tiny_ogbench_dir, offline_steps=20, online_steps=45, eval_every=1000), collector)
    result = train(tiny_config(tiny_ogbench_dir, offline_steps=30, online_steps=0, eval_every=1000,
                               extra_data=str(collector)), tmp_path / "learner")
    state = json.loads((latest_checkpoint(tmp_path / "learner" / "checkpoints").path / "state.json").read_text())
    assert state["dataset"]["size"] == 3 * 200 + 45  # offline transitions + the 45 collected online
    assert result.final_success is not None
    with pytest.raises(QchunkError, match="not a qchunk run directory"):
        train(tiny_config(tiny_ogbench_dir, extra_data=str(tmp_path)), tmp_path / "other")
    with pytest.raises(QchunkError, match="used sparse=True, this run sparse=False"):
        train(tiny_config(tiny_ogbench_dir, extra_data=str(collector), sparse=False), tmp_path / "other")


def _wait_for(condition, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    raise AssertionError("timed out")


def _newest_checkpoint(run_dir):
    steps = [int(p.name[5:]) for p in (run_dir / "checkpoints").glob("step_*")] if run_dir.exists() else []
    return max(steps, default=0)


def _last_train_step(run_dir):
    try:
        return max((int(r["step"]) for r in read_rows(run_dir / "train.csv")), default=0)
    except (FileNotFoundError, KeyError, ValueError):
        return 0


def _wait_for_checkpoint(run_dir, at_least, proc):
    return _wait_for(lambda: _newest_checkpoint(run_dir) >= at_least and _newest_checkpoint(run_dir), proc)


@pytest.mark.slow
def test_killed_and_resumed_run_matches_uninterrupted_run(tiny_ogbench_dir, tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    # a 650-transition buffer holds the 600 offline ones and wraps 50 steps into the online phase
    extra = ("--buffer-size", "650")
    subprocess.run(cli_args(tiny_ogbench_dir, ref, extra=extra), check=True, capture_output=True, timeout=600)
    # kill once during the offline phase and once during the online phase (after rows were written past
    # the newest checkpoint, so they must be dropped and written again), resuming each time
    for at_least in (25, 150):
        resume = ["--resume"] if killed.exists() else []
        proc = subprocess.Popen([*cli_args(tiny_ogbench_dir, killed, extra=extra), *resume],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ckpt = _wait_for_checkpoint(killed, at_least, proc)
        _wait_for(lambda ckpt=ckpt: _last_train_step(killed) > ckpt, proc)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
    subprocess.run([*cli_args(tiny_ogbench_dir, killed, extra=extra), "--resume"], check=True,
                   capture_output=True, timeout=600)
    assert read_rows(killed / "eval.csv") == read_rows(ref / "eval.csv")
    assert read_rows(killed / "train.csv") == read_rows(ref / "train.csv")


@pytest.mark.slow
def test_sigint_saves_a_checkpoint_and_exits_cleanly(tiny_ogbench_dir, tmp_path):
    run = tmp_path / "run"
    # Ctrl-C in a terminal reaches the whole process group, evaluation worker processes included
    args = cli_args(tiny_ogbench_dir, run, extra=("--eval-workers", "2"))
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_checkpoint(run, 25, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "checkpoint saved, continue with --resume" in err and "Traceback" not in err
    stopped_at = _newest_checkpoint(run)
    assert stopped_at >= 25 and not (run / "result.json").exists()
    done = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert read_rows(run / "eval.csv")[-1]["step"] == "210" and "Success rate" in done.stdout


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_ogbench_dir, tmp_path, monkeypatch):
    import jax.numpy as jnp

    from qchunk.agents.flow_agent import FlowAgent

    real_update = FlowAgent.update

    def update(self, batch):  # the critic loss turns NaN from the 41st update on (traced: vmapped and jitted)
        agent, info = real_update(self, batch)
        return agent, {**info, "critic/loss": jnp.where(self.step >= 40, jnp.nan, info["critic/loss"])}

    monkeypatch.setattr(FlowAgent, "update", update)
    with pytest.raises(NonFiniteLoss, match=r"non-finite critic/loss at step 50.*checkpoint \(step 25\) is kept"):
        train(tiny_config(tiny_ogbench_dir, eval_every=1000), tmp_path / "run")
    assert [p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*")] == ["step_0000000025"]


@pytest.mark.slow
def test_a_run_shorter_than_log_every_still_logs_each_phase_once(tiny_ogbench_dir, tmp_path):
    train(tiny_config(tiny_ogbench_dir, offline_steps=7, online_steps=3, start_training=1, log_every=1000,
                      eval_every=1000, checkpoint_every=1000, tensorboard=False), tmp_path / "run")
    rows = read_rows(tmp_path / "run" / "train.csv", drop=())
    assert [(r["step"], r["phase"], r["grad_steps"]) for r in rows] == [("7", "offline", "7"), ("10", "online", "10")]


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(agent="ppo"), "unknown agent"),
        (dict(env="antsoccer-arena-navigate-singletask-v0"), "unknown OGBench task"),
        (dict(offline_steps=-1), "--offline-steps must be >= 0"),
        (dict(seed=-1), "--seed must be >= 0"),
        (dict(eval_every=0), "--eval-every must be >= 1"),
        (dict(overrides=AgentOverrides(horizon=0)), "horizon must be >= 1"),
        (dict(offline_steps=0, online_steps=0), "nothing to do"),
    ],
)
def test_bad_configs_fail_at_once(tiny_ogbench_dir, tmp_path, changes, match):
    with pytest.raises(QchunkError, match=match):
        train(tiny_config(tiny_ogbench_dir, **changes), tmp_path / "run")


@pytest.mark.slow
def test_run_dir_guards(tiny_ogbench_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(QchunkError, match="not writable"):
        train(tiny_config(tiny_ogbench_dir), blocker / "run")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"train": tiny_config(tiny_ogbench_dir).resolved().to_dict()}))
    with pytest.raises(QchunkError, match="already holds a run; pass --resume"):
        train(tiny_config(tiny_ogbench_dir), run)
    with pytest.raises(QchunkError, match=r"holds a run with other settings \(seed: 0 there, 1 now\)"):
        train(tiny_config(tiny_ogbench_dir, seed=1, resume=True), run)


def test_cli_bad_config_is_one_line(tiny_ogbench_dir, tmp_path):
    p = subprocess.run([QCHUNK, "train", "--env", TINY_TASK, "--dataset-dir", str(tiny_ogbench_dir), "--eval-every",
                        "0", "--run-dir", str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip() == "error: --eval-every must be >= 1, got 0"
    assert not (tmp_path / "r").exists()


def test_missing_dataset_names_generation_command(tmp_path):
    with pytest.raises(QchunkError, match="qchunk data ogbench puzzle-3x3-play-v0"):
        train(tiny_config(tmp_path), tmp_path / "run")
    assert os.listdir(tmp_path) == []
