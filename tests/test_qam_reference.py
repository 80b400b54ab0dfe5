"""The QAM paper's released per-seed curves: the shipped file, the agent mapping, CIs from the seeds, and
``qchunk plot --reference qam`` / ``qchunk report`` with them."""

import json
from importlib import resources

import numpy as np
import pytest

from qchunk.agents.registry import agent_specs
from qchunk.cli import main
from qchunk.plotting import load_runs
from qchunk.plotting.reference import (
    draw_qam,
    qam_curves,
    qam_domain,
    qam_interval,
    qam_method,
    qam_value,
    qam_x,
)
from test_plot_report import make_run

CUBE = "cube-double-play-singletask-task{}-v0"


def test_the_release_is_shipped_in_the_package():
    assert resources.files("qchunk.resources").joinpath("qam_curves.json").is_file()
    curves = qam_curves()
    methods = {k.rsplit("/", 1)[1] for k in curves}
    places = {k.rsplit("/", 1)[0] for k in curves}
    assert len(methods) == 17 and len(places) == 61 and len(curves) == 17 * 61
    assert {"QAM", "QAM-F", "QAM-E", "FQL", "FEdit", "DSRL", "RLPD"} <= methods
    qam = curves["task/puzzle-4x4-play-singletask-task3-v0/QAM-E"]
    assert qam.seeds.shape == (12, 30) and np.allclose(qam.steps, np.arange(1, 31) * 0.05)
    rlpd = curves["domain/antmaze-giant-navigate/RLPD"]
    assert rlpd.seeds.shape == (12, 10) and np.isclose(rlpd.steps[0], 1.05) and np.isclose(rlpd.steps[-1], 1.5)
    np.testing.assert_allclose(qam.mean, qam.seeds.mean(axis=0), atol=1e-4)  # released means, 4 decimals


def test_agents_map_onto_the_release_methods():
    everywhere = {s.name: s.qam_curve for s in agent_specs() if s.qam_curve and len(s.qam_datasets) == 2}
    assert everywhere == {"qam": "QAM", "qam-f": "QAM-F", "qam-e": "QAM-E", "fedit": "FEdit", "dsrl": "DSRL",
                          "rebrac": "ReBRAC", "fbrac": "FBRAC", "ifql": "IFQL", "fawac": "FAWAC", "qsm": "QSM",
                          "dac": "DAC", "bam": "BAM", "cgql": "CGQL", "cgql-m": "CGQL-M", "cgql-l": "CGQL-L"}
    for agent, method in everywhere.items():
        for domain in ("cube-triple", "antmaze-giant", "puzzle-4x4"):
            assert qam_method(agent, domain) == method
    # FQL and RLPD ran on chunks of 5 on manipulation and on single actions on the mazes
    assert qam_method("QC-FQL", "cube-double") == "FQL" and qam_method("FQL", "cube-double") is None
    assert qam_method("FQL", "humanoidmaze-large") == "FQL" and qam_method("QC-FQL", "humanoidmaze-large") is None
    assert qam_method("RLPD-AC", "scene") == "RLPD" and qam_method("RLPD", "scene") is None
    assert qam_method("RLPD", "antmaze-large") == "RLPD"
    for label in ("QC", "BFN", "BFN-n", "FQL-n", "QC-RLPD", "QC-FQL h=10", "qam-e K=4"):
        assert qam_method(label, "cube-double") is None
    assert qam_method("QAM-E", "robomimic") is None and qam_domain("robomimic") is None
    assert qam_domain("cube-double") == "cube-double-play" and qam_domain("antmaze-large") == "antmaze-large-navigate"


def test_the_ci_is_the_stratified_bootstrap_of_the_released_seeds():
    """By hand on a tiny subset: 2 tasks, 12 seeds, 7 resamples, the last two evaluation points."""
    curves = qam_curves()
    seeds = [curves[f"task/{CUBE.format(t)}/QAM-E"].seeds[:, -2:] for t in (1, 3)]
    rng = np.random.default_rng(5)
    stats = np.zeros((7, 2))
    for task_seeds in seeds:  # per task, in task order: draw 12 seeds with replacement for each resample
        picks = rng.integers(0, 12, size=(7, 12))
        stats += np.stack([task_seeds[p].mean(axis=0) for p in picks]) / 2
    low, high = np.percentile(stats, [5, 95], axis=0)
    _, iv = qam_interval("QAM-E", "cube-double", ["task3", "task1"], n_resamples=7, confidence=0.9, seed=5)
    np.testing.assert_allclose(iv.low[-2:], low, atol=1e-12)
    np.testing.assert_allclose(iv.high[-2:], high, atol=1e-12)
    np.testing.assert_allclose(iv.point[-2:], (seeds[0].mean(0) + seeds[1].mean(0)) / 2)
    # over all five tasks the point estimate is the released domain mean
    _, five = qam_interval("QC-FQL", "cube-double", [f"task{t}" for t in range(1, 6)], n_resamples=100)
    np.testing.assert_allclose(five.point, curves["domain/cube-double-play/FQL"].mean, atol=1e-4)
    assert np.all(five.low <= five.point + 1e-12) and np.all(five.point <= five.high + 1e-12)
    end = qam_value("QAM-E", "cube-double", ["task1", "task3"], "online", 7, 0.9, 5)
    assert float(end.point) == pytest.approx(iv.point[-1]) and float(end.low) == pytest.approx(low[-1])
    assert qam_value("RLPD", "antmaze-large", ["task1"], "offline") is None  # online only
    assert qam_interval("QC", "cube-double", ["task1"]) is None


