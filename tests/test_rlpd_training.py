"""The RLPD family through `qchunk train`: online from scratch with symmetric sampling, eval, resume."""

from __future__ import annotations

import json
import math
import signal
import subprocess

import pytest

from conftest import TINY_TASK
from qchunk.data import ReplayBuffer
from qchunk.errors import QchunkError
from qchunk.training import TrainConfig, train
from qchunk.training.checkpoint import latest_checkpoint
from test_training import QCHUNK, _last_train_step, _wait_for, _wait_for_checkpoint, read_rows


def rlpd_args(dataset_dir, run_dir, agent="qc-rlpd", extra=()):
    return [QCHUNK, "train", "--agent", agent, "--env", TINY_TASK, "--preset", "quick", "--dataset-dir",
            str(dataset_dir), "--online-steps", "150", "--eval-every", "50", "--eval-episodes", "2",
            "--episode-length", "30", "--start-training", "20", "--log-every", "25", "--checkpoint-every", "25",
            "--eval-workers", "1", "--no-progress", "--actor-hidden-dims", "32", "32", "--critic-hidden-dims", "32",
            "32", "--num-critics", "3", "--batch-size", "32", "--run-dir", str(run_dir), *extra]


@pytest.mark.slow
def test_qc_rlpd_trains_online_from_scratch_and_resumes_after_a_kill(tiny_ogbench_dir, tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    done = subprocess.run(rlpd_args(tiny_ogbench_dir, ref), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "150 online environment steps from scratch, 50% of every batch from the offline data" in done.stdout
    config = json.loads((ref / "config.json").read_text())
    assert config["train"]["offline_steps"] == 0 and config["agent"]["bc_coef"] == 0.01
    assert config["agent"]["horizon"] == 5 and config["agent"]["num_critics"] == 3

    evals = read_rows(ref / "eval.csv")
    # the initial policy is evaluated first (the learning curve starts at 0 online steps)
    assert [(r["step"], r["phase"], r["offline_steps"]) for r in evals] == [
        ("0", "online", "0"), ("50", "online", "0"), ("100", "online", "0"), ("150", "online", "0")]
    rows = read_rows(ref / "train.csv", drop=())
    assert [int(r["step"]) for r in rows] == [25, 50, 75, 100, 125, 150]
    assert int(rows[-1]["grad_steps"]) == 150 - 20 + 1
    for r in rows[1:]:
        for key in ("critic/loss", "actor/loss", "actor/bc_log_likelihood", "temperature/value", "actor/entropy"):
            assert math.isfinite(float(r[key])), (key, r)
    # the online buffer holds online transitions only: the offline set is sampled, never appended
    buffer = ReplayBuffer.from_state_dict(latest_checkpoint(ref / "checkpoints").buffer())  # full after 150 steps
    assert buffer.size == buffer.capacity == 150

    # killed in the online phase after rows were written past its newest checkpoint, then resumed
    proc = subprocess.Popen(rlpd_args(tiny_ogbench_dir, killed), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    ckpt = _wait_for_checkpoint(killed, 60, proc)
    _wait_for(lambda: _last_train_step(killed) > ckpt, proc)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    resumed = subprocess.run([*rlpd_args(tiny_ogbench_dir, killed), "--resume"], capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert read_rows(killed / "eval.csv") == read_rows(ref / "eval.csv")
    assert read_rows(killed / "train.csv") == read_rows(ref / "train.csv")


@pytest.mark.slow
def test_rlpd_refuses_offline_steps(tiny_ogbench_dir, tmp_path):
    cfg = TrainConfig(agent="rlpd", env=TINY_TASK, preset="quick", dataset_dir=str(tiny_ogbench_dir), offline_steps=10,
                      online_steps=50, progress=False, batch_size=8)
    with pytest.raises(QchunkError, match=r"rlpd trains online from scratch.*--offline-steps 0"):
        train(cfg, tmp_path / "run")
    p = subprocess.run([*rlpd_args(tiny_ogbench_dir, tmp_path / "r", agent="rlpd"), "--num-samples", "4"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "num_samples for agent rlpd" in p.stderr
