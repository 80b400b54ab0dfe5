"""``qchunk sweep`` against what is on disk: runs made with other settings are refused before any work,
``sweep.json`` keeps describing every run directory, and ``--dry-run`` checks names like the real sweep."""

import json
import time

import pytest

from conftest import TINY_TASK
from qchunk.cli import main
from qchunk.experiments import SweepArgs, plan_sweep
from qchunk.experiments.sweep import setting_differences, write_manifest

# a run of a few seconds: 10 offline steps, 20 online steps, one evaluation episode
FAST = ["--set", "preset=quick", "--set", "offline_steps=10", "--set", "online_steps=20", "--set", "eval_every=10",
        "--set", "eval_episodes=1", "--set", "episode_length=10", "--set", "start_training=5", "--set",
        "log_every=10", "--set", "checkpoint_every=10", "--set", "actor_hidden_dims=16,16", "--set",
        "critic_hidden_dims=16,16", "--set", "batch_size=8", "--set", "tensorboard=false"]


def _sweep(out, data, *more):
    return ["sweep", "--agents", "qc-fql", "--envs", TINY_TASK, "--seeds", "0", "--dataset-dir", str(data),
            "--out", str(out), "--local-cpus", "1", "--refresh", "0.5", *FAST, *more]


def _no_ray(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started"))


def _files(run):
    """Bytes of every file of a run directory (checkpoints included), by relative path."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def _error_lines(capsys):
    captured = capsys.readouterr()
    return captured.out, [ln for ln in captured.err.strip().splitlines() if ln.strip()]


def test_setting_differences_name_each_field_as_set_takes_it():
    old = {"agent": "qc", "offline_steps": 100, "progress": True, "actor_hidden_dims": [32, 32],
           "buffer_size": None, "overrides": {"horizon": 5, "alpha": None}}
    new = {"agent": "qc", "offline_steps": 300, "progress": False, "actor_hidden_dims": (64, 64),
           "buffer_size": 10, "overrides": {"horizon": 5, "alpha": 3.0}}
    assert setting_differences(old, new, free={"progress"}) == [
        "actor_hidden_dims: 32,32 on disk, 64,64 now", "alpha: none on disk, 3.0 now",
        "buffer_size: none on disk, 10 now", "offline_steps: 100 on disk, 300 now"]
    assert setting_differences(old, dict(old, progress=False, actor_hidden_dims=(32, 32)), free={"progress"}) == []


@pytest.mark.slow
def test_a_sweep_refuses_runs_made_with_other_settings(tiny_ogbench_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "sweep"
    run = out / TINY_TASK / "qc-fql" / "seed0"
    assert main(_sweep(out, tiny_ogbench_dir)) == 0
    capsys.readouterr()
    assert json.loads((run / "result.json").read_text())["finished"] is True
    manifest, before = (out / "sweep.json").read_bytes(), _files(run)
    _no_ray(monkeypatch)  # every case below is decided from the files, before Ray

    # the same settings: nothing to do
    assert main(_sweep(out, tiny_ogbench_dir)) == 0
    assert "1 already finished, 0 to run" in capsys.readouterr().out
    manifest = (out / "sweep.json").read_bytes()

    # another offline_steps (and an agent field): refused, one line for the run, one error line, nothing written
    start = time.monotonic()
    code = main(_sweep(out, tiny_ogbench_dir, "--set", "offline_steps=40", "--set", "horizon=3"))
    elapsed = time.monotonic() - start
    printed, lines = _error_lines(capsys)
    assert code == 2 and len(lines) == 2, lines
    assert lines[0].startswith(f"{run}: made with other settings")
    assert "offline_steps: 10 on disk, 40 now" in lines[0] and "horizon: none on disk, 3 now" in lines[0]
    assert lines[1].startswith("error: 1 run in ") and "choose another --out" in lines[1]
    assert printed == "" and elapsed < 30
    assert (out / "sweep.json").read_bytes() == manifest and _files(run) == before

    # the dry run shows the same conflict in its grid and fails the same way
    assert main(_sweep(out, tiny_ogbench_dir, "--set", "offline_steps=40", "--dry-run")) == 2
    printed, lines = _error_lines(capsys)
    assert "(1 other settings)" in printed and "offline_steps: 10 on disk, 40 now" in lines[0]
    assert lines[-1].startswith("error: 1 run in ")
    # settings that may change on resume are no conflict
    assert main(_sweep(out, tiny_ogbench_dir, "--set", "tensorboard=true", "--cpus-per-run", "2",
                       "--local-cpus", "2")) == 0
    assert "1 already finished, 0 to run" in capsys.readouterr().out
    assert _files(run) == before


def test_an_unreadable_config_json_stops_the_sweep_before_any_work(tiny_ogbench_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "sweep"
    run = out / TINY_TASK / "qc-fql" / "seed0"
    run.mkdir(parents=True)
    (run / "config.json").write_text('{"train": {"agent": "qc-fq')  # cut short
    _no_ray(monkeypatch)
    for extra in ([], ["--dry-run"]):
        assert main(_sweep(out, tiny_ogbench_dir, *extra)) == 2
        printed, lines = _error_lines(capsys)
        assert len(lines) == 1 and lines[0].startswith(f"error: {run / 'config.json'} is unreadable"), lines
        assert printed == ""
    assert sorted(p.name for p in out.iterdir()) == [TINY_TASK]  # no sweep.json


@pytest.mark.parametrize(("args", "match"), [
    (["--agents", "nope"], "unknown agent 'nope'"),
    (["--agents", "qc", "--set", "eval_every=0"], "--eval-every must be >= 1"),
    (["--agents", "qc", "--set", "num_samples=0"], "num_samples"),
])
def test_dry_run_checks_names_and_settings_like_the_real_sweep(tmp_path, capsys, args, match):
    out = tmp_path / "never"
    assert main(["sweep", *args, "--envs", TINY_TASK, "--out", str(out), "--dry-run"]) == 2
    printed, lines = _error_lines(capsys)
    assert printed == "" and len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], lines
    assert not out.exists()


def test_sweep_json_describes_every_run_on_disk(tmp_path):
    out = tmp_path / "sweep"

    def plan(seeds):
        args = SweepArgs(agents=(("qc",),), envs=((TINY_TASK,),), seeds=((seeds,),), out=str(out),
                         set=(("preset=quick", "horizon=3"),))
        return plan_sweep(args), args

    def dirs():
        return [r["dir"] for r in json.loads((out / "sweep.json").read_text())["runs"]]

    out.mkdir()
    write_manifest(*plan("0"))
    write_manifest(*plan("1-2"))  # a grid that adds runs keeps the earlier ones
    assert dirs() == [f"{TINY_TASK}/qc/seed{s}" for s in (0, 1, 2)]
    # sweep.json lost: a run directory on disk is described from its config.json
    from qchunk.training import RunDir

    spec = plan("0")[0].runs[0]
    cfg = spec.config().resolved()
    run = RunDir(out / spec.rel_dir)
    run.path.mkdir(parents=True)
    from qchunk.agents import agent_config

    run.write_config(cfg, agent_config(cfg.agent, cfg.preset, "puzzle-3x3", **cfg.agent_overrides()), 10, 5)
    (out / "sweep.json").write_text("{not json")
    write_manifest(*plan("1"))
    manifest = json.loads((out / "sweep.json").read_text())
    entry = {r["dir"]: r for r in manifest["runs"]}[f"{TINY_TASK}/qc/seed0"]
    assert sorted(entry) == ["agent", "dir", "env", "seed", "settings", "variant"]
    assert (entry["agent"], entry["seed"], entry["variant"]) == ("qc", 0, "")
    assert entry["settings"]["preset"] == "quick" and entry["settings"]["horizon"] == 3
    assert sorted(r["dir"] for r in manifest["runs"]) == [f"{TINY_TASK}/qc/seed{s}" for s in (0, 1)]
