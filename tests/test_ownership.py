"""No command writes over a file it did not create: dataset writers refuse an existing output unless
``--overwrite``; run, sweep and eval directories holding the user's files are refused in one line naming
them, before any work, with every file left as it was."""

import json
import shutil
import time

import pytest

from conftest import TINY_TASK
from qchunk.cli import main
from qchunk.experiments import sweep as sweep_module
from qchunk.training import RunDir, TrainConfig

MANIFEST = "sweep.json"

PENDULUM = "gym:InvertedPendulum-v5"
TRAIN = ["train", "--agent", "qc-fql", "--env", TINY_TASK, "--preset", "quick", "--offline-steps", "10",
         "--online-steps", "0", "--eval-every", "10", "--eval-episodes", "1", "--episode-length", "5",
         "--eval-workers", "1", "--no-progress"]


def _snapshot(root):
    """Bytes of every file under ``root``, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _one_error_line(capsys):
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def _no_ray(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started"))


def test_data_collect_refuses_an_existing_dataset_file_unless_overwrite(tiny_ogbench_dir, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(tiny_ogbench_dir, data)
    target = data / "puzzle-3x3-play-v0.npz"  # the case: an OGBench dataset under the output name
    before = _snapshot(data)
    start = time.monotonic()
    assert main(["data", "collect", "--env", PENDULUM, "--episodes", "2", "--out", str(target)]) == 2
    line = _one_error_line(capsys)
    assert f"--out: {target} exists already; pass --overwrite" in line and time.monotonic() - start < 20
    assert _snapshot(data) == before
    assert main(["data", "collect", "--env", PENDULUM, "--episodes", "2", "--out", str(target), "--overwrite"]) == 0
    assert target.read_bytes() != before[target.name]
    assert "wrote" in capsys.readouterr().out


def test_data_ogbench_refuses_existing_files_unless_overwrite(tiny_ogbench_dir, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(tiny_ogbench_dir, data)
    (data / "puzzle-3x3-play-v0.npz").unlink()  # the validation file alone is enough to refuse
    before = _snapshot(data)
    args = ["data", "ogbench", "puzzle-3x3-play-v0", "--episodes", "1", "--episode-steps", "5", "--workers", "1",
            "--out", str(data)]
    assert main(args) == 2
    line = _one_error_line(capsys)
    assert f"{data / 'puzzle-3x3-play-v0-val.npz'} exists already; pass --overwrite" in line
    assert _snapshot(data) == before
    assert main([*args, "--overwrite"]) == 0
    assert (data / "puzzle-3x3-play-v0.npz").is_file()
    assert (data / "puzzle-3x3-play-v0-val.npz").read_bytes() != before["puzzle-3x3-play-v0-val.npz"]


def test_train_refuses_a_run_dir_of_the_users_files(tiny_ogbench_dir, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "eval.csv").write_text("my,own\n1,2\n")
    (mine / "notes.txt").write_text("keep me")
    before = _snapshot(mine)
    for extra in ([], ["--resume"]):
        assert main([*TRAIN, "--dataset-dir", str(tiny_ogbench_dir), "--run-dir", str(mine), *extra]) == 2
        line = _one_error_line(capsys)
        assert f"run dir {mine} holds files but no qchunk run" in line and "eval.csv, notes.txt" in line
        assert _snapshot(mine) == before and sorted(p.name for p in mine.iterdir()) == ["eval.csv", "notes.txt"]
    # a config.json of another tool is not a run either
    (mine / "config.json").write_text(json.dumps({"learning_rate": 3}))
    assert main([*TRAIN, "--dataset-dir", str(tiny_ogbench_dir), "--run-dir", str(mine), "--resume"]) == 2
    assert "does not describe a qchunk run" in _one_error_line(capsys)


def test_quickstart_fresh_deletes_nothing_of_the_users(tiny_ogbench_dir, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep me")
    assert main(["quickstart", "--fresh", "--run-dir", str(mine), "--dataset-dir", str(tiny_ogbench_dir),
                 "--offline-steps", "10", "--online-steps", "0", "--eval-every", "10", "--eval-episodes", "1",
                 "--workers", "1", "--no-progress"]) == 2
    assert "thesis.tex" in _one_error_line(capsys)
    assert (mine / "thesis.tex").read_text() == "keep me"


def test_a_run_dir_may_hold_what_a_sweep_writes_before_the_run():
    from qchunk.experiments.sweep_dir import MANIFEST
    from qchunk.training.run_dir import LAUNCHER_FILES

    assert LAUNCHER_FILES == {sweep_module.TASK_MARKER, sweep_module.ERROR_FILE}
    assert MANIFEST == sweep_module.MANIFEST


def _sweep(out, data):
    return ["sweep", "--agents", "qc-fql", "--envs", TINY_TASK, "--seeds", "0", "--dataset-dir", str(data),
            "--out", str(out), "--local-cpus", "1", "--set", "preset=quick", "--set", "offline_steps=10",
            "--set", "online_steps=0"]


def test_sweep_refuses_an_out_dir_of_the_users_files(tiny_ogbench_dir, tmp_path, capsys, monkeypatch):
    _no_ray(monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text(json.dumps({"my": "sweep"}))  # the case: the user's sweep.json
    before = _snapshot(out)
    for extra in ([], ["--dry-run"]):
        assert main([*_sweep(out, tiny_ogbench_dir), *extra]) == 2
        assert f"--out {out} holds a sweep.json that qchunk did not write" in _one_error_line(capsys)
        assert _snapshot(out) == before
    (out / MANIFEST).unlink()
    (out / "results.xlsx").write_bytes(b"PK")
    assert main(_sweep(out, tiny_ogbench_dir)) == 2
    assert "holds files qchunk did not write and no sweep.json: results.xlsx" in _one_error_line(capsys)
    # a planned run directory holding the user's files
    (out / "results.xlsx").unlink()
    run = out / TINY_TASK / "qc-fql" / "seed0"
    run.mkdir(parents=True)
    (run / "train.csv").write_text("mine")
    assert main(_sweep(out, tiny_ogbench_dir)) == 2
    line = _one_error_line(capsys)
    assert f"run dir {run} holds files but no qchunk run" in line and "train.csv" in line
    assert (run / "train.csv").read_text() == "mine" and not (out / MANIFEST).exists()


def test_eval_refuses_an_out_dir_of_the_users_files(tiny_ogbench_dir, tmp_path, capsys):
    from qchunk.agents import agent_config

    cfg = TrainConfig(agent="qc-fql", env=TINY_TASK, preset="quick", dataset_dir=str(tiny_ogbench_dir)).resolved()
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_config(cfg, agent_config(cfg.agent, cfg.preset, "puzzle-3x3"), 10, 5)
    out = tmp_path / "figures"
    out.mkdir()
    (out / "summary.json").write_text(json.dumps({"figure": 1}))
    (out / "episodes.csv").write_text("mine")
    before = _snapshot(out)
    assert main(["eval", str(run.path), "--out", str(out), "--episodes", "1"]) == 2
    line = _one_error_line(capsys)
    assert f"--out {out} holds files qchunk eval did not write: episodes.csv, summary.json" in line
    assert _snapshot(out) == before


def test_plot_replaces_its_own_figure_but_not_the_users(tmp_path, capsys):
    from test_plot_report import make_run

    run = make_run(tmp_path / "runs", "cube-double-play-singletask-task1-v0", "qc", 0)
    (run / "plots").mkdir()
    (run / "plots" / "learning_curves.png").write_bytes(b"drawn by an older qchunk, without the mark")
    assert main(["plot", str(run), "--resamples", "50"]) == 0  # a run's own plots/ folder is qchunk's
    figs = tmp_path / "figs"
    figs.mkdir()
    args = ["plot", str(tmp_path / "runs"), "--resamples", "50", "--out", str(figs / "curve.png")]
    assert main(args) == 0
    assert main(args) == 0  # its own figure: replaced
    capsys.readouterr()
    (figs / "curve.svg").write_text("<svg>the user's drawing</svg>")
    assert main(args) == 2
    assert f"--out: {figs / 'curve.svg'} exists and qchunk did not write it" in _one_error_line(capsys)
    assert (figs / "curve.svg").read_text() == "<svg>the user's drawing</svg>"


def test_report_and_bench_json_refuse_the_users_files(tmp_path, capsys):
    from test_plot_report import make_run

    sweep = tmp_path / "sweep"
    make_run(sweep, "cube-double-play-singletask-task1-v0", "qc", 0)
    out = tmp_path / "paper"
    out.mkdir()
    (out / "report.md").write_text("# my paper draft\n")
    assert main(["report", str(sweep), "--resamples", "50", "--out", str(out)]) == 2
    assert f"{out / 'report.md'} exists and qchunk did not write it" in _one_error_line(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["report.md"]
    (out / "report.md").unlink()
    assert main(["report", str(sweep), "--resamples", "50", "--out", str(out)]) == 0
    assert main(["report", str(sweep), "--resamples", "50", "--out", str(out)]) == 0  # its own: replaced
    capsys.readouterr()
    mine = tmp_path / "numbers.json"
    mine.write_text('{"my": 1}')
    assert main(["bench", "--agent", "fql", "--preset", "quick", "--steps", "2", "--json", str(mine)]) == 2
    assert "--json: " in _one_error_line(capsys) and mine.read_text() == '{"my": 1}'
