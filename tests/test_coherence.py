"""Exploration statistics: temporal coherence (hand-computed, across resets), the streaming tracker, the
trajectory log, and `qchunk analyze trajectories` (reading the arm of an env: tests/test_probes.py)."""

import json

import numpy as np
import pytest

from qchunk.analysis import (
    CoherenceTracker,
    TrajectoryLog,
    coherence,
    load_online_states,
    log_coherence,
)
from qchunk.cli import main
from qchunk.errors import QchunkError


def _path(rng):
    """21 steps; samples at 0, 5, 10, 15, 20; resets at rows 12 and 15; junk everywhere else."""
    p = rng.normal(size=(21, 3)) * 100  # rows that are not samples must not matter
    p[0], p[5], p[10] = (0, 0, 0), (3, 4, 0), (3, 4, 12)
    p[15], p[20] = (50, 50, 50), (50, 50, 52)
    starts = np.zeros(21, bool)
    starts[[0, 12, 15]] = True
    return p, starts


def test_coherence_matches_hand_computed_value_across_resets():
    p, starts = _path(np.random.default_rng(0))
    # pairs (0,5): 5; (5,10): 12; (10,15): crosses the resets at 12 and 15 -> dropped; (15,20): 2
    assert coherence(p, every=5, episode_starts=starts) == pytest.approx((5 + 12 + 2) / 3)
    # one long episode: the pair (10,15) counts too
    assert coherence(p, every=5) == pytest.approx((5 + 12 + np.linalg.norm([47, 46, 38]) + 2) / 4)
    # a reset exactly at the later sample cuts the pair; a reset at the earlier one does not
    only15 = np.zeros(21, bool)
    only15[15] = True
    assert coherence(p, 5, only15) == pytest.approx((5 + 12 + 2) / 3)
    only10 = np.zeros(21, bool)
    only10[10] = True
    assert coherence(p, 5, only10) == pytest.approx((5 + np.linalg.norm([47, 46, 38]) + 2) / 3)
    assert np.isnan(coherence(p[:5], every=5))  # a single sample: no pair
    assert coherence(p[[0, 5]], every=1) == pytest.approx(5.0)


def test_tracker_windows_partition_the_pairs_and_count_contacts():
    p, starts = _path(np.random.default_rng(1))
    tracker = CoherenceTracker(every=5)
    contacts = [None if t < 2 else t % 4 == 0 for t in range(21)]
    for t in range(13):
        tracker.observe(t, p[t], bool(starts[t]), contacts[t])
    first = tracker.window_stats()
    for t in range(13, 21):
        tracker.observe(t, p[t], bool(starts[t]), contacts[t])
    second = tracker.window_stats()
    assert first["explore/ee_step_l2"] == pytest.approx((5 + 12) / 2) and first["explore/ee_pairs"] == 2
    assert second["explore/ee_step_l2"] == pytest.approx(2.0) and second["explore/ee_pairs"] == 1
    # steps 2..12 report contact at 4, 8, 12; steps 13..20 at 16, 20
    assert first["explore/gripper_contact_frac"] == pytest.approx(3 / 11)
    assert second["explore/gripper_contact_frac"] == pytest.approx(2 / 8)
    empty = tracker.window_stats()
    assert np.isnan(empty["explore/ee_step_l2"]) and "explore/gripper_contact_frac" not in empty
    # a run's windows together equal the whole-run value
    total = (first["explore/ee_step_l2"] * 2 + second["explore/ee_step_l2"]) / 3
    assert total == pytest.approx(coherence(p, 5, starts))


def test_tracker_resumes_from_its_state_and_breaks_on_gaps():
    rng = np.random.default_rng(2)
    p = rng.normal(size=(40, 3))
    whole = CoherenceTracker(every=5)
    for t in range(40):
        whole.observe(t, p[t], t == 0)
    a = CoherenceTracker(every=5)
    for t in range(23):
        a.observe(t, p[t], t == 0)
    b = CoherenceTracker(every=1)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))  # through JSON, as in a checkpoint
    for t in range(23, 40):
        b.observe(t, p[t], False)
    assert b.window_stats() == pytest.approx(whole.window_stats())
    # a fresh tracker that starts mid-run (no state) never pairs across the gap
    gap = CoherenceTracker(every=5)
    for t in (0, 1, 2, 3, 4, 5, 15, 16, 17, 18, 19, 20):
        gap.observe(t, p[t], t == 0)
    expected = (np.linalg.norm(p[5] - p[0]) + np.linalg.norm(p[20] - p[15])) / 2
    assert gap.window_stats()["explore/ee_step_l2"] == pytest.approx(expected)


