"""``qchunk sweep``: grid parsing, recipes, and a real 2-run sweep on local Ray (interrupt, resume, skip)."""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TINY_TASK
from qchunk.cli import main
from qchunk.errors import QchunkError
from qchunk.experiments import RECIPES, SweepArgs, parse_envs, parse_seeds, parse_settings, plan_sweep
from qchunk.grammar import expand_braces, parse_names

QCHUNK = str(Path(sys.executable).parent / "qchunk")
TINY = ["--set", "preset=quick", "--set", "offline_steps=30", "--set", "online_steps=90", "--set", "eval_every=30",
        "--set", "eval_episodes=2", "--set", "episode_length=30", "--set", "start_training=20", "--set",
        "log_every=10", "--set", "checkpoint_every=10", "--set", "actor_hidden_dims=32,32", "--set",
        "critic_hidden_dims=32,32", "--set", "batch_size=32", "--set", "tensorboard=false"]


def one_line_error(capsys, code, match):
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert match in lines[0], err


# ------------------------------------------------------------------------------------------ parsing
def test_lists_accept_commas_repeats_and_unexpanded_braces():
    assert expand_braces("t{1..3}-v0") == ["t1-v0", "t2-v0", "t3-v0"]
    assert expand_braces("{a,b}{1..2}") == ["a1", "a2", "b1", "b2"]
    assert parse_names([("qc,qc-fql",), ("bfn", "qc")]) == ["qc", "qc-fql", "bfn"]
    envs = [f"cube-double-play-singletask-task{t}-v0" for t in range(1, 6)]
    assert parse_envs([("cube-double-play-singletask-task{1..5}-v0",)]) == envs
    assert parse_envs([(",".join(envs[:2]),), (envs[2],)]) == envs[:3]
    assert parse_envs(["cube-double"]) == envs
    assert parse_seeds([("0-3",)]) == parse_seeds(["0..3"]) == parse_seeds(["{0..3}"]) == [0, 1, 2, 3]
    assert parse_seeds([("0,2",), ("5", "7")]) == parse_seeds(["0,2 5", "7"]) == [0, 2, 5, 7]
    with pytest.raises(QchunkError, match="gives seed 2 twice"):  # one grammar with train --seeds
        parse_seeds([("0,2",), ("5", "2")])


def test_settings_are_typed_and_checked():
    s = parse_settings(["preset=quick", "offline-steps=1e6", "actor_hidden_dims=32,32", "sparse=false",
                        "num_samples=64", "alpha=300", "buffer_size=none", "utd=5"])
    assert s == {"preset": "quick", "offline_steps": 1_000_000, "actor_hidden_dims": (32, 32), "sparse": False,
                 "num_samples": 64, "alpha": 300.0, "buffer_size": None, "utd": 5}
    with pytest.raises(QchunkError, match="did you mean 'offline_steps'"):
        parse_settings(["offline_step=3"])
    with pytest.raises(QchunkError, match="use --seeds"):
        parse_settings(["seed=3"])
    with pytest.raises(QchunkError, match="unknown value 'huge'; choose one of: paper, quick"):
        parse_settings(["preset=huge"])
    with pytest.raises(QchunkError, match="--set offline_steps: 'lots' is not an integer"):
        parse_settings(["offline_steps=lots"])


def test_grid_layout_and_variants(tmp_path):
    plan = plan_sweep(SweepArgs(agents=(("qc,bfn",),), envs=((TINY_TASK,),), seeds=(("0-1",),),
                                vary=(("horizon=5,10",),), set=(("preset=quick",),), out=str(tmp_path)))
    assert len(plan.runs) == 8
    assert {str(r.rel_dir) for r in plan.runs} >= {f"{TINY_TASK}/qc-h5/seed0", f"{TINY_TASK}/bfn-h10/seed1"}
    cfg = plan.runs[1].config()
    assert cfg.agent == "qc" and cfg.seed == 1 and cfg.preset == "quick" and cfg.overrides.horizon == 5


def test_data_collection_stage_two_reads_the_stage_one_runs(tmp_path):
    plan = plan_sweep(SweepArgs(recipe="data-collection-offline", seeds=(("1",),), out=str(tmp_path / "stage2")))
    configs = {r.label: r.config() for r in plan.runs}
    env = "cube-triple-play-singletask-task3-v0"
    assert configs["fql-data-qc"].extra_data == str(tmp_path / "data-collection" / env / "qc" / "seed1")
    assert configs["qc-data-fql"].extra_data == str(tmp_path / "data-collection" / env / "fql" / "seed1")
    assert configs["qc-data-qc"].online_steps == 0


def test_every_recipe_has_a_dry_run(capsys):
    assert set(RECIPES) >= {"paper-main", "chunk-size", "ensemble-utd", "data-collection"}
    for name in RECIPES:
        assert main(["sweep", "--recipe", name, "--dry-run", "--out", "/nonexistent/sweep"]) == 0
    out = capsys.readouterr().out
    assert "sweep paper-main: 800 runs" in out and "sweep chunk-size: 100 runs" in out
    assert "qc-fql-h50" in out and "qc-K10-UTD5" in out and "fql-data-qc" in out
    assert main(["sweep", "--recipe", "paper-main", "--envs", "scene", "--agents", "qc", "--seeds", "0",
                 "--dry-run"]) == 0
    assert "sweep paper-main: 5 runs" in capsys.readouterr().out


