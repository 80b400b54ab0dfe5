"""Signals at any moment, through the real CLI and real processes: SIGINT and SIGTERM, alone, twice, mixed,
to a single-seed and a multi-seed `train`. Each interrupted run exits 130 with one line saying whether a
checkpoint was saved at the stop or the last one is used, and its --resume ends with the eval.csv and
train.csv of an uninterrupted run (timing columns aside)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from conftest import TINY_TASK
from test_training import QCHUNK, TIMING_COLUMNS, read_rows

#: 20 offline steps (checkpoint 20), then two 100-step online episodes (checkpoints 120 and 220): an online
#: episode takes seconds, so two signals 0.2 s apart both land inside one.
FLAGS = ["--agent", "qc-fql", "--env", TINY_TASK, "--preset", "quick", "--offline-steps", "20", "--online-steps",
         "200", "--eval-every", "100", "--eval-episodes", "1", "--episode-length", "100", "--start-training", "10",
         "--log-every", "10", "--checkpoint-every", "50", "--eval-workers", "1", "--no-progress",
         "--actor-hidden-dims", "16", "16", "--critic-hidden-dims", "16", "16", "--batch-size", "16"]


def args(dataset_dir, run_dir, *extra):
    return [QCHUNK, "train", *FLAGS, "--dataset-dir", str(dataset_dir), "--run-dir", str(run_dir), *extra]


def start(cmd):
    # a session of its own, signalled as a terminal's Ctrl-C would be (the whole group); SIGINT as in a
    # shell (pytest-xdist workers ignore it, which children would inherit)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(condition, proc, timeout=300, may_end=False):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition() or (may_end and proc.poll() is not None):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("timed out")


def online_rows(run_dir) -> int:
    try:
        return sum(r["phase"] == "online" for r in read_rows(run_dir / "train.csv"))
    except (FileNotFoundError, KeyError):
        return 0


def checkpoints(run_dir) -> list[int]:
    return sorted(int(p.name[5:]) for p in (run_dir / "checkpoints").glob("step_*"))


def same_curves(a, b):
    assert read_rows(a / "eval.csv") == read_rows(b / "eval.csv")
    assert read_rows(a / "train.csv", drop=TIMING_COLUMNS) == read_rows(b / "train.csv", drop=TIMING_COLUMNS)


def send(proc, *signals, gap=0.2):
    for i, sig in enumerate(signals):
        if i:
            time.sleep(gap)
        os.killpg(proc.pid, sig)


def finish(cmd):
    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def reference(tiny_ogbench_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("signals")
    done = subprocess.run(args(tiny_ogbench_dir, root / "single"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return root


# SIGTERM then SIGINT; two of one kind, and other mixes, are in test_signals_at_many_moments_resume_identically
@pytest.mark.slow
@pytest.mark.parametrize("signals", [(signal.SIGTERM, signal.SIGINT)], ids=["TERM-INT"])
def test_two_signals_in_an_online_episode_resume_identically(tiny_ogbench_dir, reference, tmp_path, signals):
    run = tmp_path / "run"
    cmd = args(tiny_ogbench_dir, run)
    proc = start(cmd)
    wait_for(lambda: online_rows(run) >= 1, proc)  # inside the first online episode (env steps 0-99)
    send(proc, *signals)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    # the second signal cut the episode: no checkpoint there, the offline one (exact) is used, and it says so
    assert err.strip().splitlines()[-1].endswith(
        "in the middle of an online episode: no checkpoint written there (it could not resume exactly); "
        "--resume continues exactly from its checkpoint at step 20"), err
    assert "Traceback" not in err and "checkpoint saved" not in err
    assert checkpoints(run) == [20]
    finish(cmd)
    same_curves(run, reference / "single")


@pytest.mark.slow
def test_signals_at_many_moments_resume_identically(tiny_ogbench_dir, reference, tmp_path):
    """Stops during start-up, the offline phase and the online phase, by one, two or three signals; the
    run is resumed after each and finally equals the uninterrupted one."""
    run = tmp_path / "run"
    cmd = args(tiny_ogbench_dir, run)
    int_, term = signal.SIGINT, signal.SIGTERM
    plans = [(0.5, (term,)), (1.5, (int_, int_)), ("offline", (term, term, int_)), ("online", (int_,)),
             ("online", (int_, term))]
    for when, signals in plans:
        proc = start([*cmd, "--resume"] if run.exists() else cmd)
        if when == "offline":
            wait_for(lambda: (run / "train.csv").is_file(), proc, may_end=True)
        elif when == "online":
            rows = online_rows(run)
            wait_for(lambda rows=rows: online_rows(run) > rows, proc, may_end=True)
        else:
            time.sleep(when)
        if proc.poll() is None:
            send(proc, *signals, gap=0.05)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode in (0, 130), err
        assert "Traceback" not in err, err
        if proc.returncode == 130:
            assert err.strip().splitlines()[-1].startswith("interrupted"), err
    finish(cmd)
    same_curves(run, reference / "single")


@pytest.mark.slow
def test_two_signals_to_a_multi_seed_run_resume_identically(tiny_ogbench_dir, reference, tmp_path):
    ref = reference / "multi"
    ref_cmd = [*args(tiny_ogbench_dir, ref), "--seeds", "0,1"]
    done = subprocess.run(ref_cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    run = tmp_path / "multi"
    cmd = [*args(tiny_ogbench_dir, run), "--seeds", "0,1"]
    proc = start(cmd)
    wait_for(lambda: online_rows(run / "seed1") >= 1, proc)
    send(proc, signal.SIGINT, signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith(
        "mid-episode, no checkpoint written (seed 0: continues exactly from its checkpoint at step 20; seed 1: "
        "continues exactly from its checkpoint at step 20); continue with --resume"), err
    finish(cmd)
    for s in (0, 1):
        same_curves(run / f"seed{s}", ref / f"seed{s}")


@pytest.mark.slow
def test_sigterm_stops_a_sweep_as_ctrl_c_does_and_it_resumes_identically(tiny_ogbench_dir, reference, tmp_path):
    settings = ["preset=quick", "offline_steps=20", "online_steps=200", "eval_every=100", "eval_episodes=1",
                "episode_length=100", "start_training=10", "log_every=10", "checkpoint_every=50",
                "actor_hidden_dims=16,16", "critic_hidden_dims=16,16", "batch_size=16"]
    out = tmp_path / "sweep"
    cmd = [QCHUNK, "sweep", "--agents", "qc-fql", "--envs", TINY_TASK, "--seeds", "0", "--dataset-dir",
           str(tiny_ogbench_dir), "--out", str(out), "--local-cpus", "1", "--refresh", "0.5",
           *[a for s in settings for a in ("--set", s)]]
    run = out / TINY_TASK / "qc-fql" / "seed0"
    # during its start-up (imports, planning, Ray's start): held, then the sweep stops before any run
    early = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(1.0)
    early.send_signal(signal.SIGTERM)
    _, stderr = early.communicate(timeout=300)
    assert early.returncode == 130 and "Traceback" not in stderr, stderr
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for(lambda: online_rows(run) >= 1, proc)
    proc.send_signal(signal.SIGTERM)  # as a process manager stops the driver
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "interrupted: checkpoint saved" in stdout, stdout
    assert "run the same command again to resume it" in stderr and "Traceback" not in stderr
    assert checkpoints(run)[-1] > 20 and not (run / "result.json").exists()  # the episode's end
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    same_curves(run, reference / "single")