def test_trajectory_log_roundtrip_and_log_coherence(tmp_path):
    rng = np.random.default_rng(3)
    p, starts = _path(rng)
    episode = np.cumsum(starts) - 1
    log = TrajectoryLog(capacity=4)  # grows
    for t in range(21):
        log.append(t, p[t], int(episode[t]), None if t % 2 else bool(t % 4))
    log.save(tmp_path / "online_states.npz")
    data = load_online_states(tmp_path / "online_states.npz")
    assert data["ee_pos"].shape == (21, 3) and data["ee_pos"].dtype == np.float32
    np.testing.assert_array_equal(data["env_step"], np.arange(21))
    np.testing.assert_array_equal(data["episode"], episode)
    assert list(data["contact"][:4]) == [0, -1, 1, -1] and int(data["format"]) == 1
    got = log_coherence(data["env_step"], data["ee_pos"], data["episode"], every=5)
    assert got == pytest.approx(coherence(p.astype(np.float32), 5, starts), rel=1e-6)
    resumed = TrajectoryLog.load(tmp_path / "online_states.npz", before_step=12)
    assert len(resumed) == 12
    resumed.append(12, p[12], 1)
    assert len(resumed.arrays()["env_step"]) == 13
    with pytest.raises(QchunkError, match="does not exist"):
        load_online_states(tmp_path / "missing.npz")


def _synthetic_run(run_dir, agent, smooth, seed):
    """An online_states.npz of 600 steps (episodes of 250): smooth strokes or per-step jitter."""
    rng = np.random.default_rng(seed)
    log = TrajectoryLog()
    pos = np.array([0.45, 0.0, 0.25])
    vel = np.zeros(3)
    for t in range(600):
        if t % 250 == 0:
            pos = np.array([0.45, 0.0, 0.25])
        if smooth and t % 5 == 0:
            vel = rng.normal(size=3) * 0.02
        step = vel if smooth else rng.normal(size=3) * 0.02
        pos = np.clip(pos + step, [0.25, -0.35, 0.02], [0.65, 0.35, 0.45])
        log.append(t, pos, t // 250)
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"train": {"agent": agent}}))
    log.save(run_dir / "online_states.npz")


def test_analyze_trajectories_writes_png_and_svg(tmp_path, capsys):
    _synthetic_run(tmp_path / "qc", "qc", smooth=True, seed=0)
    _synthetic_run(tmp_path / "bfn", "bfn", smooth=False, seed=1)
    out = tmp_path / "fig" / "traj.png"
    assert main(["analyze", "trajectories", str(tmp_path / "qc"), str(tmp_path / "bfn"), "--steps", "0-500",
                 "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000 and out.with_suffix(".svg").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "qc (qc): 500 steps, 2 episode(s)" in printed and "bfn (bfn)" in printed
    # default output next to the first run, projections view
    assert main(["analyze", "trajectories", str(tmp_path / "qc" / "online_states.npz"), "--view", "projections",
                 "--labels", "QC"]) == 0
    assert (tmp_path / "qc" / "analysis" / "trajectories_0-1000.png").stat().st_size > 10_000


@pytest.mark.parametrize("argv, message", [
    (["--steps", "1000-10"], "START < END"),
    (["--steps", "abc"], "START-END"),
    (["--steps", "700-800"], "no online step in 700-800"),
    (["--labels", "a", "b"], "one label per RUN_DIR"),
])
def test_analyze_trajectories_bad_input_is_one_line(tmp_path, capsys, argv, message):
    _synthetic_run(tmp_path / "qc", "qc", smooth=True, seed=0)
    assert main(["analyze", "trajectories", str(tmp_path / "qc"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_analyze_trajectories_without_states_file(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["analyze", "trajectories", str(tmp_path / "run")]) == 2
    assert "--save-online-states" in capsys.readouterr().err
