"""robomimic lift / can / square: the hdf5 loader, the environments, the scripted lift data, a short training run."""

import copy
import csv
import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import h5py
import numpy as np
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from qchunk.data import load_task_data
from qchunk.data.robomimic_data import load_robomimic, read_robomimic
from qchunk.datagen.robomimic import _ScriptedLift, generate_robomimic
from qchunk.envs import make_env
from qchunk.envs.robomimic_env import RobomimicEnv, default_env_args, read_env_args, robosuite_kwargs
from qchunk.errors import QchunkError
from qchunk.tasks import ROBOMIMIC_OBS_KEYS as OBS_KEYS
from qchunk.tasks import get_task

QCHUNK = str(Path(sys.executable).parent / "qchunk")
LIFT_NAME = "lift-mh-low_dim"
LIFT = get_task(LIFT_NAME)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def lift_dir(tmp_path_factory):
    """A directory holding `lift/mh/low_dim_v15.hdf5`: 3 scripted demos, seed 0."""
    out = tmp_path_factory.mktemp("robomimic")
    generate_robomimic("lift", 3, seed=0, out_dir=out, progress=False)
    return out


def lift_file(lift_dir) -> Path:
    return lift_dir / "lift" / "mh" / "low_dim_v15.hdf5"


def write_synthetic(path, names, lengths, obs_dim=19, env_name="Lift", total=None, drop_key=None):
    """A file in the official layout with random contents: demo ``names[i]`` has ``lengths[i]`` steps,
    reward 1 and done 1 on its last two steps."""
    rng = np.random.default_rng(0)
    dims = {"robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2, "object": obs_dim - 9}
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        for name, n in zip(names, lengths, strict=True):
            g = data.create_group(name)
            g.attrs["num_samples"] = n
            g["actions"] = rng.uniform(-1, 1, (n, 7))
            done = np.zeros(n, np.int64)
            done[-2:] = 1
            g["rewards"], g["dones"] = done.astype(np.float64), done
            for group in ("obs", "next_obs"):
                for k, d in dims.items():
                    if k != drop_key:
                        g[f"{group}/{k}"] = rng.normal(size=(n, d))
        data.attrs["total"] = sum(lengths) if total is None else total
        data.attrs["env_args"] = json.dumps({"env_name": env_name, "type": 1, "env_kwargs": {}})
    return path


# ---------------------------------------------------------------------------------------------- registry


@pytest.mark.parametrize(("name", "length", "obs_dim"), [(LIFT_NAME, 300, 19), ("can-mh-low_dim", 300, 23),
                                                          ("square-mh-low_dim", 400, 23)])
def test_task_table(name, length, obs_dim, tmp_path):
    task = get_task(name)
    assert task.singletask and task.benchmark == "robomimic" and task.task is None
    assert task.domain.name == "robomimic" and task.episode_length == task.domain.episode_length == length
    assert task.sparse is False and task.observation_dim == obs_dim and task.action_dim == 7
    assert task.dataset == f"{name.split('-')[0]}/mh/low_dim_v15.hdf5"
    assert task.dataset_path(tmp_path) == tmp_path / name.split("-")[0] / "mh" / "low_dim_v15.hdf5"
    assert "-1 per step until success" in task.reward
    assert get_task("puzzle-3x3-play-singletask-task2-v0").benchmark == "ogbench"


def test_unknown_name_lists_robomimic_tasks():
    with pytest.raises(QchunkError, match="lift-mh-low_dim, can-mh-low_dim, square-mh-low_dim"):
        get_task("lift-ph-low_dim")
    with pytest.raises(QchunkError, match="not a robomimic task"):
        load_robomimic(get_task("puzzle-3x3-play-singletask-task2-v0"))
    with pytest.raises(QchunkError, match="not a robomimic task"):
        RobomimicEnv("puzzle-3x3-play-singletask-task2-v0")


# ---------------------------------------------------------------------------------------------- loader


def test_loader_shapes_and_reward_shift(lift_dir):
    ds = load_task_data(LIFT, lift_dir).dataset
    a = ds.arrays()
    with h5py.File(lift_file(lift_dir)) as f:
        data = f["data"]
        names = sorted(data, key=lambda k: int(k.split("_")[1]))
        lengths = [int(data[d].attrs["num_samples"]) for d in names]
        raw = {k: np.concatenate([data[d][k][()] for d in names]) for k in ("rewards", "dones", "actions")}
        obs = np.concatenate([np.concatenate([data[d]["obs"][k][()] for k in OBS_KEYS], 1) for d in names])
        nxt = np.concatenate([np.concatenate([data[d]["next_obs"][k][()] for k in OBS_KEYS], 1) for d in names])
        assert int(data.attrs["total"]) == sum(lengths) == ds.size
    assert len(names) == 3
    assert a["observations"].shape == (ds.size, 19) and a["observations"].dtype == np.float32
    assert a["next_observations"].shape == (ds.size, 19) and a["actions"].shape == (ds.size, 7)
    np.testing.assert_array_equal(a["observations"], obs.astype(np.float32))
    np.testing.assert_array_equal(a["next_observations"], nxt.astype(np.float32))
    # clipped to 1 - 1e-5 at load (qchunk.data.tasks.ACTION_CLIP_EPS), as the authors' env_utils
    np.testing.assert_array_equal(a["actions"], np.clip(raw["actions"].astype(np.float32), -1 + 1e-5, 1 - 1e-5))
    np.testing.assert_array_equal(a["rewards"], raw["rewards"] - 1.0)  # -1 until success, 0 at success
    np.testing.assert_array_equal(a["masks"], 1.0 - raw["dones"])
    ends = np.cumsum(lengths) - 1
    assert np.flatnonzero(a["terminals"]).tolist() == ends.tolist()
    assert ds.episode_lengths().tolist() == lengths
    # scripted demos end at their first success: reward 0 and mask 0 exactly at the last step
    assert np.flatnonzero(a["rewards"] == 0.0).tolist() == ends.tolist()
    assert np.flatnonzero(a["masks"] == 0.0).tolist() == ends.tolist()
    # the sparse transform is the identity on -1/0 rewards
    np.testing.assert_array_equal(load_task_data(LIFT, lift_dir, sparse=True).dataset.arrays()["rewards"],
                                  a["rewards"])


def test_generated_file_has_the_official_attributes(lift_dir):
    with h5py.File(lift_file(lift_dir)) as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        assert env_args["env_name"] == "Lift" and env_args["type"] == 1
        cc = env_args["env_kwargs"]["controller_configs"]
        assert cc["body_parts"]["right"]["type"] == "OSC_POSE"
        assert env_args["env_kwargs"]["robots"] == ["Panda"] and env_args["env_kwargs"]["control_freq"] == 20
        train = [n.decode() for n in f["mask/train"][()]]
        valid = [n.decode() for n in f["mask/valid"][()]]
        assert f["mask/train"].dtype.kind == "S" and len(valid) == 1
        assert sorted(train + valid) == sorted(f["data"]) == ["demo_0", "demo_1", "demo_2"]
        for d in f["data"]:
            g = f["data"][d]
            n = int(g.attrs["num_samples"])
            assert g["actions"].shape == (n, 7) and g["states"].shape[0] == n and "model_file" in g.attrs
            assert g["rewards"][-1] == 1 and g["dones"][-1] == 1 and g["rewards"][:-1].sum() == 0
            assert np.abs(g["actions"][()]).max() <= 1.0
        valid_steps = int(f["data"][valid[0]].attrs["num_samples"])
    assert load_robomimic(LIFT, lift_dir, filter_key="valid").size == valid_steps


def test_demos_load_in_numeric_order(tmp_path):
    names = ["demo_10", "demo_2", "demo_1"]
    path = write_synthetic(tmp_path / "lift" / "mh" / "low_dim_v15.hdf5", names, [4, 5, 6])
    demos = read_robomimic(path)
    assert demos.demos == ["demo_1", "demo_2", "demo_10"] and demos.lengths.tolist() == [6, 5, 4]
    ds = load_robomimic(LIFT, tmp_path)
    assert ds.episode_lengths().tolist() == [6, 5, 4]
    # done on the last two steps: both have mask 0, only the last one ends the episode
    np.testing.assert_array_equal(ds.arrays()["masks"][:6], [1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(ds.arrays()["terminals"][:6], [0, 0, 0, 0, 0, 1])


def test_missing_file_says_where_to_get_it_and_where_to_put_it(tmp_path):
    with pytest.raises(QchunkError) as e:
        load_task_data("square-mh-low_dim", tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "square" / "mh" / "low_dim_v15.hdf5") in msg and "huggingface.co" in msg
    with pytest.raises(QchunkError, match="qchunk data robomimic lift"):
        load_task_data(LIFT, tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(env_name="PickPlaceCan"), "holds a PickPlaceCan dataset"),
        (dict(obs_dim=23), "observations have 23 dims"),
        (dict(total=99), "attrs\\['total'\\] is 99"),
        (dict(drop_key="object"), "lacks \\['object'\\]"),
    ],
)
def test_malformed_files_give_one_clear_error(tmp_path, kwargs, match):
    write_synthetic(tmp_path / "lift" / "mh" / "low_dim_v15.hdf5", ["demo_0", "demo_1"], [3, 4], **kwargs)
    with pytest.raises(QchunkError, match=match):
        load_robomimic(LIFT, tmp_path)


def test_corrupt_file_and_unknown_filter_key(tmp_path, lift_dir):
    bad = tmp_path / "lift" / "mh" / "low_dim_v15.hdf5"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\x89HDF\r\n not really hdf5")
    with pytest.raises(QchunkError, match="not a readable hdf5 file"):
        load_robomimic(LIFT, tmp_path)
    with pytest.raises(QchunkError, match="no filter key mask/better"):
        load_robomimic(LIFT, lift_dir, filter_key="better")


# ---------------------------------------------------------------------------------------------- environments


def test_dataset_observation_layout_equals_the_environments(lift_dir):
    demos = read_robomimic(lift_file(lift_dir))
    env = make_env(LIFT, dataset_dir=lift_dir)
    try:
        obs, info = env.reset(seed=0)
        assert obs.shape == env.observation_space.shape == (19,) and obs.dtype == np.float32
        assert not info["success"]
        with h5py.File(lift_file(lift_dir)) as f:
            start = 0
            for name, n in zip(demos.demos, demos.lengths, strict=True):
                states = f["data"][name]["states"][()]
                replayed = np.stack([env.unwrapped.set_state(s) for s in states])
                recorded = demos.observations[start:start + n]
                # the first observation is identical; later ones differ only by robosuite's lite physics
                # (observations are read before the last substep's kinematics update), well under a millimetre
                np.testing.assert_array_equal(replayed[0], recorded[0])
                np.testing.assert_allclose(replayed, recorded, atol=2e-3)
                start += n
    finally:
        env.close()


def test_env_reads_the_datasets_env_args_and_probes_the_arm(lift_dir):
    env_args = read_env_args(lift_file(lift_dir))
    assert env_args["env_name"] == "Lift" and env_args["env_kwargs"]["robots"] == ["Panda"]
    env = make_env(LIFT, episode_length=4, dataset_dir=lift_dir, probes=True)
    try:
        assert env.unwrapped.env_args == env_args
        _, info = env.reset(seed=0)
        for _ in range(3):  # robot0_eef_pos is robosuite's own report of the end-effector site
            assert info["ee_pos"].shape == (3,) and info["ee_pos"].dtype == np.float64
            np.testing.assert_allclose(info["ee_pos"], env.unwrapped.obs_dict["robot0_eef_pos"], atol=2e-3)
            assert info["gripper_contact"] is False  # in the air above the table
            *_, info = env.step(np.array([0, 0, 1.0, 0, 0, 0, -1.0], np.float32))
    finally:
        env.close()
    with pytest.raises(QchunkError, match="not a readable hdf5 file"):
        bad = lift_dir.parent / "not-hdf5.hdf5"
        bad.write_bytes(b"no")
        read_env_args(bad)


@pytest.mark.slow
def test_seed_controls_the_initial_state_and_spares_the_global_rng():
    env = make_env(LIFT, episode_length=3)
    try:
        np.random.seed(123)  # noqa: NPY002 - robosuite's generator is the legacy global one
        before = np.random.get_state()[1].copy()  # noqa: NPY002
        a, _ = env.reset(seed=7)
        b, _ = env.reset(seed=7)
        c, _ = env.reset(seed=8)
        np.testing.assert_array_equal(a, b)
        assert np.abs(a[9:12] - c[9:12]).max() > 1e-4  # the cube is somewhere else
        np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002
        # the time limit truncates, it does not terminate
        for t in range(3):
            _, r, terminated, truncated, info = env.step(np.zeros(7))
            assert r == -1.0 and not terminated and truncated == (t == 2) and not info["success"]
    finally:
        env.close()


def test_scripted_lift_succeeds_and_terminates_at_success():
    env = RobomimicEnv(LIFT)
    try:
        env.reset(seed=5)
        policy = _ScriptedLift(np.random.default_rng(0), 0.1, float(env.robosuite_env.table_offset[2]))
        rewards = []
        for _ in range(150):
            _, r, terminated, truncated, info = env.step(policy(env.obs_dict))
            rewards.append(r)
            if terminated or truncated:
                break
        assert terminated and not truncated and info["success"]
        assert rewards[-1] == 0.0 and set(rewards[:-1]) == {-1.0} and len(rewards) < 100
    finally:
        env.close()


@pytest.mark.parametrize("name", ["can-mh-low_dim", "square-mh-low_dim"])
def test_can_and_square_environments_create_and_step(name, tmp_path):
    env = make_env(get_task(name), sparse=True, dataset_dir=tmp_path)  # no file there: the official v1.5 settings
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == env.observation_space.shape == (23,) and obs.dtype == np.float32
        assert env.action_space.shape == (7,)
        rng = np.random.default_rng(0)
        for _ in range(5):
            nxt, r, terminated, truncated, info = env.step(rng.uniform(-1, 1, 7).astype(np.float32))
            assert nxt.shape == (23,) and r == -1.0 and not terminated and not truncated
            assert info["success"] is False
        assert np.abs(nxt[:3] - obs[:3]).max() > 1e-3  # the arm moved
        assert env.unwrapped.episode_length == get_task(name).episode_length
    finally:
        env.close()


def test_legacy_env_args_with_render_keys_build_the_same_environment():
    env_args = default_env_args("lift")
    legacy = copy.deepcopy(env_args)
    part = legacy["env_kwargs"]["controller_configs"]["body_parts"]["right"]
    flat = {k: v for k, v in part.items() if k not in ("gripper", "damping_ratio", "damping_ratio_limits",
                                                          "input_type", "input_ref_frame")}
    flat.update(damping=1, damping_limits=[0, 10], control_delta=True)
    legacy["env_kwargs"].update(controller_configs=flat, has_offscreen_renderer=True, render_gpu_device_id=0,
                                use_camera_obs=True, camera_names=["agentview", "robot0_eye_in_hand"],
                                camera_heights=84, camera_widths=84)
    frozen = copy.deepcopy(legacy)
    kwargs = robosuite_kwargs(legacy)
    assert legacy == frozen  # env_args are copied, never modified
    right = kwargs["controller_configs"]["body_parts"]["right"]
    assert right["type"] == "OSC_POSE" and right["input_type"] == "delta" and right["damping_ratio"] == 1
    assert right["damping_ratio_limits"] == [0, 10] and right["gripper"] == {"type": "GRIP"}
    assert "camera_names" not in kwargs and "render_gpu_device_id" not in kwargs
    assert kwargs["has_offscreen_renderer"] is False and kwargs["use_camera_obs"] is False
    new, old = RobomimicEnv(LIFT, env_args), RobomimicEnv(LIFT, legacy)
    try:
        action = np.array([0.5, -0.3, 0.2, 0.1, 0.0, -0.1, 1.0])
        o_new, o_old = new.reset(seed=3)[0], old.reset(seed=3)[0]
        for _ in range(5):
            o_new, o_old = new.step(action)[0], old.step(action)[0]
        np.testing.assert_allclose(o_new, o_old, atol=1e-6)
    finally:
        new.close()
        old.close()


@pytest.mark.slow
def test_offscreen_rendering():
    env = RobomimicEnv(LIFT, render_mode="rgb_array", render_size=(48, 64))
    try:
        env.reset(seed=0)
        try:
            frame = env.render()
        except QchunkError as e:
            pytest.skip(f"no OpenGL backend here: {e}")
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 1.0
        env.reset(seed=1)  # a hard reset rebuilds the model; the renderer follows
        assert env.render().shape == (48, 64, 3)
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------- install, CLI, training


def test_one_mujoco_serves_ogbench_and_robosuite():
    """The installed MuJoCo satisfies qchunk's pin and every installed package's requirement on it (OGBench,
    robosuite, mink, dm_control ...), and is below 3.10 (robosuite 1.5.1 breaks on 3.10+: the robomimic extra
    caps it, the core does not); the robomimic extra never pulls the `robomimic` package (its PyPI release needs
    mujoco_py)."""
    mujoco = Version(metadata.version("mujoco"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["robomimic"]]
    pins = {"qchunk": [Requirement(r) for r in declared if Requirement(r).name == "mujoco"]}
    for dist in metadata.distributions():
        for r in map(Requirement, dist.requires or []):
            if r.name == "mujoco" and (r.marker is None or r.marker.evaluate({"extra": ""})):
                pins.setdefault(dist.metadata["Name"].lower(), []).append(r)
    assert {"qchunk", "ogbench", "robosuite"} <= set(pins)
    unmet = {name: [str(r.specifier) for r in rs] for name, rs in pins.items()
             if not all(mujoco in r.specifier for r in rs)}
    assert not unmet, f"mujoco {mujoco} does not satisfy {unmet}"
    assert Version("3.3") <= mujoco < Version("3.10")
    assert metadata.version("robosuite") == "1.5.1"
    extra = [Requirement(r).name for r in project["optional-dependencies"]["robomimic"]]
    assert "robosuite" in extra and "h5py" in extra and "robomimic" not in extra
    # the cap is robosuite's: the core (OGBench, gymnasium's MuJoCo tasks) leaves MuJoCo open above
    core = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == "mujoco"]
    assert core and not any(s.operator in ("<", "<=", "==") for r in core for s in r.specifier)


def test_cli_errors_are_one_line(tmp_path):
    p = subprocess.run([QCHUNK, "data", "robomimic", "square", "--out", str(tmp_path)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.startswith("error: no scripted policy for 'square'"), p.stderr
    assert "Traceback" not in p.stderr and not any(tmp_path.iterdir())


def test_generation_is_a_function_of_seed_and_index(lift_dir, tmp_path):
    one = generate_robomimic("lift", 1, seed=0, out_dir=tmp_path, progress=False)
    with h5py.File(one) as a, h5py.File(lift_file(lift_dir)) as b:
        x, y = a["data/demo_0"], b["data/demo_0"]
        for key in ("actions", "rewards", "dones", "states", "obs/object", "next_obs/robot0_eef_pos"):
            np.testing.assert_array_equal(x[key][()], y[key][()])


def test_generation_refuses_to_overwrite(lift_dir):
    with pytest.raises(QchunkError, match="already exists"):
        generate_robomimic("lift", 1, out_dir=lift_dir, progress=False)


@pytest.mark.slow
def test_short_training_run_writes_an_eval_row(lift_dir, tmp_path):
    from qchunk.training import TrainConfig, train
    from qchunk.training.config import AgentOverrides

    cfg = TrainConfig(agent="qc", env=LIFT_NAME, preset="quick", dataset_dir=str(lift_dir), offline_steps=20,
                      online_steps=25, eval_every=20, eval_episodes=1, episode_length=15, start_training=10,
                      log_every=10, checkpoint_every=20, eval_workers=1, progress=False,
                      overrides=AgentOverrides(actor_hidden_dims=(32, 32), critic_hidden_dims=(32, 32)),
                      batch_size=16)
    result = train(cfg, tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["train"]["sparse"] is False and config["agent"]["num_samples"] == 16  # robomimic preset
    with open(tmp_path / "run" / "eval.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], r["phase"]) for r in rows] == [("20", "offline"), ("40", "online"), ("45", "online")]
    for r in rows:
        assert 0.0 <= float(r["success"]) <= 1.0 and 1 <= float(r["episode_length"]) <= 15
        assert -15.0 <= float(r["return"]) <= 0.0
    assert result.final_success is not None
