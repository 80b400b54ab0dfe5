"""Exploration probes (qchunk.envs.probes) on a real OGBench puzzle-3x3 env: the readers, and the
``ExplorationProbes`` wrapper that puts ``ee_pos`` and ``gripper_contact`` into ``info``.

OGBench reports the same site and body itself (``info["proprio/effector_pos"]`` and
``info["proprio/gripper_contact"]``), which gives an independent check of what the probes read.
"""

import gymnasium as gym
import numpy as np
import pytest

from conftest import TINY_TASK
from qchunk.envs import ExplorationProbes, end_effector_position, gripper_contact, make_env
from qchunk.tasks import get_task

DOWN_CLOSED = np.array([0.0, 0.0, -1.0, 0.0, 1.0], np.float32)  # descend at full speed, gripper closed


@pytest.fixture
def probed():
    env = make_env(get_task(TINY_TASK), probes=True)
    yield env
    env.close()


def test_readers_follow_the_ogbench_arm():
    env = make_env(get_task(TINY_TASK))
    try:
        env.reset(seed=0)
        start = end_effector_position(env)
        assert start.shape == (3,) and start.dtype == np.float64 and np.all(np.isfinite(start))
        assert isinstance(gripper_contact(env), bool)
        for _ in range(5):  # +x at full speed (0.05 m per step in OGBench's action scaling)
            _, _, _, _, info = env.step(np.array([1.0, 0, 0, 0, 0], np.float32))
        moved = end_effector_position(env)
        np.testing.assert_allclose(moved, info["proprio/effector_pos"])
        assert moved[0] - start[0] > 0.05 and abs(moved[1] - start[1]) < 0.02
    finally:
        env.close()

    class NoArm:
        unwrapped = None

    assert end_effector_position(NoArm()) is None and gripper_contact(NoArm()) is None


def test_wrapper_reports_the_arm_after_reset_and_every_step(probed):
    assert isinstance(probed, ExplorationProbes)
    _, info = probed.reset(seed=0)
    assert info["ee_pos"].shape == (3,) and info["ee_pos"].dtype == np.float64
    np.testing.assert_array_equal(info["ee_pos"], end_effector_position(probed))
    np.testing.assert_allclose(info["ee_pos"], info["proprio/effector_pos"])
    assert info["gripper_contact"] is False  # the gripper starts in the air
    contacts = []
    for _ in range(9):  # down onto the table: contact after about 7 steps
        _, _, _, _, info = probed.step(DOWN_CLOSED)
        np.testing.assert_array_equal(info["ee_pos"], end_effector_position(probed))
        np.testing.assert_allclose(info["ee_pos"], info["proprio/effector_pos"])
        assert isinstance(info["gripper_contact"], bool)
        assert info["gripper_contact"] == bool(info["proprio/gripper_contact"][0] > 0)
        contacts.append(info["gripper_contact"])
    assert not contacts[0] and contacts[-1]
    position = info["ee_pos"].copy()
    probed.step(DOWN_CLOSED)
    np.testing.assert_array_equal(info["ee_pos"], position)  # a copy, not a view of the simulator


def test_wrapper_changes_nothing_else(probed):
    plain = make_env(get_task(TINY_TASK))
    try:
        a, info_a = plain.reset(seed=3)
        b, info_b = probed.reset(seed=3)
        np.testing.assert_array_equal(a, b)
        assert "ee_pos" not in info_a and "gripper_contact" not in info_a
        assert set(info_b) - set(info_a) == {"ee_pos", "gripper_contact"}
        rng = np.random.default_rng(0)
        for _ in range(20):
            action = rng.uniform(-1, 1, 5).astype(np.float32)
            *out_a, info_a = plain.step(action)
            *out_b, info_b = probed.step(action)
            np.testing.assert_array_equal(out_a[0], out_b[0])
            assert out_a[1:] == out_b[1:]
            assert "ee_pos" not in info_a and "gripper_contact" not in info_a
    finally:
        plain.close()


def test_an_env_without_an_arm_gets_no_keys():
    env = ExplorationProbes(gym.make("CartPole-v1"))
    try:
        _, info = env.reset(seed=0)
        assert "ee_pos" not in info and "gripper_contact" not in info
        *_, info = env.step(0)
        assert "ee_pos" not in info and "gripper_contact" not in info
    finally:
        env.close()
