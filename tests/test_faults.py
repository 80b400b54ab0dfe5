"""Fault injection through the real CLI and ``train``: damaged checkpoints, cut CSVs, mistyped run
directories and conflicting flags. Each test asserts which checkpoint was used, which files exist
afterwards, the message, the exit status, and that the resumed run equals the uninterrupted one."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess

import pytest

from conftest import TINY_TASK
from qchunk.errors import QchunkError
from qchunk.training import RunDir, TrainConfig, train
from qchunk.training.config import AgentOverrides
from test_training import QCHUNK, TIMING_COLUMNS, read_rows

#: 60 offline steps (checkpoints 20, 40, 60) then one 30-step online episode (checkpoint 90); the two
#: newest are kept: step 60 (offline, no buffer) and step 90 (with the replay buffer).
FLAGS = ["--agent", "qc-fql", "--env", TINY_TASK, "--preset", "quick", "--offline-steps", "60", "--online-steps",
         "30", "--eval-every", "50", "--eval-episodes", "2", "--episode-length", "30", "--start-training", "10",
         "--log-every", "10", "--checkpoint-every", "20", "--eval-workers", "1", "--no-progress",
         "--actor-hidden-dims", "32", "32", "--critic-hidden-dims", "32", "32", "--batch-size", "32"]


def config(dataset_dir, **changes) -> TrainConfig:
    base = TrainConfig(agent="qc-fql", env=TINY_TASK, preset="quick", dataset_dir=str(dataset_dir), offline_steps=60,
                       online_steps=30, eval_every=50, eval_episodes=2, episode_length=30, start_training=10,
                       log_every=10, checkpoint_every=20, eval_workers=1, progress=False, batch_size=32,
                       overrides=AgentOverrides(actor_hidden_dims=(32, 32), critic_hidden_dims=(32, 32)))
    return dataclasses.replace(base, **changes)


def cli(dataset_dir, run_dir, *extra, timeout=600):
    return subprocess.run([QCHUNK, "train", *FLAGS, "--dataset-dir", str(dataset_dir), "--run-dir", str(run_dir),
                           *extra], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def reference(tiny_ogbench_dir, tmp_path_factory):
    """A finished run, started with --resume on a new directory (item 7: said in one line)."""
    run = tmp_path_factory.mktemp("faults") / "ref"
    done = cli(tiny_ogbench_dir, run, "--resume")
    assert done.returncode == 0, done.stderr
    assert f"no checkpoint in {run}: starting a new run" in done.stderr
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000000060", "step_0000000090"]
    return run


def copy_run(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "result.json").unlink()
    return run


def same_curves(a, b):
    assert read_rows(a / "eval.csv") == read_rows(b / "eval.csv")
    assert read_rows(a / "train.csv", drop=TIMING_COLUMNS) == read_rows(b / "train.csv", drop=TIMING_COLUMNS)


def damage(path, how):
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garble":
        path.write_bytes(os.urandom(4096))  # 4 KB of random bytes
    elif how == "flip":  # same size, one byte changed
        path.write_bytes(data[:10] + bytes([data[10] ^ 0xFF]) + data[11:])
    else:
        path.unlink()


@pytest.mark.slow
def test_resume_falls_back_from_a_truncated_newest_checkpoint_through_the_cli(tiny_ogbench_dir, reference, tmp_path):
    run = copy_run(reference, tmp_path)
    damage(run / "checkpoints" / "step_0000000090" / "agent.msgpack", "truncate")
    done = cli(tiny_ogbench_dir, run, "--resume")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = [ln for ln in done.stderr.splitlines() if "damaged" in ln]
    cut = (run / "checkpoints" / "damaged-step_0000000090" / "agent.msgpack").stat().st_size
    full = (reference / "checkpoints" / "step_0000000090" / "agent.msgpack").stat().st_size
    assert lines == [f"resuming {run} (seed 0) from checkpoint step_0000000060 (step 60), the newest intact one: "
                     f"checkpoint step_0000000090 is damaged (agent.msgpack has {cut} bytes, the manifest says "
                     f"{full}); set aside as damaged-step_0000000090"]
    # resumed from step 60 (the good one was kept), the damaged one set aside, a fresh step 90 written
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "damaged-step_0000000090", "step_0000000060", "step_0000000090"]
    same_curves(run, reference)
    assert (run / "result.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(("name", "how"), [("state.json", "empty"), ("buffer.npz", "flip"),
                                           ("manifest.json", "garble")])
@pytest.mark.slow
def test_every_damaged_file_is_detected_and_the_curve_is_unchanged(tiny_ogbench_dir, reference, tmp_path, name, how,
                                                                   capsys):
    run = copy_run(reference, tmp_path)
    damage(run / "checkpoints" / "step_0000000090" / name, how)
    train(config(tiny_ogbench_dir, resume=True), run)
    err = capsys.readouterr().err
    assert "checkpoint step_0000000090 is damaged" in err and "set aside as damaged-step_0000000090" in err
    assert (run / "checkpoints" / "step_0000000060").is_dir()  # the checkpoint it resumed from is kept
    assert (run / "checkpoints" / "damaged-step_0000000090").is_dir()
    same_curves(run, reference)


@pytest.mark.slow
def test_eval_refuses_a_damaged_checkpoint_and_skips_it_by_default(tiny_ogbench_dir, reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    damage(run / "checkpoints" / "step_0000000090" / "agent.msgpack", "garble")
    p = subprocess.run([QCHUNK, "eval", str(run), "--checkpoint", "90", "--episodes", "1", "--workers", "1"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert p.stderr.startswith("error: checkpoint 90 of") and "is damaged (agent.msgpack has 4096 bytes" in p.stderr
    assert not (run / "eval").exists()
    agent, ckpt = RunDir(run).load_agent()  # the newest intact one
    assert ckpt.step == 60 and agent.config.agent == "qc-fql"
    assert (run / "checkpoints" / "step_0000000090").is_dir()  # reading never renames


@pytest.mark.slow
def test_resume_restores_cut_csvs_from_the_checkpoint(tiny_ogbench_dir, reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    lines = (run / "eval.csv").read_text().splitlines(keepends=True)
    (run / "eval.csv").write_text("".join(lines[:2]))  # header + the first row
    (run / "train.csv").write_text("")
    train(config(tiny_ogbench_dir, resume=True), run)  # finished: nothing to train, the files are rebuilt
    same_curves(run, reference)


@pytest.mark.slow
def test_resume_before_any_evaluation_leaves_no_headerless_csv(tiny_ogbench_dir, tmp_path):
    run = tmp_path / "run"
    cfg = config(tiny_ogbench_dir, offline_steps=30, online_steps=0, eval_every=1000, checkpoint_every=10)
    train(cfg, run)
    ckpts = run / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["step_0000000020", "step_0000000030"]
    state = json.loads((ckpts / "step_0000000020" / "state.json").read_text())
    assert state["evals"] == []  # taken before the first (end-of-phase) evaluation
    shutil.rmtree(ckpts / "step_0000000030")
    (run / "result.json").unlink()
    reference_rows = read_rows(run / "eval.csv")
    train(dataclasses.replace(cfg, resume=True), run)
    text = (run / "eval.csv").read_text()
    assert text.startswith("step,phase,") and read_rows(run / "eval.csv") == reference_rows


@pytest.mark.slow
def test_resume_into_a_directory_of_other_files_is_an_error(tiny_ogbench_dir, tmp_path):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"\xff\xd8")
    p = cli(tiny_ogbench_dir, other, "--resume", timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "holds files but no qchunk run" in p.stderr
    assert sorted(os.listdir(other)) == ["cat.jpg"]
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(QchunkError, match="is a file, not a directory"):
        train(config(tiny_ogbench_dir), a_file)


@pytest.mark.slow
def test_conflicting_seed_flags_and_dry_run(tiny_ogbench_dir, tmp_path):
    run = tmp_path / "r"
    p = cli(tiny_ogbench_dir, run, "--seed", "3", "--seeds", "0-1", timeout=120)
    assert p.returncode == 2 and p.stderr.strip() == "error: --seed and --seeds conflict: give one (--seeds 0-3 " \
                                                     "trains seeds 0..3)"
    assert not run.exists()
    p = cli(tiny_ogbench_dir, run, "--seed", "3", "--seeds", "0-1", "--debug", timeout=120)
    assert p.returncode == 2 and "Traceback" in p.stderr  # --debug adds the traceback, not another status
    assert p.stderr.strip().splitlines()[-1].startswith("error: --seed and --seeds conflict")
    p = cli(tiny_ogbench_dir, run, "--seeds", "0-1", "--dry-run", timeout=120)
    assert p.returncode == 0, p.stderr
    plan = json.loads(p.stdout)
    assert plan["seeds"] == [0, 1] and plan["run_dirs"] == [str(run / "seed0"), str(run / "seed1")]
    assert plan["train"]["sparse"] is True and plan["agent"]["horizon"] == 5 and plan["agent"]["alpha"] > 0
    assert not run.exists()


@pytest.mark.slow
def test_changed_settings_on_resume_name_every_difference(tiny_ogbench_dir, reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    p = cli(tiny_ogbench_dir, run, "--resume", "--seed", "2", "--batch-size", "16", timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "batch_size: 32 there, 16 now" in p.stderr and "seed: 0 there, 2 now" in p.stderr


@pytest.mark.slow
def test_a_dataset_that_does_not_fit_the_env_is_refused_before_any_work(tiny_ogbench_dir, tmp_path):
    from test_data_check import _write_narrow_copy

    narrow = tmp_path / "narrow"
    _write_narrow_copy(tiny_ogbench_dir, narrow)
    run = tmp_path / "run"
    p = subprocess.run([QCHUNK, "train", *FLAGS, "--dataset-dir", str(narrow), "--run-dir", str(run)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "action shape (3,)" in p.stderr and TINY_TASK in p.stderr
    assert not run.exists()
    p = cli(tiny_ogbench_dir, run, "--offline-ratio", "inf", timeout=120)
    assert p.returncode == 2 and "--offline-ratio must be a finite number" in p.stderr and not run.exists()
