"""Minari datasets (``--dataset minari:<id>``): made in the test by Minari's own DataCollector on a real
gymnasium MuJoCo env in a local store under tmp (``MINARI_DATASETS_PATH``), loaded back, trained on
offline-to-online through the CLI by qc and rlpd-ac (the env built from the dataset's recorded spec), with
the normalised score in eval.csv; ``qchunk data collect``; and the bad inputs, each one line and exit 2."""

import csv
import json
import math
import sys

import gymnasium as gym
import numpy as np
import pytest

from qchunk.cli import main
from qchunk.data.tasks import load_task_data
from qchunk.tasks import get_task

DATASET = "qchunk-test/pendulum/random-v0"
REF = (5.0, 105.0)  # (random, expert) reference returns stored in the dataset


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A local Minari store holding DATASET: 30 random-policy episodes of InvertedPendulum-v5 (time limit 60)."""
    from minari import DataCollector

    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        env = DataCollector(gym.make("InvertedPendulum-v5", max_episode_steps=60))
        env.action_space.seed(0)
        for ep in range(30):
            env.reset(seed=ep)
            done = False
            while not done:
                _, _, terminated, truncated, _ = env.step(env.action_space.sample())
                done = terminated or truncated
        with pytest.warns(UserWarning):  # Minari: no separate evaluation env given
            env.create_dataset(dataset_id=DATASET, algorithm_name="random", author="qchunk tests",
                               author_email="n/a", code_permalink="n/a", description="test data",
                               ref_min_score=REF[0], ref_max_score=REF[1])
        empty = DataCollector(gym.make("InvertedPendulum-v5"))
        with pytest.warns(UserWarning):
            empty.create_dataset(dataset_id="qchunk-test/pendulum/empty-v0", algorithm_name="none",
                                 author="qchunk tests", author_email="n/a", code_permalink="n/a", description="none")
        yield root


@pytest.fixture
def in_store(store, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(store))
    return store


def test_minari_dataset_loads_back_as_transitions(in_store):
    import minari

    source = minari.load_dataset(DATASET)
    task = get_task(f"minari:{DATASET}")
    assert (task.benchmark, task.observation_dim, task.action_dim, task.episode_length) == ("minari", 4, 1, 60)
    assert task.ref_scores == REF and task.action_low == (-3.0,)
    ds = load_task_data(task).dataset
    episodes = list(source.iterate_episodes())
    assert len(ds) == source.total_steps == sum(len(e.actions) for e in episodes)
    a = ds.arrays()
    np.testing.assert_allclose(a["actions"][:, 0], np.concatenate([e.actions[:, 0] for e in episodes]) / 3, atol=1e-6)
    np.testing.assert_array_equal(a["masks"], 1 - np.concatenate([e.terminations for e in episodes]))
    ends = np.cumsum([len(e.actions) for e in episodes]) - 1
    np.testing.assert_array_equal(np.flatnonzero(a["terminals"]), ends)  # one boundary per episode
    np.testing.assert_allclose(a["next_observations"][: ends[0] + 1], episodes[0].observations[1:], rtol=1e-6)


def run_train(agent, run_dir, *extra):
    return main(["train", "--agent", agent, "--dataset", f"minari:{DATASET}", "--preset", "quick",
                 "--online-steps", "150", "--start-training", "50", "--eval-every", "150", "--eval-episodes", "3",
                 "--eval-workers", "1", "--batch-size", "32", "--actor-hidden-dims", "32", "32",
                 "--critic-hidden-dims", "32", "32", "--run-dir", str(run_dir), "--no-progress", "--no-tensorboard",
                 *extra])


def eval_rows(run_dir):
    with open(run_dir / "eval.csv", newline="") as f:
        return list(csv.DictReader(f))


def check_normalised(rows):
    assert rows
    for r in rows:
        assert math.isnan(float(r["success"]))  # InvertedPendulum reports no success
        assert float(r["normalized_score"]) == pytest.approx((float(r["return"]) - REF[0]) / (REF[1] - REF[0]))


@pytest.mark.slow
def test_qc_trains_offline_to_online_on_a_minari_dataset(in_store, tmp_path, capsys):
    run_dir = tmp_path / "qc"
    assert run_train("qc", run_dir, "--offline-steps", "150") == 0
    assert "Normalised score (0 random, 1 expert) over 3 episodes" in capsys.readouterr().out
    rows = eval_rows(run_dir)
    assert [r["phase"] for r in rows] == ["offline", "online"]
    check_normalised(rows)
    assert json.loads((run_dir / "config.json").read_text())["train"]["env"] == f"minari:{DATASET}"
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "fig.png"), "--resamples", "50"]) == 0
    assert (tmp_path / "fig.png").stat().st_size > 0  # the plot draws the normalised score


@pytest.mark.slow
def test_rlpd_ac_trains_online_with_a_minari_dataset(in_store, tmp_path):
    run_dir = tmp_path / "rlpd-ac"
    assert run_train("rlpd-ac", run_dir) == 0
    rows = eval_rows(run_dir)
    assert rows[-1]["phase"] == "online" and int(rows[-1]["env_steps"]) == 150
    check_normalised(rows)


def test_collect_random_episodes_into_minari_and_a_file(in_store, tmp_path, capsys):
    assert main(["data", "collect", "--env", "gym:InvertedPendulum-v5", "--episodes", "4", "--episode-length", "20",
                 "--out", "minari:qchunk-test/pendulum/collected-v0", "--ref-min-score", "1",
                 "--ref-max-score", "20"]) == 0
    assert "4 episodes" in capsys.readouterr().out
    task = get_task("minari:qchunk-test/pendulum/collected-v0")
    assert (task.episode_length, task.ref_scores) == (20, (1.0, 20.0))
    ds = load_task_data(task).dataset
    assert int(ds.arrays()["terminals"].sum()) == 4 and np.abs(ds.arrays()["actions"]).max() <= 1.0
    path = tmp_path / "random.npz"
    assert main(["data", "collect", "--env", "gym:InvertedPendulum-v5", "--episodes", "3", "--out", str(path)]) == 0
    raw = np.load(path)
    assert raw["actions"].min() >= -3 and raw["actions"].max() <= 3 and raw["actions"].max() > 1  # raw units
    assert int(raw["terminals"].sum() + raw["timeouts"].sum()) == 3
    assert main(["data", "inspect", str(path), "--env", "gym:InvertedPendulum-v5"]) == 0
    # a Minari id that exists already is refused before any episode runs
    assert main(["data", "collect", "--env", "gym:InvertedPendulum-v5", "--out", f"minari:{DATASET}"]) == 2
    assert "exists already" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--dataset", "minari:qchunk-test/pendulum/nothing-v0"],
     "unknown Minari dataset 'qchunk-test/pendulum/nothing-v0'"),
    (["--dataset", "minari:qchunk-test/pendulum/empty-v0"], "the Minari dataset has no episodes"),
    (["--env", "gym:InvertedPendulm-v5", "--dataset", f"minari:{DATASET}"],
     "unknown gymnasium id 'InvertedPendulm-v5'"),
])
def test_bad_sources_are_one_line_exit_2_and_nothing_written(in_store, tmp_path, capsys, args, message):
    run_dir = tmp_path / "run"
    assert main(["train", "--agent", "qc", *args, "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not run_dir.exists()


def test_missing_minari_extra_is_one_line(in_store, tmp_path, capsys, monkeypatch):
    get_task.cache_clear()
    monkeypatch.setitem(sys.modules, "minari", None)  # `import minari` now fails as if it were not installed
    assert main(["train", "--dataset", f"minari:{DATASET}", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "need the minari package; pip install minari" in err and "\n" not in err
    assert not (tmp_path / "run").exists()
    get_task.cache_clear()
