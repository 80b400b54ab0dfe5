"""check_dataset: a dataset is compared with the environment's spaces before any work (one-line errors)."""

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from qchunk.data import Dataset, ReplayBuffer
from qchunk.data.check import check_dataset, check_task_dataset
from qchunk.errors import QchunkError

OBS = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
QCHUNK = str(Path(sys.executable).with_name("qchunk"))


def _arrays(n_actions: int = 2) -> dict[str, np.ndarray]:
    """Two episodes of three transitions: obs (6, 2), actions (6, n_actions) in [-1, 1]."""
    obs = np.arange(12, dtype=np.float32).reshape(6, 2)
    return {
        "observations": obs,
        "actions": np.linspace(-1.0, 1.0, 6 * n_actions, dtype=np.float32).reshape(6, n_actions),
        "rewards": np.array([0, 0, 1, 0, 0, 1], np.float32),
        "terminals": np.array([0, 0, 1, 0, 0, 1], np.float32),
        "next_observations": obs + 1.0,
    }


def _message(data, obs=OBS, act=ACT) -> str:
    with pytest.raises(QchunkError) as e:
        check_dataset(data, obs, act, source="data/x.npz", env_name="toy-v0")
    message = str(e.value)
    assert "\n" not in message and message.startswith("data/x.npz: ")
    return message


def test_fitting_dataset_passes():
    check_dataset(Dataset.from_dict(_arrays()), OBS, ACT, source="x")
    # exactly on the bounds and within the 1e-6 tolerance beyond them is fine
    a = _arrays()
    a["actions"][0] = [1.0 + 5e-7, -1.0 - 5e-7]
    check_dataset(Dataset.from_dict(a), OBS, ACT, source="x")


def test_observation_shape():
    m = _message(Dataset.from_dict(_arrays()), obs=gym.spaces.Box(-np.inf, np.inf, (3,), np.float32))
    assert "observation shape (2,)" in m and "toy-v0's observation shape (3,)" in m and "--env" in m


def test_action_shape():
    m = _message(Dataset.from_dict(_arrays(n_actions=3)))
    assert "action shape (3,) does not match toy-v0's action shape (2,)" in m and "regenerate" in m


def test_actions_out_of_bounds_counts_rows_and_reports_max():
    a = _arrays()
    a["actions"][1] = [1.5, 0.0]  # row 1 too high
    a["actions"][4] = [0.0, 1.0 + 1e-5]  # row 4 just past the tolerance
    m = _message(Dataset.from_dict(a))
    assert "2 of 6 action rows leave toy-v0's action bounds [-1, 1]" in m
    assert "max 1.5" in m and "min -1" in m and "rescale" in m


def test_per_dimension_bounds():
    act = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 2.0], np.float32))
    a = _arrays()
    a["actions"][:, 1] = 0.5  # inside [0, 2]
    check_dataset(Dataset.from_dict(a), OBS, act, source="x")
    a["actions"][2, 1] = -0.5  # below dimension 1's low bound of 0, though inside [-1, 1]
    assert "1 of 6 action rows" in _message(Dataset.from_dict(a), act=act)


def test_non_float_dtypes():
    a = _arrays()
    a["actions"] = np.zeros((6, 2), np.int64)
    m = _message(a)
    assert "'actions' are stored as int64" in m and "float32" in m
    a = _arrays()
    a["observations"] = a["observations"].astype(np.int32)
    assert "'observations' are stored as int32" in _message(a)
    # integer observations are fine for an integer (pixel) observation space
    pixels = gym.spaces.Box(0, 255, (2,), np.uint8)
    a = _arrays()
    a["observations"] = a["observations"].astype(np.uint8)
    a["next_observations"] = a["next_observations"].astype(np.uint8)
    check_dataset(a, pixels, ACT, source="x")


@pytest.mark.parametrize("key", ["observations", "actions", "rewards", "next_observations"])
def test_non_finite_values_in_raw_arrays(key):
    a = _arrays()
    a[key][3] = np.nan
    a[key][5] = np.inf
    m = _message(a)
    assert f"'{key}' holds NaN or inf in 2 rows (first at row 3)" in m


