"""Tests of qchunk.datagen.ogbench: local OGBench play-dataset generation with OGBench's plan oracles.

Episodes are few and short (``episode_steps`` 101 instead of the official 1001) to keep the suite fast.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import qchunk.datagen.ogbench as gen
from qchunk.datagen.ogbench import generate_ogbench
from qchunk.errors import QchunkError
from qchunk.tasks import DOMAINS, get_task

STEPS = 101
PUZZLE = "puzzle-3x3-play-v0"
KEYS = ["observations", "actions", "terminals", "qpos", "qvel"]


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _leftovers(directory: Path) -> list[str]:
    """Temp files that an interrupted atomic write could leave behind."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".") or p.suffix == ".tmp")


def _check_layout(train: dict, episodes: int, steps: int, buttons: bool) -> None:
    expected = KEYS + (["button_states"] if buttons else [])
    assert list(train) == expected
    n = episodes * steps
    for k, v in train.items():
        assert len(v) == n, k
    assert train["observations"].ndim == 2 and train["observations"].dtype == np.float32
    assert train["actions"].shape == (n, 5) and train["actions"].dtype == np.float32
    assert np.abs(train["actions"]).max() <= 1.0
    assert train["terminals"].dtype == np.bool_
    np.testing.assert_array_equal(np.flatnonzero(train["terminals"]), np.arange(1, episodes + 1) * steps - 1)
    assert train["qpos"].dtype == train["qvel"].dtype == np.float32
    for k in ("observations", "actions", "qpos", "qvel"):
        assert np.isfinite(train[k]).all(), k
    # observations[t] and qpos[t] are both the state *before* action t: the arm joints (the first six
    # entries of both) agree exactly.
    np.testing.assert_array_equal(train["observations"][:, :6], train["qpos"][:, :6])
    if buttons:
        assert train["button_states"].dtype == np.int64


@pytest.fixture(scope="module")
def puzzle(tmp_path_factory):
    """puzzle-3x3: 3 training episodes (so 1 validation episode) of 101 steps, one process, seed 0."""
    out = tmp_path_factory.mktemp("puzzle")
    np.random.seed(1234)  # noqa: NPY002  (checks that generation leaves the global generator alone)
    before = np.random.get_state()  # noqa: NPY002
    train_path, val_path = generate_ogbench(PUZZLE, episodes=3, seed=0, out_dir=out, workers=1,
                                            episode_steps=STEPS, progress=False)
    after = np.random.get_state()  # noqa: NPY002
    kept = all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    return {"out": out, "train_path": train_path, "val_path": val_path, "train": _load(train_path),
            "val": _load(val_path), "global_state_kept": kept}


def test_puzzle_files_have_the_official_layout(puzzle):
    assert puzzle["train_path"] == puzzle["out"] / f"{PUZZLE}.npz"
    assert puzzle["val_path"] == puzzle["out"] / f"{PUZZLE}-val.npz"
    _check_layout(puzzle["train"], episodes=3, steps=STEPS, buttons=True)
    # Fewer than 10 episodes: the validation split is max(1, 3 // 10) = 1 episode.
    _check_layout(puzzle["val"], episodes=1, steps=STEPS, buttons=True)
    train = puzzle["train"]
    assert train["observations"].shape[1] == puzzle["val"]["observations"].shape[1]
    assert train["button_states"].shape[1] == 9 and set(np.unique(train["button_states"])) <= {0, 1}
    assert _leftovers(puzzle["out"]) == []
    assert puzzle["global_state_kept"]


def test_generated_file_loads_and_relabels_with_ogbench(puzzle):
    import ogbench

    env, train, val = ogbench.make_env_and_datasets("puzzle-3x3-play-singletask-task2-v0",
                                                    dataset_path=str(puzzle["train_path"]))
    env.close()
    # Transitions that cross an episode end are dropped by OGBench's loader: one per episode.
    assert len(train["observations"]) == 3 * (STEPS - 1)
    assert len(val["observations"]) == STEPS - 1
    for data in (train, val):
        assert np.isfinite(data["rewards"]).all()
        assert data["rewards"].min() >= -9 and data["rewards"].max() <= 0  # minus the wrong buttons (of 9)
        assert set(np.unique(data["masks"])) <= {0.0, 1.0}


