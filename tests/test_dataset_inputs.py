"""Every array of every dataset source is checked for shape, dtype, length and finite values, and every
damaged or mistyped file is refused in one line with exit status 2: by `train` (before anything is
written) and by `data inspect`, which says "ok" exactly when `train` accepts the file (one reader and one
check serve both)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import gymnasium as gym
import h5py
import numpy as np
import pytest

from qchunk.cli import main
from test_d4rl_files import PENDULUM, d4rl_arrays, write_hdf5
from test_robomimic import write_synthetic
from test_training import QCHUNK

N = 8  # rows of d4rl_arrays()


def write_npz(path, arrays):
    np.savez(path, **arrays)
    return str(path)


def train_args(dataset, run_dir, offline_steps=10, online_steps=10):
    return ["train", "--agent", "qc", "--env", PENDULUM, "--dataset", dataset, "--preset", "quick",
            "--offline-steps", str(offline_steps), "--online-steps", str(online_steps), "--start-training", "5",
            "--horizon", "2", "--eval-episodes", "1", "--run-dir", str(run_dir), "--no-progress"]


def refused(capsys, argv, message) -> None:
    assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err, err


def refused_everywhere(capsys, tmp_path, path, message) -> None:
    """`train` and `data inspect` (with and without --env) refuse ``path`` with the same one line."""
    run_dir = tmp_path / "run"
    refused(capsys, train_args(path, run_dir), message)
    assert not run_dir.exists()
    refused(capsys, ["data", "inspect", path, "--env", PENDULUM], message)
    refused(capsys, ["data", "inspect", path], message)


BAD_ARRAYS = {
    "rewards (N, 2)": (dict(rewards=np.ones((N, 2), np.float32)),
                       "'rewards' has shape (8, 2); it must be (N,), one value per step"),
    "observations 3-D": (dict(observations=np.zeros((N, 4, 1), np.float32)),
                         "'observations' has shape (8, 4, 1); it must be (N, d)"),
    "actions 1-D": (dict(actions=np.zeros(N, np.float32)), "'actions' has shape (8,); it must be (N, d)"),
    "rewards of text": (dict(rewards=np.array([b"1"] * N)), "'rewards' holds |S1, not numbers"),
    "terminals of 2": (dict(terminals=np.full(N, 2, np.int64)), "'terminals' must hold only 0 and 1"),
    "timeouts short": (dict(timeouts=np.zeros(N - 1, bool)), "'timeouts' has 7 rows, the other arrays 8"),
    "next_observations inf": (dict(next_observations=np.full((N, 4), np.inf, np.float32)),
                              "'next_observations' holds NaN or inf (32 values, first at row 0)"),
    "next_observations narrow": (dict(next_observations=np.zeros((N, 3), np.float32)),
                                 "'next_observations' has shape (8, 3) but 'observations' (8, 4)"),
}


@pytest.mark.parametrize("suffix", ["npz", "hdf5"])
@pytest.mark.parametrize("case", list(BAD_ARRAYS))
def test_every_array_of_a_d4rl_file_is_checked(tmp_path, capsys, suffix, case):
    changes, message = BAD_ARRAYS[case]
    arrays = d4rl_arrays(**changes)
    path = (write_npz if suffix == "npz" else write_hdf5)(tmp_path / f"bad.{suffix}", arrays)
    refused_everywhere(capsys, tmp_path, path, message)


def _damaged(tmp_path, suffix, how) -> str:
    good = tmp_path / f"good.{suffix}"
    (write_npz if suffix == "npz" else write_hdf5)(good, d4rl_arrays())
    path = tmp_path / f"{how}.{suffix}"
    data = good.read_bytes()
    path.write_bytes({"empty": b"", "cut": data[: len(data) // 2], "text": b"observations,actions\n1,2\n"}[how])
    return str(path)


@pytest.mark.parametrize("suffix", ["npz", "hdf5"])
@pytest.mark.parametrize("how", ["empty", "cut", "text"])
def test_empty_cut_and_mistyped_files_are_one_line(tmp_path, capsys, suffix, how):
    refused_everywhere(capsys, tmp_path, _damaged(tmp_path, suffix, how), "cannot read the file")


def test_an_hdf5_group_where_an_array_belongs_is_one_line(tmp_path, capsys):
    path = tmp_path / "group.hdf5"
    with h5py.File(path, "w") as f:
        for k, v in d4rl_arrays().items():
            if k != "rewards":
                f[k] = v
        f.create_group("rewards")
    refused_everywhere(capsys, tmp_path, str(path), "'rewards' is not an array (an hdf5 Group)")


def test_inspect_says_ok_exactly_for_a_file_train_accepts(tmp_path, capsys):
    path = write_npz(tmp_path / "good.npz", d4rl_arrays())
    assert main(["data", "inspect", path, "--env", PENDULUM]) == 0
    assert capsys.readouterr().out.strip().endswith("ok")
    run_dir = tmp_path / "run"
    assert main(train_args(path, run_dir, offline_steps=4, online_steps=0)) == 0
    assert (run_dir / "result.json").is_file()


def test_inspect_reads_data_collect_output_as_train_does(tmp_path, capsys):
    out = tmp_path / "collected.npz"
    assert main(["data", "collect", "--env", PENDULUM, "--episodes", "2", "--seed", "0", "--out", str(out)]) == 0
    capsys.readouterr()
    with np.load(out) as z:
        rows, ends = len(z["observations"]), int(z["terminals"].sum() + z["timeouts"].sum())
    assert ends == 2
    # without --env: the D4RL layout is recognised (not read as OGBench's), nothing about [-1, 1]
    assert main(["data", "inspect", str(out)]) == 1  # "not checked against an environment" is a problem
    text = capsys.readouterr().out
    assert f"{rows:,} transitions" in text and "in 2 episodes" in text and "[-1, 1]" not in text
    assert "not checked against an environment" in text
    assert main(["data", "inspect", str(out), "--env", PENDULUM]) == 0
    text = capsys.readouterr().out
    assert f"{rows:,} transitions" in text and text.strip().endswith("ok")


# ------------------------------------------------------------------------------------------ OGBench npz
@pytest.mark.parametrize(("change", "message"), [
    ("qpos", "'qpos' has shape (603,); it must be (N, d)"),
    ("terminals", "'terminals' must hold only 0 and 1"),
    ("actions", "'actions' holds NaN or inf"),
    ("observations", "'observations' holds <U1, not numbers"),
])
def test_every_array_of_an_ogbench_file_is_checked(tiny_ogbench_dir, tmp_path, capsys, change, message):
    from conftest import TINY_TASK

    with np.load(tiny_ogbench_dir / "puzzle-3x3-play-v0.npz") as z:
        arrays = {k: z[k] for k in z.files}
    n = len(arrays["observations"])
    arrays[change] = {"qpos": np.zeros(n, np.float32), "terminals": np.where(arrays["terminals"] > 0, 3, 0),
                      "actions": np.where(np.arange(n)[:, None] == 5, np.nan, arrays["actions"]),
                      "observations": np.full((n, 2), "x")}[change]
    bad = tmp_path / "data" / "puzzle-3x3-play-v0.npz"
    bad.parent.mkdir()
    np.savez(bad, **arrays)
    run_dir = tmp_path / "run"
    refused(capsys, ["train", "--agent", "qc-fql", "--env", TINY_TASK, "--dataset-dir", str(bad.parent),
                     "--run-dir", str(run_dir)], message)
    assert not run_dir.exists()
    refused(capsys, ["data", "inspect", str(bad)], message)


@pytest.mark.parametrize("how", ["empty", "cut", "text"])
def test_damaged_ogbench_files_are_one_line(tiny_ogbench_dir, tmp_path, capsys, how):
    src = (tiny_ogbench_dir / "puzzle-3x3-play-v0.npz").read_bytes()
    bad = tmp_path / "puzzle-3x3-play-v0.npz"
    bad.write_bytes({"empty": b"", "cut": src[: len(src) // 2], "text": b"not an archive\n"}[how])
    refused(capsys, ["data", "inspect", str(bad)], "cannot read the file")


# --------------------------------------------------------------------------------------------- robomimic
@pytest.mark.parametrize(("change", "message"), [
    ("dones", "data/demo_1: 'dones' must hold only 0 and 1"),
    ("actions", "data/demo_1: 'actions' holds NaN or inf"),
    ("rewards", "data/demo_1: 'rewards' has shape (20, 2)"),
    ("object", "data/demo_1/obs: 'object' is not an array (an hdf5 Group)"),
])
def test_every_array_of_a_robomimic_file_is_checked(tmp_path, change, message):
    from qchunk.data.robomimic_data import read_robomimic
    from qchunk.errors import QchunkError

    path = write_synthetic(tmp_path / "lift.hdf5", ["demo_0", "demo_1"], [20, 20])
    with h5py.File(path, "r+") as f:
        g = f["data/demo_1"]
        if change == "object":
            del g["obs/object"]
            g.create_group("obs/object")
        else:
            old = g[change][()]
            del g[change]
            g[change] = {"dones": np.full_like(old, 5), "actions": np.where(old > 0.5, np.inf, old),
                         "rewards": np.ones((20, 2))}[change]
    with pytest.raises(QchunkError) as e:
        read_robomimic(path)
    assert message in str(e.value) and "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------------ Minari
@pytest.fixture(scope="module")
def minari_store(tmp_path_factory):
    from minari import DataCollector

    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        env = DataCollector(gym.make("InvertedPendulum-v5", max_episode_steps=10))
        env.action_space.seed(0)
        for ep in range(3):
            env.reset(seed=ep)
            done = False
            while not done:
                _, _, terminated, truncated, _ = env.step(env.action_space.sample())
                done = terminated or truncated
        with pytest.warns(UserWarning):
            env.create_dataset(dataset_id="qchunk-test/inputs/good-v0", algorithm_name="random",
                               author="qchunk tests", author_email="n/a", code_permalink="n/a", description="x")
    return root


@pytest.mark.parametrize(("change", "message"), [
    ("rewards", "'rewards' has shape"),
    ("actions", "'actions' holds NaN or inf"),
    ("terminations", "'terminations' must hold only 0 and 1"),
])
def test_every_array_of_a_minari_dataset_is_checked(minari_store, tmp_path, capsys, monkeypatch, change, message):
    store = tmp_path / "store"
    shutil.copytree(minari_store, store)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(store))
    (store / "qchunk-test" / "inputs" / "good-v0").rename(store / "qchunk-test" / "inputs" / "bad-v0")
    files = list((store / "qchunk-test" / "inputs" / "bad-v0" / "data").glob("*.hdf5"))
    assert len(files) == 1
    with h5py.File(files[0], "r+") as f:
        g = f[sorted(k for k in f if k.startswith("episode_"))[1]]
        old = g[change][()]
        del g[change]
        if change == "rewards":
            g[change] = np.ones((len(old), 2))
        elif change == "actions":
            g[change] = np.full(old.shape, np.nan, np.float32)
        else:
            g[change] = np.full(len(old), 7)
    run_dir = tmp_path / "run"
    source = "minari:qchunk-test/inputs/bad-v0"
    refused(capsys, ["train", "--agent", "qc", "--env", PENDULUM, "--dataset", source, "--run-dir", str(run_dir)],
            message)
    assert not run_dir.exists()
    refused(capsys, ["data", "inspect", source, "--env", PENDULUM], message)


def test_a_minari_id_without_its_version_is_one_line(minari_store, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(minari_store))
    refused(capsys, ["data", "collect", "--env", PENDULUM, "--episodes", "1", "--out", "minari:qchunk-test/nov"],
            "a Minari id looks like namespace/name-v0")
    refused(capsys, ["train", "--agent", "qc", "--env", PENDULUM, "--dataset", "minari:qchunk-test/inputs/good",
                     "--run-dir", str(tmp_path / "run")], "a Minari id ends in its version")
    refused(capsys, ["data", "inspect", "minari:qchunk-test/inputs/good"], "a Minari id ends in its version")


# ------------------------------------------------------------------------------------------- task modules
@pytest.mark.parametrize(("source", "kind"), [
    ("raise RuntimeError('no licence server')", "RuntimeError: no licence server"),
    ("def broken(:\n", "SyntaxError"),
    ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
    ("from qchunk.tasks import register\nregister('my-task', env=None)\n", "cannot import 'bad_tasks'"),
])
def test_a_task_module_that_fails_at_import_is_one_line(tmp_path, source, kind):
    (tmp_path / "bad_tasks.py").write_text(source)
    env = {"QCHUNK_TASKS": "bad_tasks", "PYTHONPATH": f"{tmp_path}:{':'.join(sys.path)}", "PATH": "/usr/bin:/bin"}
    p = subprocess.run([QCHUNK, "train", "--agent", "qc", "--env", "my-task", "--run-dir", str(tmp_path / "run")],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 2, p.stderr
    err = p.stderr.strip()
    assert err.startswith("error: QCHUNK_TASKS='bad_tasks': cannot import 'bad_tasks' (") and "\n" not in err, err
    assert kind in err
    assert not (tmp_path / "run").exists()