def test_every_recipe_is_named_in_the_recipe_option_help(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert [name for name in RECIPES if name not in text] == []


def test_successors_cpu_recipe_is_the_main_jobs_budget_for_each_successor(capsys):
    recipe = RECIPES["successors-cpu"]
    assert recipe.agents == ("qam", "qam-e", "fedit", "dsrl", "qc-fql") and recipe.seeds == (0, 1)
    assert recipe.envs == ("puzzle-3x3-play-singletask-task1-v0",)
    assert main(["sweep", "--recipe", "successors-cpu", "--dry-run", "--out", "/nonexistent/sweep"]) == 0
    out = capsys.readouterr().out
    assert "sweep successors-cpu: 10 runs" in out


@pytest.mark.parametrize(("args", "match"), [
    (["--recipe", "table-9"], "unknown recipe 'table-9'"),
    (["--agents", "qc", "--envs", TINY_TASK, "--set", "frobnicate=1"], "unknown --set key 'frobnicate'"),
    (["--agents", "qc", "--envs", TINY_TASK, "--set", "offline_steps"], "key=value"),
    (["--agents", "qc", "--envs", "maze-play-singletask-task1-v0"], "unknown OGBench task"),
    (["--agents", "qc", "--envs", TINY_TASK, "--seeds", "three"], "bad seed"),
    (["--envs", TINY_TASK], "no agents"),
    (["--agents", "nope", "--envs", TINY_TASK, "--dataset-dir", "/nonexistent"], "unknown agent 'nope'"),
    (["--agents", "qc", "--envs", TINY_TASK, "--ray-address", "auto", "--local-cpus", "2"],
     "drop it with --ray-address"),
])
def test_bad_input_is_one_line_exit_2(capsys, args, match):
    one_line_error(capsys, main(["sweep", *args]), match)


def test_status_table_and_live_display(tmp_path):
    import io

    from qchunk.experiments.sweep import RunStatus, StatusDisplay, format_table

    plan = plan_sweep(SweepArgs(agents=(("qc",),), envs=((TINY_TASK,),), seeds=(("0-2",),), out=str(tmp_path)))
    statuses = [RunStatus(spec, tmp_path / spec.rel_dir, 2000) for spec in plan.runs]
    statuses[0].state, statuses[0].step, statuses[0].phase, statuses[0].success = "running", 1500, "online", 0.42
    statuses[1].state, statuses[1].message = "failed", "bad data"
    run = statuses[2].run_dir
    run.mkdir(parents=True)
    (run / "eval.csv").write_text("step,phase,offline_steps,env_steps,success\n1000,offline,1000,0,0.25\n")
    statuses[2].refresh()
    assert (statuses[2].step, statuses[2].phase, statuses[2].success) == (1000, "offline", 0.25)
    text = format_table(statuses)
    assert text.splitlines()[0] == "1 running | 1 queued | 1 failed"
    assert "puzzle-3x3 t2 qc seed0  running" in text and "1500/2000" in text and "42%" in text
    assert "failed: bad data" in text
    assert format_table(statuses, max_rows=1).splitlines()[-1] == "... and 2 more runs"

    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    display = StatusDisplay(statuses, out)
    display.update()
    display.update()  # redrawn in place: the cursor moves up over the previous table first
    assert out.getvalue().count("\x1b[") == 2 and out.getvalue().count("1 running") == 2


# ---------------------------------------------------------------------------------------- on Ray
def _wait(condition, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("timed out")


def _eval_steps(run):
    with open(run / "eval.csv", newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


@pytest.mark.slow
def test_sweep_on_local_ray_interrupts_resumes_and_skips(tiny_ogbench_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "sweep"
    longer = ["--set", "online_steps=300", "--set", "eval_every=150"]
    args = ["sweep", "--agents", "qc-fql", "--envs", TINY_TASK, "--seeds", "0-1", "--dataset-dir",
            str(tiny_ogbench_dir), "--out", str(out), "--local-cpus", "2", "--refresh", "0.5", *TINY, *longer]
    runs = [out / TINY_TASK / "qc-fql" / f"seed{s}" for s in (0, 1)]
    # 1. Ctrl-C on the driver once both runs are in train(): Ray cancels each task (a SIGINT inside it, relayed
    # to train()'s handler), each run saves a checkpoint and stops, and the driver exits with 130
    # as from a terminal: pytest-xdist workers ignore SIGINT, which children would inherit (no KeyboardInterrupt)
    proc = subprocess.Popen([QCHUNK, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # both runs are training (a train.csv row) with hundreds of steps to go when Ctrl-C arrives
    _wait(lambda: all((r / "train.csv").is_file() for r in runs), proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 130, stderr
    assert "2 interrupted" in stdout and stdout.count("interrupted: checkpoint saved") >= 2, stdout
    assert "run the same command again to resume it" in stderr and "Traceback" not in stderr
    for r in runs:
        assert any((r / "checkpoints").glob("step_*")) and not (r / "result.json").exists()
    # 2. the same command resumes both from their checkpoints and finishes them
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "0 already finished, 2 to run of which 2 resume" in printed and "2 finished" in printed
    for r in runs:
        assert json.loads((r / "result.json").read_text())["finished"] is True
        assert _eval_steps(r) == [30, 180, 330]  # each evaluation once, whatever the interruption
    manifest = json.loads((out / "sweep.json").read_text())
    assert sorted(r["dir"] for r in manifest["runs"]) == [f"{TINY_TASK}/qc-fql/seed{s}" for s in (0, 1)]
    # 3. once more: both are skipped without starting Ray
    import ray

    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started for a finished sweep"))
    assert main(args) == 0
    assert "2 already finished, 0 to run" in capsys.readouterr().out
    # 4. plots and a report of the real sweep
    assert main(["plot", str(out), "--resamples", "200"]) == 0
    assert main(["report", str(out), "--resamples", "200", "--reference", "paper"]) == 0
    for name in ("plots/learning_curves.png", "plots/learning_curves.svg", "report/report.md", "report/report.html"):
        assert (out / name).stat().st_size > 1000, name
    assert "| QC-FQL |" in (out / "report" / "report.md").read_text()