def test_non_finite_values_in_a_replay_buffer():
    # A Dataset refuses NaN at construction, but a replay buffer's rows come from the environment unchecked.
    buf = ReplayBuffer(4, 2, 2)
    buf.add(np.zeros(2), np.zeros(2), 0.0, False, 1.0, np.zeros(2))
    buf.add(np.zeros(2), np.zeros(2), float("nan"), True, 1.0, np.zeros(2))
    assert "'rewards' holds NaN or inf in 1 rows (first at row 1)" in _message(buf)


def test_last_transition_must_end_an_episode():
    a = _arrays()
    a["terminals"][-1] = 0.0
    m = _message(Dataset.from_dict(a))
    assert "last transition does not end an episode" in m and "terminals[-1] == 0" in m


def test_raw_arrays_without_rewards_are_checked_on_what_they_have():
    a = _arrays()
    del a["rewards"], a["next_observations"]
    check_dataset(a, OBS, ACT, source="x")
    a["actions"] = a["actions"][:, :1]
    assert "action shape (1,)" in _message(a)


def test_tiny_ogbench_dataset_fits_its_env(tiny_ogbench_dir):
    from qchunk.data import load_ogbench
    from qchunk.data.ogbench_data import read_npz
    from qchunk.envs import make_env
    from qchunk.tasks import get_task

    task = get_task("puzzle-3x3-play-singletask-task2-v0")
    dataset = load_ogbench(task, tiny_ogbench_dir)
    env = make_env(task)
    try:
        check_task_dataset(dataset, env)
        check_task_dataset(read_npz(tiny_ogbench_dir / "puzzle-3x3-play-v0.npz"), env, source="raw")
        # the same data with the actions of another arm (3 wide) is refused, naming the file
        arrays = dataset.arrays()
        arrays["actions"] = arrays["actions"][:, :3]
        with pytest.raises(QchunkError, match=r"puzzle-3x3-play-v0\.npz: action shape \(3,\) does not match "
                                              r"puzzle-3x3-singletask-task2-v0's action shape \(5,\)"):
            check_task_dataset(Dataset.from_dict(arrays, source=dataset.source), env)
    finally:
        env.close()


def _write_narrow_copy(tiny_ogbench_dir: Path, out_dir: Path, width: int = 3) -> Path:
    """The tiny dataset in the official OGBench layout with its actions cut to ``width`` columns."""
    src = tiny_ogbench_dir / "puzzle-3x3-play-v0.npz"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("puzzle-3x3-play-v0.npz", "puzzle-3x3-play-v0-val.npz"):
        with np.load(tiny_ogbench_dir / name) as f:
            arrays = {k: f[k] for k in f.files}
        arrays["actions"] = arrays["actions"][:, :width]
        np.savez_compressed(out_dir / name, **arrays)
    assert src.is_file()
    return out_dir / "puzzle-3x3-play-v0.npz"


def _inspect(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([QCHUNK, "data", "inspect", *args], capture_output=True, text=True, timeout=300)


def test_cli_inspect_reports_action_shape_mismatch(tiny_ogbench_dir, tmp_path):
    path = _write_narrow_copy(tiny_ogbench_dir, tmp_path / "narrow")
    r = _inspect(str(path), "--no-relabel")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "action shape (3,)" in lines[0] and "(5,)" in lines[0]
    assert str(path) in lines[0]


@pytest.mark.slow
def test_cli_inspect_with_env_option(tiny_ogbench_dir, tmp_path):
    # A file name that names no task: only --env tells inspect what to check against.
    good = tmp_path / "mine.npz"
    with np.load(tiny_ogbench_dir / "puzzle-3x3-play-v0.npz") as f:
        arrays = {k: f[k] for k in f.files}
    np.savez_compressed(good, **arrays)
    r = _inspect(str(good), "--env", "puzzle-3x3-play-singletask-task2-v0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "checked against puzzle-3x3-play-singletask-task2-v0" in r.stdout and r.stdout.rstrip().endswith("ok")
    # cube-double's observations are wider than puzzle-3x3's: refused with one line
    r = _inspect(str(good), "--env", "cube-double-play-singletask-task1-v0")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "observation shape" in lines[0] and "cube-double" in lines[0]
    # an unknown --env is a one-line error too
    r = _inspect(str(good), "--env", "nope-v0")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_cli_inspect_ok_on_the_tiny_dataset(tiny_ogbench_dir):
    r = _inspect(str(tiny_ogbench_dir / "puzzle-3x3-play-v0.npz"), "--no-relabel")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "checked against puzzle-3x3-play-singletask-task1-v0" in r.stdout and "  ok" in r.stdout
