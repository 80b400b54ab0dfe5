"""The chunk sampler against hand-computed windows: episode ends, terminations, data end, wrap-around."""

import numpy as np
import pytest

from qchunk.data import Dataset, ReplayBuffer
from qchunk.data.device import DeviceData
from qchunk.errors import QchunkError

# Three episodes, ten transitions. Transition i: s_i = i, a_i = 10 i, r_i = i + 1, s'_i = 100 + i.
#   episode 0: 0..3, ends at 3 by time limit (mask 1)
#   episode 1: 4..5, terminates at 5 by success (mask 0)
#   episode 2: 6..9, success state at 7 without ending (mask 0, as in OGBench play data), ends at 9
TERMINALS = np.array([0, 0, 0, 1, 0, 1, 0, 0, 0, 1], np.float32)
MASKS = np.array([1, 1, 1, 1, 1, 0, 1, 0, 1, 1], np.float32)


def toy(cls=Dataset):
    i = np.arange(10, dtype=np.float32)
    return Dataset(observations=i[:, None], actions=10 * i[:, None], rewards=i + 1, terminals=TERMINALS,
                   next_observations=100 + i[:, None], masks=MASKS, source="toy")


@pytest.fixture(params=["host", "device"])
def on(request):
    """The sampler under test: the store itself (host) or its device copy (``--sample-on device``), which must
    give the same windows from the same draws."""
    return (lambda store: store) if request.param == "host" else DeviceData


def window(ds, start, h, gamma=0.5):
    return ds.chunks_at(np.array([start]), h, gamma)


def test_window_inside_an_episode(on):
    b = window(on(toy()), 6, 3)
    np.testing.assert_array_equal(b["observations"], [[6]])
    np.testing.assert_array_equal(b["actions"][0, :, 0], [60, 70, 80])
    np.testing.assert_allclose(b["rewards"][0], [7, 7 + 0.5 * 8, 7 + 0.5 * 8 + 0.25 * 9])
    np.testing.assert_array_equal(b["valid"][0], [1, 1, 1])
    # success state at step 7 -> no bootstrap from the window's end (cumulative)
    np.testing.assert_array_equal(b["masks"][0], [1, 0, 0])
    np.testing.assert_array_equal(b["next_observations"][0, :, 0], [106, 107, 108])


def test_episode_boundary_inside_window(on):
    b = window(on(toy()), 2, 3)  # steps 2, 3 | episode ends at 3 (time limit)
    np.testing.assert_array_equal(b["valid"][0], [1, 1, 0])
    # the reward of the next episode (r_4 = 5) is never added
    np.testing.assert_allclose(b["rewards"][0], [3, 3 + 0.5 * 4, 3 + 0.5 * 4])
    np.testing.assert_array_equal(b["masks"][0], [1, 1, 1])  # a time limit is not a termination
    np.testing.assert_array_equal(b["actions"][0, :, 0], [20, 30, 30])  # invalid steps repeat the last
    np.testing.assert_array_equal(b["next_observations"][0, :, 0], [102, 103, 103])


def test_success_termination_inside_window(on):
    b = window(on(toy()), 4, 3)  # steps 4, 5 | terminates (mask 0) at 5
    np.testing.assert_array_equal(b["valid"][0], [1, 1, 0])
    np.testing.assert_allclose(b["rewards"][0], [5, 5 + 0.5 * 6, 5 + 0.5 * 6])
    np.testing.assert_array_equal(b["masks"][0], [1, 0, 0])


def test_window_at_the_very_end_of_the_data(on):
    ds = toy()
    b = window(on(ds), 9, 3)  # the newest transition closes an episode, so a window may start there
    np.testing.assert_array_equal(b["valid"][0], [1, 0, 0])
    np.testing.assert_allclose(b["rewards"][0], [10, 10, 10])
    np.testing.assert_array_equal(b["next_observations"][0, :, 0], [109, 109, 109])
    starts = ds.sample_starts(10_000, 3, np.random.default_rng(0))
    assert starts.min() == 0 and starts.max() == 9  # every transition can start a window


def test_horizon_one_is_one_step_td(on):
    ds = toy()
    b = on(ds).chunks_at(np.arange(10), 1, 0.99)
    np.testing.assert_array_equal(b["rewards"][:, 0], np.arange(10) + 1)
    np.testing.assert_array_equal(b["masks"][:, 0], MASKS)
    np.testing.assert_array_equal(b["valid"], np.ones((10, 1)))
    np.testing.assert_array_equal(b["next_observations"][:, 0, 0], 100 + np.arange(10))


