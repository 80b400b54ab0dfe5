"""One writer per directory, tested with real processes: a second ``train``, ``sweep`` or ``eval`` on a
directory that another process holds gets one line naming the holder's PID and exit 2; a holder killed
with SIGKILL blocks nothing; a checkpoint save leaves another writer's save in progress alone."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TINY_TASK
from qchunk.cli import main

QCHUNK = str(Path(sys.executable).parent / "qchunk")
LOCK = ".qchunk.lock"
TRAIN = ["train", "--agent", "qc-fql", "--env", TINY_TASK, "--preset", "quick", "--offline-steps", "10",
         "--online-steps", "0", "--eval-every", "10", "--eval-episodes", "1", "--episode-length", "5",
         "--eval-workers", "1", "--no-progress"]

_HOLDER = """
import sys, time
from qchunk.dir_lock import hold
with hold(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


class _Holder:
    """A real process holding ``directory``'s lock until stopped."""

    def __init__(self, directory):
        self.proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(directory)], stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout.readline().strip() == "held"

    def __enter__(self):
        return self.proc

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _one_error_line(capsys):
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_a_second_train_on_a_held_run_dir_is_refused_naming_the_holder(tiny_ogbench_dir, tmp_path, capsys):
    run = tmp_path / "run"
    with _Holder(run) as holder:
        for extra in ([], ["--resume"]):
            start = time.monotonic()
            assert main([*TRAIN, "--dataset-dir", str(tiny_ogbench_dir), "--run-dir", str(run), *extra]) == 2
            line = _one_error_line(capsys)
            assert line == (f"error: run dir {run} is in use by another qchunk process (pid {holder.pid}); wait for it "
                            "to finish or stop it")
            assert time.monotonic() - start < 10  # before the data is read
        assert sorted(p.name for p in run.iterdir()) == [LOCK]


def test_every_seed_dir_of_a_multi_seed_run_is_locked(tiny_ogbench_dir, tmp_path, capsys):
    base = tmp_path / "multi"
    with _Holder(base / "seed1") as holder:
        assert main([*TRAIN, "--dataset-dir", str(tiny_ogbench_dir), "--run-dir", str(base), "--seeds", "0-1"]) == 2
        assert f"run dir {base / 'seed1'} is in use by another qchunk process (pid {holder.pid})" in \
            _one_error_line(capsys)
    assert not (base / "seed0").exists()  # the seed locked first was released and its empty directory removed


def test_a_lock_left_by_kill_9_blocks_nothing(tmp_path):
    from qchunk.dir_lock import hold, holder_pid

    directory = tmp_path / "d"
    with _Holder(directory) as holder:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert holder_pid(directory) == holder.pid  # its lock file stays behind
        with hold(directory):
            assert holder_pid(directory) == os.getpid()
    assert list(directory.iterdir()) == []  # a clean release removes the lock file


def test_a_second_sweep_on_a_held_out_dir_is_refused(tiny_ogbench_dir, tmp_path, capsys, monkeypatch):
    import ray

    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started"))
    out = tmp_path / "sweep"
    with _Holder(out) as holder:
        assert main(["sweep", "--agents", "qc-fql", "--envs", TINY_TASK, "--seeds", "0", "--out", str(out),
                     "--dataset-dir", str(tiny_ogbench_dir), "--set", "preset=quick"]) == 2
        assert f"--out {out} is in use by another qchunk process (pid {holder.pid})" in _one_error_line(capsys)
        assert sorted(p.name for p in out.iterdir()) == [LOCK]  # no sweep.json written


def test_a_checkpoint_save_leaves_another_writers_save_alone(tmp_path):
    from qchunk.training.checkpoint import CheckpointStore

    store = CheckpointStore(tmp_path / "checkpoints")
    store.root.mkdir()
    with _Holder(tmp_path / "elsewhere") as alive:
        theirs = store.root / f".tmp-30-{alive.pid}"  # a live process's save in progress
        theirs.mkdir()
        (theirs / "agent.msgpack").write_bytes(b"half")
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        dead = store.root / f".tmp-20-{int(gone.stdout)}"  # a save killed with its process
        dead.mkdir()
        store.save(10, b"agent", {"counters": {}})
        assert theirs.is_dir() and (theirs / "agent.msgpack").read_bytes() == b"half"
        assert dead.is_dir()  # a save removes only its own leftovers
        assert store.remove_stale_saves() == [dead]  # under the run's lock: the dead one goes, the live one stays
        assert theirs.is_dir() and not dead.exists()


@pytest.mark.slow
def test_two_real_train_processes_on_one_run_dir(tiny_ogbench_dir, tmp_path):
    """The issue's case: ``train --run-dir R``, then the same with ``--resume`` while the first runs."""
    run = tmp_path / "run"
    flags = ["--agent", "qc-fql", "--env", TINY_TASK, "--preset", "quick", "--offline-steps", "100000",
             "--online-steps", "0", "--eval-every", "100000", "--eval-episodes", "1", "--episode-length", "10",
             "--actor-hidden-dims", "16", "16", "--critic-hidden-dims", "16", "16", "--batch-size", "8",
             "--no-progress", "--no-tensorboard", "--dataset-dir", str(tiny_ogbench_dir), "--run-dir", str(run)]
    first = subprocess.Popen([QCHUNK, "train", *flags], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (run / "config.json").is_file():  # running: the lock is held, the config written
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read() if first.stderr else ""
            time.sleep(0.2)
        second = subprocess.run([QCHUNK, "train", *flags, "--resume"], capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert second.stderr == (f"error: run dir {run} is in use by another qchunk process (pid {first.pid}); wait "
                                 "for it to finish or stop it\n")
        first.send_signal(signal.SIGKILL)  # a lock left by kill -9 must not block the next run
        first.wait()
        third = subprocess.run([QCHUNK, "train", *flags, "--resume", "--offline-steps", "1"], capture_output=True,
                               text=True, timeout=240)
        assert "in use by another" not in third.stderr  # it got the lock (its settings differ: refused as such)
        assert third.returncode == 2 and "holds a run with other settings" in third.stderr
    finally:
        if first.poll() is None:
            first.kill()
        first.wait()