@pytest.mark.slow
def test_same_seed_is_identical_and_another_seed_differs(puzzle, tmp_path):
    again, _ = generate_ogbench(PUZZLE, episodes=3, seed=0, out_dir=tmp_path / "a", workers=1,
                                episode_steps=STEPS, progress=False)
    other, _ = generate_ogbench(PUZZLE, episodes=3, seed=1, out_dir=tmp_path / "b", workers=1,
                                episode_steps=STEPS, progress=False)
    again, other = _load(again), _load(other)
    for k, v in puzzle["train"].items():
        np.testing.assert_array_equal(again[k], v, err_msg=k)
    assert not np.array_equal(other["actions"], puzzle["train"]["actions"])
    assert not np.array_equal(other["observations"], puzzle["train"]["observations"])


@pytest.mark.slow
def test_worker_count_does_not_change_the_data(puzzle, tmp_path):
    train_path, val_path = generate_ogbench(PUZZLE, episodes=3, seed=0, out_dir=tmp_path, workers=2,
                                            episode_steps=STEPS, progress=False)
    for path, ref in ((train_path, puzzle["train"]), (val_path, puzzle["val"])):
        data = _load(path)
        for k, v in ref.items():
            np.testing.assert_array_equal(data[k], v, err_msg=f"{path.name}:{k}")


def test_single_task_name_generates_its_domains_dataset_cube_double(tmp_path, capsys):
    train_path, val_path = generate_ogbench("cube-double-play-singletask-task2-v0", episodes=1, seed=3,
                                            out_dir=tmp_path, workers=1, episode_steps=STEPS, progress=False)
    assert train_path.name == "cube-double-play-v0.npz" and val_path.name == "cube-double-play-v0-val.npz"
    train = _load(train_path)
    _check_layout(train, episodes=1, steps=STEPS, buttons=False)
    _check_layout(_load(val_path), episodes=1, steps=STEPS, buttons=False)
    assert train["qpos"].shape[1] == 14 + 2 * 7  # arm and gripper, then two free cubes
    assert capsys.readouterr().out == ""


@pytest.mark.slow
def test_scene_generates_healthy_episodes_and_retries_unhealthy_ones(tmp_path, monkeypatch):
    train_path, _ = generate_ogbench("scene-play-v0", episodes=1, seed=0, out_dir=tmp_path / "a", workers=1,
                                     episode_steps=STEPS, progress=False)
    train = _load(train_path)
    _check_layout(train, episodes=1, steps=STEPS, buttons=True)
    assert train["button_states"].shape[1] == 2
    assert gen._scene_is_healthy(train["qpos"])

    # The first attempt of every episode is judged unhealthy: it is thrown away and retried with new seeds.
    verdicts = []

    def first_attempt_unhealthy(qpos):
        verdicts.append(len(verdicts) % 2 == 1)
        return verdicts[-1]

    monkeypatch.setattr(gen, "_scene_is_healthy", first_attempt_unhealthy)
    retried, _ = generate_ogbench("scene-play-v0", episodes=1, seed=0, out_dir=tmp_path / "b", workers=1,
                                  episode_steps=STEPS, progress=False)
    assert verdicts == [False, True, False, True]  # training episode, then validation episode
    retried = _load(retried)
    _check_layout(retried, episodes=1, steps=STEPS, buttons=True)
    assert not np.array_equal(retried["actions"], train["actions"])


def test_scene_gives_up_after_max_attempts(tmp_path, monkeypatch):
    monkeypatch.setattr(gen, "_scene_is_healthy", lambda qpos: False)
    monkeypatch.setattr(gen, "MAX_ATTEMPTS", 2)
    with pytest.raises(RuntimeError, match="unhealthy 2 times"):
        generate_ogbench("scene-play-v0", episodes=1, out_dir=tmp_path, workers=1, episode_steps=5,
                         progress=False)
    assert list(tmp_path.iterdir()) == []


def test_scene_health_check():
    qpos = np.zeros((4, 25))
    qpos[:, 14:17] = [0.4, 0.0, 0.02]  # on the table, in view
    assert gen._scene_is_healthy(qpos)
    right = qpos.copy()
    right[2, 15] = 0.29
    assert not gen._scene_is_healthy(right)
    in_drawer = qpos.copy()
    in_drawer[2, 15:17] = [-0.35, 0.07]
    assert gen._scene_is_healthy(in_drawer)
    left = qpos.copy()
    left[2, 15:17] = [-0.35, 0.02]
    assert not gen._scene_is_healthy(left)