def test_sample_shapes_and_dtypes(on):
    ds = toy()
    b = on(ds).sample_chunks(7, 3, 0.99, np.random.default_rng(1))
    shapes = {k: v.shape for k, v in b.items()}
    assert shapes == {"observations": (7, 1), "actions": (7, 3, 1), "rewards": (7, 3), "masks": (7, 3),
                      "valid": (7, 3), "next_observations": (7, 3, 1)}
    assert all(v.dtype == np.float32 for v in b.values())


def test_sampling_is_reproducible_from_the_generator(on):
    ds = toy()
    a = on(ds).sample_chunks(32, 3, 0.99, np.random.default_rng(5))
    b = on(ds).sample_chunks(32, 3, 0.99, np.random.default_rng(5))
    c = on(ds).sample_chunks(32, 3, 0.99, np.random.default_rng(6))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["observations"], c["observations"])


def _add_steps(buf, values, terminal_at=()):
    for v in values:
        buf.add([v], [10 * v], v + 1, v in terminal_at, 1.0, [100 + v])


def test_ring_buffer_never_stitches_newest_to_oldest(on):
    buf = ReplayBuffer(capacity=5, observation_dim=1, action_dim=1)
    _add_steps(buf, range(7))  # one unfinished episode; slots now hold 5, 6, 2, 3, 4
    np.testing.assert_array_equal(buf.arrays()["observations"][:, 0], [2, 3, 4, 5, 6])
    b = on(buf).sample_chunks(2000, 3, 1.0, np.random.default_rng(0))
    seqs = b["actions"][:, :, 0] / 10
    assert {int(s) for s in b["observations"][:, 0]} == {2, 3, 4}
    np.testing.assert_array_equal(np.diff(seqs, axis=1), np.ones((2000, 2)))  # consecutive, never 6 -> 2
    np.testing.assert_array_equal(b["valid"], np.ones((2000, 3)))


def test_ring_buffer_wrapped_with_closed_episode(on):
    buf = ReplayBuffer(capacity=4, observation_dim=1, action_dim=1)
    _add_steps(buf, range(6), terminal_at={5})  # holds 2, 3, 4, 5 and 5 closes the episode
    b = on(buf).chunks_at(np.array([3]), 2, 0.5)  # window at the newest transition
    np.testing.assert_array_equal(b["observations"][:, 0], [5])
    np.testing.assert_array_equal(b["valid"][0], [1, 0])
    np.testing.assert_array_equal(b["next_observations"][0, :, 0], [105, 105])


def test_buffer_never_reads_uninitialised_slots(on):
    buf = ReplayBuffer(capacity=10, observation_dim=1, action_dim=1)
    _add_steps(buf, [1, 2, 3, 4])  # slots 4..9 are unwritten zeros
    b = on(buf).sample_chunks(2000, 2, 0.99, np.random.default_rng(0))
    assert b["observations"].min() >= 1 and b["actions"].min() >= 10
    assert b["next_observations"].max() <= 104


def test_buffer_from_dataset_appends_after_the_offline_data(on):
    buf = ReplayBuffer.from_dataset(toy(), capacity=12)
    assert (buf.size, buf.capacity) == (10, 12)
    _add_steps(buf, [20, 21, 22], terminal_at={22})  # the third add overwrites transition 0
    np.testing.assert_array_equal(buf.arrays()["observations"][:, 0], [*range(1, 10), 20, 21, 22])
    b = on(buf).chunks_at(np.array([8]), 3, 0.5)  # logical 8 = transition 9 (closes ep 2), then 20, 21
    np.testing.assert_array_equal(b["valid"][0], [1, 0, 0])
    b = on(buf).chunks_at(np.array([9]), 3, 0.5)  # 20, 21, 22
    np.testing.assert_allclose(b["rewards"][0], [21, 21 + 0.5 * 22, 21 + 0.5 * 22 + 0.25 * 23])


def test_buffer_state_round_trip(on):
    buf = ReplayBuffer.from_dataset(toy(), capacity=12)
    _add_steps(buf, [20, 21, 22])
    again = ReplayBuffer.from_state_dict(buf.state_dict())
    a = on(buf).sample_chunks(64, 3, 0.9, np.random.default_rng(3))
    b = on(again).sample_chunks(64, 3, 0.9, np.random.default_rng(3))
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(batch_size=0, horizon=2), "batch_size"),
        (dict(batch_size=4, horizon=0), "horizon"),
        (dict(batch_size=4, horizon=5), "longer than every episode"),
        (dict(batch_size=-3, horizon=2), "batch_size"),
    ],
)
def test_bad_sample_arguments(kwargs, match, on):
    with pytest.raises(QchunkError, match=match):
        on(toy()).sample_chunks(discount=0.99, rng=np.random.default_rng(0), **kwargs)


