"""qchunk.tasks: the task table, the one parser of names (get_task), as_task and the dataset locators."""

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest

from qchunk.errors import QchunkError
from qchunk.tasks import DOMAINS, ROBOMIMIC_TASKS, Task, as_task, get_task, parse_robomimic_env_args


def test_ogbench_single_task_names():
    task = get_task("puzzle-3x3-play-singletask-task2-v0")
    assert isinstance(task, Task) and task.benchmark == "ogbench" and task.domain is DOMAINS["puzzle-3x3"]
    assert (task.task, task.singletask, task.episode_length, task.sparse) == (2, True, 500, True)
    assert (task.observation_dim, task.action_dim) == (55, 5)
    assert task.dataset == "puzzle-3x3-play-v0" and "sparse transform" in task.reward
    default = get_task("scene-play-singletask-v0")
    assert default.task is None and default.singletask and default.episode_length == 750
    cube = get_task("cube-double-play-singletask-task5-v0")
    assert cube.sparse is False and "sparse" not in cube.reward


def test_dataset_names_are_tasks_without_an_environment():
    task = get_task("cube-triple-play-v0")
    assert not task.singletask and task.task is None and task.domain.name == "cube-triple"
    with pytest.raises(QchunkError, match="'cube-triple-play-v0' is a dataset name; environments need a "
                                          "single-task name such as cube-triple-play-singletask-task2-v0"):
        task.require_singletask()
    assert get_task("cube-triple-play-singletask-task1-v0").require_singletask().singletask


def test_one_cached_value_per_name():
    a = get_task("cube-double-play-singletask-task2-v0")
    assert get_task("cube-double-play-singletask-task2-v0") is a
    assert as_task(a) is a and as_task("cube-double-play-singletask-task2-v0") is a
    assert pickle.loads(pickle.dumps(a)) == a and hash(a) == hash(pickle.loads(pickle.dumps(a)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.episode_length = 3  # type: ignore[misc]


@pytest.mark.parametrize(("name", "match"), [
    ("antmaze-medium-navigate-singletask-v0", "unknown OGBench task.*lift-mh-low_dim"),
    ("puzzle-9x9-play-v0", "unknown OGBench task"),
    ("puzzle-3x3-play-singletask-task9-v0", "task number 9 .* out of range; OGBench tasks are 1..5"),
    ("lift-ph-low_dim", "robomimic tasks lift-mh-low_dim, can-mh-low_dim, square-mh-low_dim"),
])
def test_unknown_names_raise_one_helpful_line(name, match):
    with pytest.raises(QchunkError, match=match) as e:
        get_task(name)
    assert "\n" not in str(e.value)


def test_non_strings_are_a_programming_error():
    with pytest.raises(TypeError):
        get_task(3)  # type: ignore[arg-type]


def test_dataset_locators(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    puzzle = get_task("puzzle-3x3-play-singletask-task1-v0")
    assert puzzle.dataset_path() == tmp_path / ".ogbench" / "data" / "puzzle-3x3-play-v0.npz"
    assert puzzle.validation_path("~/d") == tmp_path / "d" / "puzzle-3x3-play-v0-val.npz"
    assert puzzle.dataset_path(Path("/x")) == Path("/x/puzzle-3x3-play-v0.npz")
    lift = get_task("lift-mh-low_dim")
    assert lift.dataset_path() == tmp_path / ".robomimic" / "lift" / "mh" / "low_dim_v15.hdf5"
    assert lift.dataset_path("/r") == Path("/r/lift/mh/low_dim_v15.hdf5")


def test_every_table_entry_parses_back():
    for d in DOMAINS.values():
        assert get_task(d.task_name(3)).domain is d
        assert get_task(d.dataset).domain is d
    for name, d in ROBOMIMIC_TASKS.items():
        assert get_task(name).domain is d and d.task_name == name


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_table_spaces_and_time_limits_are_the_environments(domain):
    from qchunk.envs import make_env

    task = get_task(DOMAINS[domain].task_name(1))
    env = make_env(task)
    try:
        assert env.observation_space.shape == (task.observation_dim,)
        assert env.observation_space.dtype == np.float32
        assert env.action_space.shape == (task.action_dim,)
        assert env.spec.max_episode_steps == task.episode_length
    finally:
        env.close()


def test_robomimic_env_args_are_checked():
    args = parse_robomimic_env_args(b'{"env_name": "Lift", "type": 1, "env_kwargs": {}}', "f.hdf5")
    assert args == {"env_name": "Lift", "type": 1, "env_kwargs": {}}
    with pytest.raises(QchunkError, match=r"f\.hdf5: data\.attrs\['env_args'\] is missing"):
        parse_robomimic_env_args(None, "f.hdf5")
    with pytest.raises(QchunkError, match="not valid JSON"):
        parse_robomimic_env_args("{", "f.hdf5")
    with pytest.raises(QchunkError, match="needs 'env_name' and 'env_kwargs'"):
        parse_robomimic_env_args('{"env_name": "Lift"}', "f.hdf5")
