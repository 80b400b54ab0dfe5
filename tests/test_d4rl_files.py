"""D4RL-layout files (``--dataset FILE.hdf5|FILE.npz``) on a real gymnasium MuJoCo task: terminals vs timeouts
checked by hand-computed chunk windows, actions rescaled from the env's bounds, and bad files refused in one
line before any work."""

import h5py
import numpy as np
import pytest

from qchunk.cli import main
from qchunk.data.tasks import load_task_data
from qchunk.errors import QchunkError

PENDULUM = "gym:InvertedPendulum-v5"  # 4-dim observations, 1-dim actions in [-3, 3]

# Eight rows. Row i: s_i = (i, 0, 0, 0), raw action a_i, r_i = i + 1, s'_i = (100 + i, ...).
#   episode 0: rows 0..2, TERMINATES at 2 (terminals: mask 0)
#   episode 1: rows 3..5, cut by a time limit at 5 (timeouts: boundary, mask 1)
#   episode 2: rows 6..7, the file ends mid-episode (a boundary, mask 1)
RAW_ACTIONS = np.array([-3, -1.5, 0, 1.5, 3, 0, -3, 3], np.float32)
TERMINALS = np.array([0, 0, 1, 0, 0, 0, 0, 0], bool)
TIMEOUTS = np.array([0, 0, 0, 0, 0, 1, 0, 0], bool)


def d4rl_arrays(with_next=True, **changes):
    i = np.arange(8, dtype=np.float32)
    obs = np.zeros((8, 4), np.float32)
    obs[:, 0] = i
    arrays = {"observations": obs, "actions": RAW_ACTIONS[:, None].copy(), "rewards": i + 1,
              "terminals": TERMINALS, "timeouts": TIMEOUTS}
    if with_next:
        arrays["next_observations"] = obs + np.array([100, 0, 0, 0], np.float32)
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


def write_hdf5(path, arrays):
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    return str(path)


def test_hdf5_terminals_terminate_and_timeouts_only_end_episodes(tmp_path):
    ds = load_task_data(PENDULUM, dataset=write_hdf5(tmp_path / "d.hdf5", d4rl_arrays())).dataset
    assert len(ds) == 8
    np.testing.assert_array_equal(ds.arrays()["terminals"], [0, 0, 1, 0, 0, 1, 0, 1])  # episode ends, any reason
    np.testing.assert_array_equal(ds.arrays()["masks"], [1, 1, 0, 1, 1, 1, 1, 1])  # only the termination
    # [-3, 3] -> [-1, 1], then clipped to 1 - 1e-5 at load (qchunk.data.tasks.ACTION_CLIP_EPS)
    np.testing.assert_allclose(ds.arrays()["actions"][:, 0], np.clip(RAW_ACTIONS / 3, -1 + 1e-5, 1 - 1e-5),
                               rtol=1e-6)

    b = ds.chunks_at(np.array([1, 4, 6]), 3, 0.5)
    # window 1..3: steps 1, 2 | terminated at 2 -> no bootstrap, the next episode's reward never added
    np.testing.assert_array_equal(b["valid"][0], [1, 1, 0])
    np.testing.assert_array_equal(b["masks"][0], [1, 0, 0])
    np.testing.assert_allclose(b["rewards"][0], [2, 2 + 0.5 * 3, 2 + 0.5 * 3])
    # window 4..6: steps 4, 5 | time limit at 5 -> a boundary, but mask 1 (bootstrap from s'_5)
    np.testing.assert_array_equal(b["valid"][1], [1, 1, 0])
    np.testing.assert_array_equal(b["masks"][1], [1, 1, 1])
    np.testing.assert_allclose(b["rewards"][1], [5, 5 + 0.5 * 6, 5 + 0.5 * 6])
    np.testing.assert_array_equal(b["next_observations"][1, :, 0], [104, 105, 105])
    # window 6..8: the file's last episode ends at row 7 (cut: mask 1)
    np.testing.assert_array_equal(b["valid"][2], [1, 1, 0])
    np.testing.assert_array_equal(b["masks"][2], [1, 1, 1])
    np.testing.assert_allclose(b["actions"][2, :, 0], [-1 + 1e-5, 1 - 1e-5, 1 - 1e-5], rtol=1e-6)  # clipped at load


