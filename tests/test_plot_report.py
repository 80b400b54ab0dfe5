"""``qchunk plot`` and ``qchunk report`` on synthetic run directories (the layout ``train()`` writes)."""

import json

import numpy as np
import pytest

from qchunk.cli import main
from qchunk.plotting import compute_curves, load_runs, stratified_bootstrap_ci
from qchunk.plotting.curves import _reference_x
from qchunk.plotting.reference import paper_aggregate, paper_curve, paper_curves

HEADER = "step,phase,offline_steps,env_steps,success,return,episode_length,eval_seconds"


def make_run(root, env, agent, seed, offline=20_000, online=20_000, every=5_000, level=0.5, overrides=None,
             finished=True, upto=None):
    """A run directory like train() writes, with a noisy rising success curve."""
    rng = np.random.default_rng([seed, len(env), len(agent), int(100 * level)])
    tag = "-".join(f"{k}{v}" for k, v in (overrides or {}).items())
    run = root / env / (f"{agent}-{tag}" if tag else agent) / f"seed{seed}"
    run.mkdir(parents=True)
    train = {"agent": agent, "env": env, "seed": seed, "preset": "quick", "offline_steps": offline,
             "online_steps": online, "eval_every": every, "eval_episodes": 10, "utd": 1, "sparse": True,
             "resume": True, "progress": False, "eval_workers": 1, "dataset_dir": None,
             "overrides": {"horizon": None, "alpha": None, **(overrides or {})}}
    horizon = (overrides or {}).get("horizon", 1 if agent in ("fql", "bfn", "rlpd") else 5)
    (run / "config.json").write_text(json.dumps({"train": train, "agent": {"horizon": horizon, "num_critics": 2},
                                                 "versions": {"qchunk": "0.1.0", "jax": "0.10.2",
                                                              "device": "TFRT_CPU_0"}}))
    rows = [HEADER]
    for s in range(every, offline + 1, every):
        rows.append(f"{s},offline,{s},0,{np.clip(level * s / offline * 0.5 + rng.normal(0, 0.05), 0, 1):.2f},-1,9,1")
    for e in range(every, online + 1, every):
        p = 0.5 * level * (offline > 0) + (1 - 0.5 * level) * e / online * level + rng.normal(0, 0.05)
        rows.append(f"{offline + e},online,{offline},{e},{np.clip(p, 0, 1):.2f},-1,9,1")
    if upto is not None:
        rows = [r for r in rows[:1] + [r for r in rows[1:] if int(r.split(",")[0]) <= upto]]
    (run / "eval.csv").write_text("\n".join(rows) + "\n")
    if finished:
        (run / "result.json").write_text(json.dumps({"finished": True, "seconds": 600.0}))
    return run


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "sweep"
    for domain in ("cube-double", "puzzle-3x3"):
        for task in (1, 2):
            env = f"{domain}-play-singletask-task{task}-v0"
            for seed in range(3):
                make_run(root, env, "qc", seed, level=0.9)
                make_run(root, env, "bfn", seed, level=0.5)
                make_run(root, env, "rlpd", seed, offline=0, level=0.6)
    # one unfinished run: it counts where it has got to
    make_run(root, "cube-double-play-singletask-task1-v0", "qc", 3, level=0.9, finished=False, upto=25_000)
    return root


def test_runs_are_labelled_by_agent_and_differing_settings(tmp_path):
    env = "cube-triple-play-singletask-task3-v0"
    for h in (5, 10):
        make_run(tmp_path, env, "qc-fql", 0, overrides={"horizon": h})
    make_run(tmp_path, env, "fql", 0)
    runs = load_runs([tmp_path])
    assert sorted(r.label for r in runs) == ["FQL", "QC-FQL h=10", "QC-FQL h=5"]
    assert sorted({r.label for r in load_runs([tmp_path], by="horizon")}) == ["h=1", "h=10", "h=5"]


