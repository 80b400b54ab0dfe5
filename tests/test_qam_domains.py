"""The QAM paper's five further OGBench domains: names, environments, local generation, shards, and the
one-line error for the navigate datasets that only OGBench's expert policies can make."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from qchunk.cli import main as cli
from qchunk.data.tasks import load_task_data
from qchunk.tasks import DOMAINS, get_task

NEW = {  # domain: (task name of task 3, dataset, episode length, obs dim, action dim, sparse by default)
    "puzzle-4x4": ("puzzle-4x4-play-singletask-task3-v0", "puzzle-4x4-play-v0", 500, 83, 5, True),
    "antmaze-large": ("antmaze-large-navigate-singletask-task3-v0", "antmaze-large-navigate-v0", 1000, 29, 8, False),
    "antmaze-giant": ("antmaze-giant-navigate-singletask-task3-v0", "antmaze-giant-navigate-v0", 1000, 29, 8, False),
    "humanoidmaze-medium": ("humanoidmaze-medium-navigate-singletask-task3-v0", "humanoidmaze-medium-navigate-v0",
                            2000, 69, 21, False),
    "humanoidmaze-large": ("humanoidmaze-large-navigate-singletask-task3-v0", "humanoidmaze-large-navigate-v0",
                           2000, 69, 21, False),
}


@pytest.mark.parametrize("domain", sorted(NEW))
def test_names_parse_to_the_table_entry(domain):
    name, dataset, length, obs, act, sparse = NEW[domain]
    task = get_task(name)
    assert task.domain is DOMAINS[domain] and task.task == 3 and task.singletask
    assert (task.dataset, task.episode_length, task.observation_dim, task.action_dim, task.sparse) == \
        (dataset, length, obs, act, sparse)
    assert DOMAINS[domain].task_name(3) == name
    assert get_task(dataset).domain is DOMAINS[domain] and not get_task(dataset).singletask
    assert DOMAINS[domain].generable == (domain == "puzzle-4x4")


@pytest.mark.parametrize("name", ["antmaze-large-play-singletask-task1-v0", "puzzle-4x4-navigate-v0"])
def test_the_wrong_dataset_type_is_unknown(name):
    assert cli(["train", "--env", name, "--dry-run"]) == 2


@pytest.mark.parametrize("domain", sorted(NEW))
def test_environment_builds_resets_and_steps_offline(domain):
    from qchunk.envs import make_env

    task = get_task(DOMAINS[domain].task_name(1))
    env = make_env(task, sparse=task.sparse)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (task.observation_dim,) and obs.dtype == np.float32
        action = np.zeros(task.action_dim, np.float32)
        obs2, reward, terminated, truncated, info = env.step(action)
        assert obs2.shape == obs.shape and np.isfinite(obs2).all() and not obs2.tolist() == obs.tolist()
        # the mazes and sparse puzzle: -1 until the goal; the start is never the goal
        assert reward == -1.0 and not terminated and not truncated and not info["success"]
        assert env.spec.max_episode_steps == task.episode_length
    finally:
        env.close()


@pytest.fixture(scope="module")
def tiny_puzzle_4x4(tmp_path_factory):
    """`qchunk data ogbench puzzle-4x4-play-v0`: 1 training + 1 validation episode of 40 steps."""
    out = tmp_path_factory.mktemp("p4x4")
    assert cli(["data", "ogbench", "puzzle-4x4-play-v0", "--episodes", "1", "--episode-steps", "40",
                "--workers", "1", "--out", str(out)]) == 0
    return out


def test_puzzle_4x4_generates_locally_with_the_oracles(tiny_puzzle_4x4):
    with np.load(tiny_puzzle_4x4 / "puzzle-4x4-play-v0.npz") as f:
        assert f["observations"].shape == (40, 83) and f["actions"].shape == (40, 5)
        assert f["button_states"].shape == (40, 16)
        assert f["terminals"].sum() == 1 and f["terminals"][-1]
        assert np.abs(f["actions"]).max() <= 1.0 and np.abs(f["actions"]).max() > 0.05  # the oracle moved
    assert (tiny_puzzle_4x4 / "puzzle-4x4-play-v0-val.npz").is_file()
    data = load_task_data("puzzle-4x4-play-singletask-task1-v0", tiny_puzzle_4x4, sparse=True)
    assert data.sharded is None and data.dataset.size == 39
    assert set(np.unique(data.dataset.arrays()["rewards"])) <= {-1.0, 0.0}


def test_puzzle_4x4_reads_a_shard_directory(tiny_puzzle_4x4, tmp_path):
    """The QAM protocol's 100M set is a directory of shards (as OGBench's `puzzle-4x4-play-100m-v0`)."""
    shards = tmp_path / "puzzle-4x4-play-100m-v0"
    shards.mkdir()
    for i in range(2):
        for suffix in ("", "-val"):
            shutil.copy(tiny_puzzle_4x4 / f"puzzle-4x4-play-v0{suffix}.npz",
                        shards / f"puzzle-4x4-play-v0-00{i}{suffix}.npz")
    data = load_task_data("puzzle-4x4-play-singletask-task2-v0", shards)
    assert data.sharded is not None and [p.name for p in data.sharded.files] == [
        "puzzle-4x4-play-v0-000.npz", "puzzle-4x4-play-v0-001.npz"]
    first = data.dataset.arrays()["observations"].copy()
    assert data.sharded.next_shard().size == 39 and data.sharded.index == 1
    np.testing.assert_array_equal(data.sharded.dataset.arrays()["observations"], first)  # the same file twice


def test_navigate_data_cannot_be_generated(tmp_path, capsys):
    assert cli(["data", "ogbench", "antmaze-large-navigate-v0", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expert policies" in err and "antmaze-large-navigate-v0-val.npz" in err
    assert not (tmp_path / "d").exists()


def test_a_missing_navigate_dataset_is_one_line_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert cli(["train", "--env", "antmaze-large-navigate-singletask-task1-v0", "--preset", "quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    expected = tmp_path / "home" / ".ogbench" / "data"
    assert f"{expected / 'antmaze-large-navigate-v0.npz'} not found" in err
    assert "antmaze-large-navigate-v0-val.npz" in err and f"into {expected}" in err
    assert "https://rail.eecs.berkeley.edu/datasets/ogbench/antmaze-large-navigate-v0.npz" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no run directory, no data directory


def test_an_official_layout_navigate_file_loads_with_the_task_reward(tmp_path):
    """A file in the layout of OGBench's navigate sets (steps with qpos/qvel) is relabelled for the task's
    goal: reward 0 (and mask 0) exactly where the ant's xy is at the goal, -1 elsewhere."""
    from qchunk.data.check import check_task_dataset
    from qchunk.envs import make_env
    from qchunk.fileio import atomic_savez

    task = get_task("antmaze-large-navigate-singletask-task2-v0")
    env = make_env(task)
    obs, _ = env.reset(seed=0)
    steps = {k: [] for k in ("observations", "actions", "terminals", "qpos", "qvel")}
    rng = np.random.default_rng(0)
    for t in range(12):
        action = rng.uniform(-1, 1, task.action_dim).astype(np.float32)
        next_obs, _, _, _, info = env.step(action)
        for k, v in (("observations", obs), ("actions", action), ("terminals", t == 11), ("qpos", info["prev_qpos"]),
                     ("qvel", info["prev_qvel"])):
            steps[k].append(v)
        obs = next_obs
    goal = np.asarray(env.unwrapped.cur_goal_xy)
    arrays = {k: np.asarray(v, bool if k == "terminals" else np.float32) for k, v in steps.items()}
    arrays["qpos"][6, :2] = goal  # the ant stands on the goal at step 6
    for suffix in ("", "-val"):
        atomic_savez(tmp_path / f"antmaze-large-navigate-v0{suffix}.npz", arrays)
    data = load_task_data(task, tmp_path).dataset
    check_task_dataset(data, env)
    env.close()
    stored = data.arrays()
    assert data.size == 11 and stored["observations"].shape == (11, 29) and stored["actions"].shape == (11, 8)
    # OGBench scores transition i by the qpos of step i itself (its single-task envs judge success before the
    # step, `success_timing='pre'`): the transition out of step 6 is the successful one
    expected = np.full(11, -1.0, np.float32)
    expected[6] = 0.0
    np.testing.assert_array_equal(stored["rewards"], expected)
    np.testing.assert_array_equal(stored["masks"], -expected)  # 0 once the goal is reached


def test_a_sweep_grid_expands_a_new_domain_name_to_its_five_tasks():
    from qchunk.experiments.grid import parse_envs

    assert parse_envs(["humanoidmaze-medium"]) == [f"humanoidmaze-medium-navigate-singletask-task{t}-v0"
                                                   for t in range(1, 6)]
    assert parse_envs(["puzzle-4x4"])[4] == "puzzle-4x4-play-singletask-task5-v0"