def test_npz_without_next_observations_drops_rows_whose_next_state_is_unknown(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, **d4rl_arrays(with_next=False))
    ds = load_task_data(PENDULUM, dataset=str(path)).dataset
    # rows 5 (a timeout) and 7 (the file's end) have no stored next state: kept rows 0, 1, 2, 3, 4, 6
    np.testing.assert_array_equal(ds.arrays()["observations"][:, 0], [0, 1, 2, 3, 4, 6])
    np.testing.assert_array_equal(ds.arrays()["terminals"], [0, 0, 1, 0, 1, 1])
    np.testing.assert_array_equal(ds.arrays()["masks"], [1, 1, 0, 1, 1, 1])
    b = ds.chunks_at(np.array([3]), 3, 0.5)  # row 3, then row 4, which now ends episode 1 (mask 1)
    np.testing.assert_array_equal(b["valid"][0], [1, 1, 0])
    np.testing.assert_array_equal(b["masks"][0], [1, 1, 1])
    np.testing.assert_array_equal(b["next_observations"][0, :, 0], [4, 5, 5])  # s_{i+1} inside the episode
    np.testing.assert_allclose(b["rewards"][0], [4, 4 + 0.5 * 5, 4 + 0.5 * 5])


def train_args(dataset, run_dir):
    return ["train", "--agent", "qc", "--env", PENDULUM, "--dataset", dataset, "--preset", "quick",
            "--offline-steps", "10", "--online-steps", "10", "--start-training", "5", "--run-dir", str(run_dir),
            "--no-progress"]


@pytest.mark.parametrize(("name", "changes", "message"), [
    ("neither", {"terminals": None, "timeouts": None}, "neither 'terminals' nor 'timeouts'"),
    ("outside", {"actions": np.where(RAW_ACTIONS > 2, 4.5, RAW_ACTIONS)[:, None].astype(np.float32)},
     "2 of 8 action rows leave gym:InvertedPendulum-v5's action bounds [-3, 3]"),
    ("obs_shape", {"observations": np.zeros((8, 3), np.float32), "next_observations": np.zeros((8, 3), np.float32)},
     "observation shape (3,) ('observations') does not match gym:InvertedPendulum-v5's observation shape (4,)"),
    ("action_dim", {"actions": np.zeros((8, 2), np.float32)},
     "action shape (2,) does not match gym:InvertedPendulum-v5's action shape (1,)"),
])
def test_bad_files_are_one_line_exit_2_and_nothing_written(tmp_path, capsys, name, changes, message):
    path = write_hdf5(tmp_path / f"{name}.hdf5", d4rl_arrays(**changes))
    run_dir = tmp_path / "run"
    assert main(train_args(path, run_dir)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith(f"error: {path}")
    assert not run_dir.exists()
    assert main(["data", "inspect", path, "--env", PENDULUM]) == 2  # the same check
    assert message in capsys.readouterr().err


def test_an_open_task_needs_a_dataset_and_a_known_source_kind(tmp_path, capsys):
    with pytest.raises(QchunkError, match="has no dataset of its own; give --dataset"):
        load_task_data(PENDULUM)
    assert main(train_args(str(tmp_path / "d.csv"), tmp_path / "run")) == 2
    assert "give minari:<dataset id> or a .npz / .hdf5 file" in capsys.readouterr().err
    assert main(train_args(str(tmp_path / "missing.hdf5"), tmp_path / "run")) == 2
    assert "not found" in capsys.readouterr().err and not (tmp_path / "run").exists()