def test_the_release_x_axis_onto_a_figure():
    steps = np.array([0.5, 1.0, 1.05, 1.5])
    x, keep, rescaled = qam_x(steps, 1_000_000, 500_000)
    assert not rescaled and keep.all() and np.allclose(x, [500_000, 1_000_000, 1_050_000, 1_500_000])
    x, keep, rescaled = qam_x(steps, 20_000, 10_000)  # a short run: each phase onto its own length
    assert rescaled and keep.all() and np.allclose(x, [10_000, 20_000, 21_000, 30_000])
    x, keep, rescaled = qam_x(steps, 0, 500_000)  # online-only runs: the online part from 0
    assert not rescaled and keep.tolist() == [False, False, True, True] and np.allclose(x[keep], [50_000, 500_000])


@pytest.fixture
def qam_sweep(tmp_path):
    root = tmp_path / "sweep"
    for t in (1, 2):
        for seed in range(2):
            for agent in ("qam-e", "qc-fql", "qc"):
                make_run(root, CUBE.format(t), agent, seed, offline=1_000_000, online=500_000, every=50_000,
                         level=0.8)
    return root


def test_plot_overlays_the_release_at_its_steps(qam_sweep, tmp_path, capsys):
    out = tmp_path / "fig.png"
    assert main(["plot", str(qam_sweep), "--reference", "qam", "--out", str(out), "--resamples", "200"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = out.with_suffix(".svg").read_text()
    assert "QAM release (hatched: CI)" in svg and "rescaled" not in svg
    # the series drawn for the domain panel (mean of tasks 1 and 2): the release's values at its own steps
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label = load_runs([qam_sweep / CUBE.format(1) / "qam-e"])[0].label
    fig, ax = plt.subplots()
    assert draw_qam(ax, label, "cube-double", None, [None, "task1", "task2"], 1_000_000, 500_000, 1e6, "red",
                    200, 0.95, 0) is False
    xy = ax.lines[-1].get_xydata()
    seeds = [qam_curves()[f"task/{CUBE.format(t)}/QAM-E"].seeds for t in (1, 2)]
    np.testing.assert_allclose(xy[:, 0], np.arange(1, 31) * 0.05)  # millions: 50K .. 1.5M
    np.testing.assert_allclose(xy[:, 1], (seeds[0].mean(0) + seeds[1].mean(0)) / 2)
    assert draw_qam(ax, "QC", "cube-double", "task1", [], 1_000_000, 500_000, 1e6, "b") is False
    assert len(ax.lines) == 1  # QC has no counterpart: nothing drawn
    plt.close(fig)


def test_report_prints_the_release_next_to_ours(qam_sweep):
    assert main(["report", str(qam_sweep), "--resamples", "200", "--reference", "qam"]) == 0
    md = (qam_sweep / "report" / "report.md").read_text()
    assert "## QAM's released results next to ours" in md
    assert "| ↳ QAM release: FQL |" in md and "| ↳ QAM release: QAM-E |" in md
    summary = json.loads((qam_sweep / "report" / "summary.json").read_text())["qam"]
    assert set(summary) == {lab for lab in summary if lab != "QC"} and len(summary) == 2
    fql = next(v for k, v in summary.items() if k == "QC-FQL")["cube-double"]
    seeds = [qam_curves()[f"task/{CUBE.format(t)}/FQL"].seeds for t in (1, 2)]
    assert fql["method"] == "FQL" and fql["tasks"] == ["task1", "task2"]
    assert fql["offline"]["mean"] == pytest.approx((seeds[0][:, 19].mean() + seeds[1][:, 19].mean()) / 2)
    assert fql["online"]["mean"] == pytest.approx((seeds[0][:, -1].mean() + seeds[1][:, -1].mean()) / 2)
    assert fql["online"]["ci_low"] <= fql["online"]["mean"] <= fql["online"]["ci_high"]
    assert f"{100 * fql['online']['mean']:.0f} [{100 * fql['online']['ci_low']:.0f}, " in md