def test_bad_arrays():
    i = np.arange(4, dtype=np.float32)
    good = dict(observations=i[:, None], actions=i[:, None], rewards=i, terminals=np.array([0, 0, 0, 1]),
                next_observations=i[:, None])
    Dataset.from_dict(good)
    with pytest.raises(QchunkError, match="'rewards' has 3 rows"):
        Dataset.from_dict({**good, "rewards": i[:3]})
    with pytest.raises(QchunkError, match="NaN or inf"):
        Dataset.from_dict({**good, "actions": np.array([[0], [np.nan], [0], [0]], np.float32)})
    with pytest.raises(QchunkError, match="missing keys"):
        Dataset.from_dict({k: v for k, v in good.items() if k != "actions"})
    with pytest.raises(QchunkError, match="only 0 and 1"):
        Dataset.from_dict({**good, "terminals": np.array([0, 2, 0, 1])})


def test_end_episode_cuts_the_open_episode(on):
    buf = ReplayBuffer(capacity=6, observation_dim=1, action_dim=1)
    _add_steps(buf, [1, 2, 3])
    buf.end_episode()  # e.g. a run stopped mid-episode: the next episode must not continue this one
    _add_steps(buf, [4, 5])
    b = on(buf).chunks_at(np.array([1]), 3, 1.0)  # 2, 3 | 4
    np.testing.assert_array_equal(b["valid"][0], [1, 1, 0])
    np.testing.assert_array_equal(b["masks"][0], [1, 1, 1])  # a cut is not a termination


def test_success_on_the_last_step_of_the_window(on):
    b = window(on(toy()), 4, 2)  # steps 4, 5; success termination at 5 -> bootstrap nothing, reward counts
    np.testing.assert_array_equal(b["valid"][0], [1, 1])
    np.testing.assert_array_equal(b["masks"][0], [1, 0])
    np.testing.assert_allclose(b["rewards"][0], [5, 5 + 0.5 * 6])


def test_open_last_episode_limits_starts():
    i = np.arange(6, dtype=np.float32)
    ds = Dataset(i[:, None], i[:, None], i, np.array([0, 1, 0, 0, 0, 0]), i[:, None])  # last episode open
    assert ds.sample_starts(5000, 3, np.random.default_rng(0)).max() == 6 - 3


def test_online_data_never_continues_the_offline_last_episode(on):
    i = np.arange(4, dtype=np.float32)
    ds = Dataset(i[:, None], i[:, None], i, np.zeros(4), i[:, None])  # offline data ends mid-episode
    buf = ReplayBuffer.from_dataset(ds, capacity=10)
    buf.end_episode()  # what the trainer does before the first online step
    _add_steps(buf, [500, 501])
    b = on(buf).chunks_at(np.array([2]), 3, 1.0)
    np.testing.assert_array_equal(b["valid"][0], [1, 1, 0])


def test_rows_since_and_fingerprint():
    buf = ReplayBuffer.from_dataset(toy(), capacity=12)
    _add_steps(buf, [20, 21])
    rows = buf.rows_since(10)  # the appended (online) transitions, in time order
    np.testing.assert_array_equal(rows["observations"][:, 0], [20, 21])
    np.testing.assert_array_equal(rows["rewards"], [21, 22])
    same, edited = toy(), toy()
    edited._data["rewards"][3] += 1
    assert toy().fingerprint() == same.fingerprint() != edited.fingerprint()


def test_device_windows_equal_the_hosts_from_the_same_draws():
    rng = np.random.default_rng(0)
    n = 500
    terms = (rng.uniform(size=n) < 0.05).astype(np.float32)
    terms[-1] = 1.0
    ds = Dataset(rng.standard_normal((n, 4)), rng.uniform(-1, 1, (n, 2)), rng.standard_normal(n), terms,
                 rng.standard_normal((n, 4)), masks=(rng.uniform(size=n) > 0.1).astype(np.float32))
    host = ds.sample_chunks(256, 5, 0.99, np.random.default_rng(7))
    device = DeviceData(ds).sample_chunks(256, 5, 0.99, np.random.default_rng(7))
    for key in host:
        np.testing.assert_allclose(device[key], host[key], rtol=1e-6, atol=1e-6, err_msg=key)
    for key in ("observations", "actions", "masks", "valid", "next_observations"):
        np.testing.assert_array_equal(device[key], host[key], err_msg=key)