def test_failed_write_leaves_no_complete_looking_file(tmp_path, monkeypatch):
    stale = tmp_path / f"{PUZZLE}.npz"
    stale.write_bytes(b"an old training file")
    calls = []

    def failing_savez(f, **arrays):
        calls.append(sorted(arrays))
        f.write(b"PK\x03\x04 half a zip")
        if len(calls) == 2:  # validation is written first, then training: fail on training
            raise OSError("disk full")
        f.write(b" rest")

    monkeypatch.setattr(np, "savez_compressed", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        generate_ogbench(PUZZLE, episodes=1, out_dir=tmp_path, workers=1, episode_steps=5, progress=False,
                         overwrite=True)  # replacing the old file was asked for
    assert len(calls) == 2
    # The stale training file is gone (it must not pair with the new validation file) and no temp remains.
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{PUZZLE}-val.npz"]


def test_failed_episode_writes_nothing(tmp_path, monkeypatch):
    original = gen._EpisodeRunner.episode

    def episode(self, index):
        if index == 1:
            raise RuntimeError("simulated crash")
        return original(self, index)

    monkeypatch.setattr(gen._EpisodeRunner, "episode", episode)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate_ogbench(PUZZLE, episodes=2, out_dir=tmp_path, workers=1, episode_steps=5, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_failing_worker_process_writes_nothing(tmp_path):
    # A task value whose domain's env id does not exist: every spawned worker fails to build its env.
    bogus = dataclasses.replace(get_task(PUZZLE), domain=dataclasses.replace(DOMAINS["puzzle-3x3"],
                                                                              env_id="no-such-env-v0"))
    with pytest.raises(Exception, match="no-such-env"):
        generate_ogbench(bogus, episodes=2, out_dir=tmp_path, workers=2, episode_steps=5, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": "puzzle-9x9-play-v0"}, "unknown OGBench task"),
        ({"task": "antmaze-large-navigate-v0"}, "cannot be generated here: OGBench makes it with pretrained expert"),
        ({"task": "antsoccer-arena-navigate-v0"}, "unknown OGBench task"),
        ({"task": "lift-mh-low_dim"}, "not an OGBench task.*qchunk data robomimic lift"),
        ({"task": 3}, "the dataset name must be a string"),
        ({"episodes": 0}, "episodes must be an integer >= 1"),
        ({"episodes": 2.5}, "episodes must be an integer >= 1"),
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"episode_steps": 1}, "episode_steps must be an integer >= 2"),
        ({"seed": -1}, "seed must be an integer >= 0"),
    ],
)
def test_bad_input_raises_one_line_error(tmp_path, kwargs, match):
    args = {"task": PUZZLE, "episodes": 1, "out_dir": tmp_path, "workers": 1, "episode_steps": 5,
            "progress": False, **kwargs}
    with pytest.raises(QchunkError, match=match) as info:
        generate_ogbench(**args)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_out_dir_raises(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(QchunkError, match="cannot write to the output directory") as info:
        generate_ogbench(PUZZLE, episodes=1, out_dir=not_a_dir / "data", workers=1, episode_steps=5,
                         progress=False)
    assert "\n" not in str(info.value)


def test_defaults_are_the_official_ones(monkeypatch, tmp_path):
    seen = {}

    def fake_run(config, n, workers, progress, on_episode):
        seen.update(config=config, n=n, workers=workers)
        raise KeyboardInterrupt  # stop before any env is built or file written

    monkeypatch.setattr(gen, "_run_episodes", fake_run)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(gen.os, "cpu_count", lambda: 7)
    with pytest.raises(KeyboardInterrupt):
        generate_ogbench("cube-triple-play-singletask-task3-v0")
    assert seen["n"] == 3000 + 300 and seen["workers"] == 7
    assert seen["config"].episode_steps == 1001 and seen["config"].seed == 0
    assert (tmp_path / ".ogbench" / "data").is_dir()
    with pytest.raises(KeyboardInterrupt):
        generate_ogbench("puzzle-3x3-play-v0")
    assert seen["n"] == 1000 + 100