def test_curves_are_bootstrap_means_and_online_only_runs_start_after_offline(sweep):
    runs = load_runs([sweep])
    curves = compute_curves(runs, np.random.default_rng(0), n_resamples=300)
    rlpd = next(c for c in curves if c.label == "RLPD" and c.task == "task1" and c.domain == "cube-double")
    assert rlpd.x[0] == 20_000 + 5_000  # shifted past the 20K offline steps of the other runs
    qc = next(c for c in curves if c.label == "QC" and c.task is None and c.domain == "cube-double")
    assert qc.n_tasks == 2 and qc.n_seeds == (4, 3)
    # the domain curve is the stratified estimate over the tasks' seeds at each step
    strata = []
    for task in ("task1", "task2"):
        group = sorted((r for r in runs if r.label == "QC" and r.domain == "cube-double" and r.task == task),
                       key=lambda r: r.seed)
        mat = np.full((len(group), qc.x.size), np.nan)
        for i, r in enumerate(group):
            mat[i, np.searchsorted(qc.x, r.steps)] = r.success
        strata.append(mat)
    expected = stratified_bootstrap_ci(strata, np.random.default_rng(1), n_resamples=300)
    np.testing.assert_allclose(qc.interval.point, expected.point)
    assert np.all(qc.interval.low <= qc.interval.point) and np.all(qc.interval.point <= qc.interval.high)


def test_plot_writes_png_and_svg(sweep, tmp_path, capsys):
    out = tmp_path / "fig.png"
    assert main(["plot", str(sweep), "--reference", "paper", "--out", str(out), "--resamples", "500"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    svg = out.with_suffix(".svg").read_text()
    assert "<svg" in svg and "QC (3-4 seeds)" in svg and "paper (x rescaled" in svg
    assert "curves: BFN, QC, RLPD" in capsys.readouterr().out


def test_report_writes_markdown_html_and_numbers(sweep, capsys):
    assert main(["report", str(sweep), "--resamples", "500"]) == 0
    report = sweep / "report"
    md = (report / "report.md").read_text()
    assert "| method | puzzle-3x3 (2 tasks) | cube-double (2 tasks) | all (4 tasks) |" in md
    assert "| RLPD | – → " in md and "![learning curves](learning_curves.png)" in md
    assert "37 run directories: 36 finished, 1 not finished" in md and "versions: jax 0.10.2" in md
    assert "## Published (the paper, 1M offline + 1M online steps)" in md
    html = (report / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and '<img src="learning_curves.svg"' in html
    assert (report / "learning_curves.png").stat().st_size > 20_000
    summary = json.loads((report / "summary.json").read_text())
    cell = summary["domains"]["QC"]["cube-double"]
    # the unfinished seed has passed the offline phase but not the online one
    assert cell["runs"] == 7 and cell["offline_runs"] == 7 and cell["online_runs"] == 6
    finals = [load_runs([r.parent])[0] for r in sorted(sweep.glob("cube-double*/qc/seed*/config.json"))]
    by_task = {}
    for r in finals:
        if (v := r.value_at_end_of("online")) is not None:
            by_task.setdefault(r.task, []).append(v)
    assert cell["online"]["mean"] == pytest.approx(np.mean([np.mean(v) for v in by_task.values()]))


def test_paper_curves_are_packaged():
    curves = paper_curves()
    assert len(curves) > 400
    qc = paper_curve("QC", "cube-double")
    assert qc.steps[0] == 0.0 and qc.steps[-1] == 2.0 and np.all(qc.ci_low <= qc.mean + 1e-9)
    assert paper_curve("QC", "cube-double", "task2") is not None and paper_curve("QC-FQL h=10", "cube-double") is None
    two = paper_aggregate("QC", "cube-double", ["task1", "task2"])
    np.testing.assert_allclose(two.mean, (paper_curve("QC", "cube-double", "task1").mean
                                          + paper_curve("QC", "cube-double", "task2").mean) / 2)
    # paper x (millions, 1 = end of offline) onto a 20K + 20K run: phases keep their place
    x, keep, rescaled = _reference_x(np.array([0.0, 0.5, 1.0, 1.5, 2.0]), 20_000, 20_000)
    assert rescaled and keep.all() and x.tolist() == [0, 10_000, 20_000, 30_000, 40_000]


@pytest.mark.parametrize(("args", "match"), [
    (["plot", "{empty}"], "no runs under"),
    (["report", "{empty}"], "no runs under"),
    (["plot", "/nonexistent/sweep"], "does not exist"),
    (["plot", "{noevals}"], "no evaluations yet"),
    (["plot", "{noevals}", "--reference", "arxiv"], "choose one of: paper, qam, none"),
    (["plot", "{noevals}", "--by", "colour"], "no run has a setting called 'colour'"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, match):
    (tmp_path / "empty").mkdir()
    make_run(tmp_path / "noevals", "scene-play-singletask-task1-v0", "qc", 0, upto=0)
    code = main([a.format(empty=tmp_path / "empty", noevals=tmp_path / "noevals") for a in args])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], err
