"""The open task registry: a task registered from Python (env factory with asymmetric action bounds, a reward
transform, no success signal) rescaled for the env and the dataset alike, trained through
``train(config, run_dir)`` and accepted by a sweep grid; ``ActionScale`` by hand; refusals in one line."""

import csv
import math

import gymnasium as gym
import numpy as np
import pytest

from qchunk.envs import make_env
from qchunk.errors import QchunkError
from qchunk.tasks import ActionScale, get_task, register, unregister

NAME = "test-pendulum-asym"


def asymmetric_pendulum():
    """InvertedPendulum-v5 (ctrl in [-3, 3]) behind actions in the asymmetric box [-1, 3]."""
    return gym.wrappers.RescaleAction(gym.make("InvertedPendulum-v5"), -1.0, 3.0)


def minus_one(rewards):
    return rewards - 1.0


class _Unbounded(gym.ActionWrapper):
    def __init__(self, env):
        super().__init__(env)
        self.action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)

    def action(self, action):
        return np.clip(action, -3, 3)


def unbounded_pendulum():
    return _Unbounded(gym.make("InvertedPendulum-v5"))


@pytest.fixture
def task():
    t = register(NAME, asymmetric_pendulum, episode_length=40, reward=minus_one, success=None, domain="puzzle-3x3")
    yield t
    unregister(NAME)


def test_action_scale_by_hand_with_asymmetric_bounds():
    scale = ActionScale.of_bounds([-1.0, 0.0], [3.0, 10.0], "t")
    raw = np.array([[-1.0, 0.0], [1.0, 5.0], [3.0, 10.0], [2.0, 2.5]])
    np.testing.assert_allclose(scale.to_unit(raw), [[-1, -1], [0, 0], [1, 1], [0.5, -0.5]])
    np.testing.assert_allclose(scale.from_unit(scale.to_unit(raw)), raw, atol=1e-6)
    np.testing.assert_allclose(scale.from_unit([[2.0, -7.0]]), [[3.0, 0.0]])  # clipped into [-1, 1] first
    assert ActionScale.of_bounds([-1.0], [1.0], "t") is None  # nothing to rescale
    with pytest.raises(QchunkError, match="the action space is unbounded"):
        ActionScale.of_bounds([-np.inf], [1.0], "t")


