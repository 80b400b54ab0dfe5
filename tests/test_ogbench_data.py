"""Loading real (locally generated) OGBench datasets: relabelling, sparse rewards, shards, bad files."""

import shutil

import numpy as np
import pytest

from conftest import TINY_TASK
from qchunk.data.ogbench_data import ShardedDataset, dataset_files, load_ogbench, read_npz
from qchunk.data.tasks import load_task_data
from qchunk.errors import QchunkError
from qchunk.tasks import get_task

TINY = get_task(TINY_TASK)


def test_load_relabels_rewards_through_ogbench(tiny_ogbench_dir):
    ds = load_ogbench(TINY, tiny_ogbench_dir)
    a = ds.arrays()
    assert ds.size == 3 * 200  # 3 episodes of 201 steps -> 200 transitions each
    assert ds.observation_dim == 55 and ds.action_dim == 5
    np.testing.assert_array_equal(ds.episode_lengths(), [200, 200, 200])
    # puzzle reward = (#buttons in the target state) - 9 <= 0; success (mask 0) exactly when it is 0
    assert a["rewards"].max() <= 0 and np.all(a["rewards"] == np.round(a["rewards"]))
    np.testing.assert_array_equal(a["masks"], (a["rewards"] != 0).astype(np.float32))
    assert np.abs(a["actions"]).max() <= 1.0


def test_sparse_transform(tiny_ogbench_dir):
    dense = load_ogbench(TINY, tiny_ogbench_dir).arrays()["rewards"]
    sparse = load_ogbench(TINY, tiny_ogbench_dir, sparse=True).arrays()["rewards"]
    np.testing.assert_array_equal(sparse, np.where(dense != 0, -1.0, 0.0))


def test_chunks_on_real_data_respect_episode_ends(tiny_ogbench_dir):
    ds = load_ogbench(TINY, tiny_ogbench_dir, sparse=True)
    b = ds.chunks_at(np.array([0, 197, 198, 199, 200]), 5, 0.99)
    # transition 199 ends episode 0: windows from 197, 198, 199 lose 2, 3, 4 steps
    np.testing.assert_array_equal(b["valid"].sum(1), [5, 3, 2, 1, 5])
    a = ds.arrays()
    np.testing.assert_array_equal(b["observations"][4], a["observations"][200])
    np.testing.assert_array_equal(b["next_observations"][0], a["next_observations"][0:5])
    expected = sum(0.99**k * a["rewards"][k] for k in range(5))
    np.testing.assert_allclose(b["rewards"][0, -1], expected, rtol=1e-6)


def test_missing_dataset_names_the_generation_command(tmp_path):
    with pytest.raises(QchunkError, match="qchunk data ogbench puzzle-3x3-play-v0"):
        load_ogbench(TINY, tmp_path)


def test_unknown_and_non_singletask_names(tiny_ogbench_dir):
    with pytest.raises(QchunkError, match="unknown OGBench task"):
        load_task_data("antsoccer-arena-navigate-singletask-v0", tiny_ogbench_dir)
    with pytest.raises(QchunkError, match="'puzzle-3x3-play-v0' is a dataset name; training needs a single-task"):
        load_ogbench(get_task("puzzle-3x3-play-v0"), tiny_ogbench_dir)
    with pytest.raises(QchunkError, match="single-task name"):
        load_task_data("puzzle-3x3-play-v0", tiny_ogbench_dir)
    with pytest.raises(QchunkError, match="out of range"):
        load_task_data("puzzle-3x3-play-singletask-task9-v0", tiny_ogbench_dir)
    with pytest.raises(QchunkError, match="not an OGBench one"):
        load_ogbench(get_task("lift-mh-low_dim"), tiny_ogbench_dir)


def test_load_task_data_takes_a_task_or_its_name(tiny_ogbench_dir):
    by_task = load_task_data(TINY, tiny_ogbench_dir, sparse=True)
    by_name = load_task_data(TINY_TASK, tiny_ogbench_dir, sparse=True)
    assert by_task.sharded is None and by_task.dataset.source == str(TINY.dataset_path(tiny_ogbench_dir))
    np.testing.assert_array_equal(by_task.dataset.arrays()["rewards"], by_name.dataset.arrays()["rewards"])


def test_relabelling_with_the_trainers_stepped_online_env_gives_the_same_rewards(tiny_ogbench_dir):
    from qchunk.envs import make_env

    env = make_env(TINY, False, 30, probes=True)  # the trainer's first online env, wrappers and all
    env.reset(seed=3)
    for _ in range(4):
        env.step(env.action_space.sample())
    reused = load_task_data(TINY, tiny_ogbench_dir, relabel_env=lambda: env)
    own = load_task_data(TINY, tiny_ogbench_dir)
    for key in ("rewards", "masks", "terminals"):
        np.testing.assert_array_equal(reused.dataset.arrays()[key], own.dataset.arrays()[key])
    assert (reused.dataset.arrays()["rewards"] < 0).any()  # dense puzzle rewards: really relabelled
    env.close()


def _rewrite(src, dst, **changes):
    with np.load(src) as f:
        arrays = {k: f[k] for k in f.files}
    arrays.update(changes)
    for k in [k for k, v in changes.items() if v is None]:
        del arrays[k]
    np.savez(dst, **arrays)


def test_bad_files_give_one_clear_error(tiny_ogbench_dir, tmp_path):
    src = tiny_ogbench_dir / "puzzle-3x3-play-v0.npz"
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(QchunkError, match="truncated or corrupt"):
        read_npz(truncated)
    with np.load(src) as f:
        obs, terms = f["observations"].copy(), f["terminals"].copy()
    cases = {
        "missing keys": dict(actions=None),
        "has 602 rows": dict(terminals=terms[:-1]),
        "NaN or inf": dict(observations=np.where(np.arange(len(obs))[:, None] == 7, np.nan, obs)),
        "unfinished": dict(terminals=np.where(np.arange(len(terms)) == len(terms) - 1, False, terms)),
    }
    for match, change in cases.items():
        bad = tmp_path / f"{match.replace(' ', '_')}.npz"
        _rewrite(src, bad, **change)
        with pytest.raises(QchunkError, match=match):
            read_npz(bad)
        with pytest.raises(QchunkError, match=match):
            load_ogbench(TINY, dataset_path=bad)


def test_sharded_directory_swaps_one_shard_at_a_time(tiny_ogbench_dir, tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    src = tiny_ogbench_dir / "puzzle-3x3-play-v0.npz"
    shutil.copy(src, shards / "puzzle-3x3-play-v0-000.npz")
    shutil.copy(src, shards / "puzzle-3x3-play-v0-001.npz")
    shutil.copy(tiny_ogbench_dir / "puzzle-3x3-play-v0-val.npz", shards / "puzzle-3x3-play-v0-000-val.npz")
    files = dataset_files(TINY, shards)
    assert [f.name for f in files] == ["puzzle-3x3-play-v0-000.npz", "puzzle-3x3-play-v0-001.npz"]
    sharded = ShardedDataset(TINY, files, sparse=True)
    first = sharded.dataset
    assert sharded.index == 0 and first.source.endswith("000.npz")
    second = sharded.next_shard()
    assert sharded.index == 1 and second.source.endswith("001.npz") and sharded.dataset is second
    assert sharded.next_shard().source.endswith("000.npz")  # cycles


def test_shard_lookup_ignores_other_domains(tiny_ogbench_dir, tmp_path):
    shutil.copy(tiny_ogbench_dir / "puzzle-3x3-play-v0.npz", tmp_path / "scene-play-v0.npz")
    (tmp_path / "notes.npz").write_bytes(b"")
    with pytest.raises(QchunkError, match="not found"):
        dataset_files(get_task("cube-double-play-singletask-task2-v0"), tmp_path)


def test_online_shard_swap_writes_the_next_shard_over_the_buffers_offline_rows(tiny_ogbench_dir, tmp_path):
    from qchunk.data.tasks import TaskData
    from qchunk.training.sources import BatchSource

    shards = tmp_path / "shards"
    shards.mkdir()
    src = tiny_ogbench_dir / "puzzle-3x3-play-v0.npz"
    shutil.copy(src, shards / "puzzle-3x3-play-v0-000.npz")
    arrays = dict(np.load(src))
    arrays["actions"] = arrays["actions"] * 0.5  # a second shard that differs
    np.savez(shards / "puzzle-3x3-play-v0-001.npz", **arrays)

    def source(swap):
        sharded = ShardedDataset(TINY, dataset_files(TINY, shards), sparse=True)
        return BatchSource(TaskData(sharded.dataset, sharded), 4, 2, 0.99, None, swap_online_prefix=swap)

    rng = np.random.default_rng(0)
    for swap in (False, True):
        s = source(swap)
        first = s.dataset.arrays()
        buf = s.start_online(None, 20)
        for _ in range(7):
            buf.add(rng.normal(size=55), rng.uniform(-1, 1, 5), -1.0, False, 1.0, rng.normal(size=55))
        online = buf.rows_since(first["actions"].shape[0])
        index = s.swap_shard(online=True)
        rows = buf.arrays()
        n = first["actions"].shape[0]
        assert index == (1 if swap else 0)
        want = s.sharded.files[index] if swap else None
        expected = s.dataset.arrays() if swap else first
        assert (want is None) or s.dataset.source == str(want)
        np.testing.assert_array_equal(rows["actions"][:n], expected["actions"])
        for k in online:  # the online rows are kept
            np.testing.assert_array_equal(rows[k][n:], online[k])
        if swap:
            assert not np.array_equal(rows["actions"][:n], first["actions"])
            # a checkpoint of the buffer restores with the current shard as its prefix
            restored = source(True)
            restored.seek_shard(index)
            restored.restore_buffer(s.buffer_state())
            for k, v in buf.arrays().items():
                np.testing.assert_array_equal(restored.buffer.arrays()[k], v)