def test_registered_task_env_and_data_share_the_rescaling(task, tmp_path):
    from qchunk.data.tasks import load_task_data

    assert get_task(NAME) is task and task.benchmark == "registered" and task.domain.name == "puzzle-3x3"
    assert (task.action_low, task.action_high, task.episode_length) == ((-1.0,), (3.0,), 40)
    env = make_env(task)
    assert (env.action_space.low[0], env.action_space.high[0]) == (-1.0, 1.0)
    env.reset(seed=0)
    for unit, ctrl in ((1.0, 3.0), (-1.0, -3.0), (0.0, 0.0), (0.5, 1.5)):  # [-1,1] -> [-1,3] -> ctrl [-3,3]
        _, reward, _, _, info = env.step(np.array([unit], np.float32))
        assert env.unwrapped.data.ctrl[0] == pytest.approx(ctrl)
        assert reward == 0.0 and "success" not in info  # InvertedPendulum's +1, minus 1; no success signal
    n = 4
    path = tmp_path / "d.npz"
    np.savez(path, observations=np.zeros((n, 4), np.float32), actions=np.array([[-1.0], [3.0], [1.0], [2.0]]),
             rewards=np.ones(n, np.float32), timeouts=np.array([0, 1, 0, 1], bool))
    ds = load_task_data(task, dataset=str(path)).dataset.arrays()
    # rows 0, 2 (1, 3: timeouts, next state unknown); clipped to 1 - 1e-5 at load
    np.testing.assert_allclose(ds["actions"][:, 0], [-1.0 + 1e-5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(ds["rewards"], [0.0, 0.0])


@pytest.mark.slow
def test_registered_task_trains_and_a_sweep_grid_accepts_it(task, tmp_path):
    from qchunk.datagen.collect import DataCollectArgs, collect
    from qchunk.experiments.sweep import SweepArgs, plan_sweep
    from qchunk.training import TrainConfig, train

    data = tmp_path / "random.hdf5"
    collect(DataCollectArgs(env=NAME, out=str(data), episodes=20, episode_length=40))
    cfg = TrainConfig(agent="qc", env=NAME, dataset=str(data), preset="quick", offline_steps=40, online_steps=60,
                      start_training=20, eval_every=50, eval_episodes=2, eval_workers=1, batch_size=16,
                      tensorboard=False, progress=False)
    result = train(cfg, tmp_path / "run")
    assert result.final_success is None and "Return over 2 episodes" in result.summary
    with open(tmp_path / "run" / "eval.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["phase"] for r in rows] == ["offline", "online", "online"]
    assert all(math.isnan(float(r["success"])) and float(r["return"]) <= 0 for r in rows)  # reward r - 1 <= 0

    plan = plan_sweep(SweepArgs(agents=(("qc,rlpd-ac",),), envs=((NAME,),), seeds=(("0-1",),),
                                set=(("preset=quick",), (f"dataset={data}",)), out=str(tmp_path / "sweep")))
    assert len(plan.runs) == 4 and {str(r.rel_dir) for r in plan.runs} >= {f"{NAME}/qc/seed0", f"{NAME}/rlpd-ac/seed1"}
    assert plan.runs[0].config().task is task and plan.runs[0].config().dataset == str(data)


def test_registration_refusals_are_one_line(task):
    for kwargs, message in (
        (dict(name=NAME, env=asymmetric_pendulum), "already registered; pass replace=True"),
        (dict(name="puzzle-3x3-play-singletask-task2-v0", env=asymmetric_pendulum), "is a built-in task"),
        (dict(name="gym:mine", env=asymmetric_pendulum), "without ':'"),
        (dict(name="unbounded", env=unbounded_pendulum), "the action space is unbounded"),
    ):
        with pytest.raises(QchunkError, match=message) as e:
            register(**kwargs)
        assert "\n" not in str(e.value)
    assert register(NAME, asymmetric_pendulum, replace=True).success == "success"
    with pytest.raises(QchunkError, match="gym:<gymnasium id>, minari:<dataset id>, or a task registered"):
        get_task("no-such-task")


PLUGIN = '''
import gymnasium as gym

from qchunk.tasks import register


def pendulum():
    return gym.make("InvertedPendulum-v5")


register("plugin-pendulum", pendulum, episode_length=25, success=None)
'''


@pytest.mark.slow
def test_tasks_registered_by_a_qchunk_tasks_module_exist_in_every_process(tmp_path):
    """A fresh process (a `qchunk` command, an evaluation or Ray worker) knows a registered task only through
    QCHUNK_TASKS: the modules it names are imported before the first look-up."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "my_tasks.py").write_text(PLUGIN)
    qchunk = [sys.executable, "-m", "qchunk.cli", "train", "--env", "plugin-pendulum", "--dataset",
              str(tmp_path / "d.npz"), "--dry-run"]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    unknown = subprocess.run(qchunk, capture_output=True, text=True, env=env)
    assert unknown.returncode == 2 and "unknown OGBench task or dataset 'plugin-pendulum'" in unknown.stderr
    known = subprocess.run(qchunk, capture_output=True, text=True, env={**env, "QCHUNK_TASKS": "my_tasks"})
    assert known.returncode == 0, known.stderr
    assert json.loads(known.stdout)["train"]["env"] == "plugin-pendulum"
    missing = subprocess.run(qchunk, capture_output=True, text=True, env={**env, "QCHUNK_TASKS": "my_tasks,nope"})
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "QCHUNK_TASKS='my_tasks,nope': cannot import 'nope'" in missing.stderr
