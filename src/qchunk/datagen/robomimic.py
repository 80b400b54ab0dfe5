"""A small robomimic **lift** dataset in the official v1.5 hdf5 layout, made by a scripted policy.

``qchunk data robomimic lift --episodes N [--out DIR]`` writes ``DIR/lift/mh/low_dim_v15.hdf5`` (default
``DIR`` = ``~/.robomimic``), so tests and a first run need no download. It is *not* the official
multi-human dataset (300 human demos, 31,127 transitions); it has the same layout, read by the same loader:

- ``data.attrs``: ``total``, ``env_args`` (JSON, robomimic 0.5's format: ``env_name``, ``env_version``,
  ``type``, ``env_kwargs`` with ``controller_configs``), plus ``qchunk_generator`` describing how it was made;
- ``data/demo_<i>`` (i = 0..N-1, ``attrs["num_samples"]``): ``actions``, ``rewards`` (1 at success),
  ``dones`` (1 at success, the demo's last step), ``states`` (flattened MuJoCo state), ``obs/<key>`` and
  ``next_obs/<key>`` for ``object`` and every ``robot0_*`` observable;
- ``mask/train`` and ``mask/valid``: byte strings of demo names (90% / 10%, at least one valid demo when
  there are two or more).

The scripted policy moves the gripper above the cube, descends, closes the gripper and lifts, with
proportional control of the end-effector position; the targets are jittered per episode and Gaussian noise
is added to the position commands, so demos vary. A demo ends at the first success (cube lifted); an episode
that fails within :data:`MAX_STEPS` steps is retried with fresh randomness (only successes are kept, as in
the human datasets). Every episode is a pure function of ``(seed, index)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from qchunk.errors import QchunkError, did_you_mean, require
from qchunk.fileio import atomic_path, require_writable
from qchunk.tasks import get_task

#: An episode that has not lifted the cube after this many steps is thrown away and retried.
MAX_STEPS = 150
#: Give up after this many failed attempts at one demo (the scripted policy rarely fails at all).
MAX_ATTEMPTS = 20
#: Gain of the proportional position controller (action units per metre of error; 1.0 = 5 cm per step).
_GAIN = 12.0
_GRASP_STEPS = 6  # steps with the gripper closing before lifting
_LIFT_HEIGHT = 0.15  # lift target above the table, metres (success: cube 4 cm above the table)


@dataclass
class DataRobomimicArgs:
    """Generate a small robomimic lift dataset (official v1.5 hdf5 layout) with a scripted pick-and-lift policy."""

    task: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="TASK")]
    """Task: `lift` (can and square need human demonstrations; download them)."""
    episodes: int = 100
    """Demos to record (about 36 steps each)."""
    seed: int = 0
    """Seed; the same seed gives the same file."""
    noise: float = 0.1
    """Standard deviation of the Gaussian noise on the position commands (action units; 1 = 5 cm)."""
    out: str | None = None
    """Dataset directory; the file goes to OUT/lift/mh/low_dim_v15.hdf5 (default ~/.robomimic)."""
    overwrite: bool = False
    """Replace an existing file (refused by default: it may be a downloaded official dataset)."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class _Demo:
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    states: np.ndarray
    obs: dict[str, np.ndarray]
    next_obs: dict[str, np.ndarray]
    model_xml: str


def _obs_keys(obs_dict: dict[str, np.ndarray]) -> list[str]:
    """The low-dim keys a robomimic file stores: ``object`` and the robot's observables (sorted)."""
    robot = [k for k in obs_dict if k.startswith("robot0_") and not k.endswith("proprio-state")]
    return ["object", *sorted(robot)]


def _low_dim(obs_dict: dict[str, np.ndarray], keys: list[str]) -> dict[str, np.ndarray]:
    return {k: np.array(obs_dict["object-state" if k == "object" else k], np.float64) for k in keys}


class _ScriptedLift:
    """Approach above the cube, descend, grasp, lift; proportional control of the end-effector position."""

    def __init__(self, rng: np.random.Generator, noise: float, table_height: float):
        self.rng, self.noise, self.table_height = rng, noise, table_height
        self.offset = rng.normal(0.0, 0.004, 3)  # per-episode grasp-point jitter
        self.hover = rng.uniform(0.06, 0.12)  # per-episode approach height above the cube
        self.phase, self.closing = "approach", 0

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        eef, cube = obs["robot0_eef_pos"], obs["cube_pos"]
        grasp = cube + self.offset + np.array([0.0, 0.0, -0.005])
        if self.phase == "approach":
            target, gripper = grasp + np.array([0.0, 0.0, self.hover]), -1.0
            if np.linalg.norm((target - eef)[:2]) < 0.01 and abs(target[2] - eef[2]) < 0.02:
                self.phase = "descend"
        if self.phase == "descend":
            target, gripper = grasp, -1.0
            if np.linalg.norm(target - eef) < 0.01:
                self.phase = "grasp"
        if self.phase == "grasp":
            target, gripper = grasp, 1.0
            self.closing += 1
            if self.closing >= _GRASP_STEPS:
                self.phase = "lift"
        if self.phase == "lift":
            target, gripper = np.array([eef[0], eef[1], self.table_height + _LIFT_HEIGHT]), 1.0
        move = np.clip(_GAIN * (target - eef), -1.0, 1.0) + self.rng.normal(0.0, self.noise, 3)
        return np.clip(np.concatenate([move, np.zeros(3), [gripper]]), -1.0, 1.0)


def _record_demo(env, seed: int, index: int, noise: float) -> tuple[_Demo, int]:
    """One successful demo of episode ``index``; returns it with the number of attempts it took."""
    for attempt in range(MAX_ATTEMPTS):
        env_ss, policy_ss = np.random.SeedSequence(seed, spawn_key=(index, attempt)).spawn(2)
        env.reset(seed=int(env_ss.generate_state(1, np.uint32)[0]))
        base = env.robosuite_env
        policy = _ScriptedLift(np.random.default_rng(policy_ss), noise, float(base.table_offset[2]))
        keys = _obs_keys(env.obs_dict)
        steps: dict[str, list] = {"actions": [], "rewards": [], "states": [], "obs": [], "next_obs": []}
        for _ in range(MAX_STEPS):
            steps["states"].append(np.array(base.sim.get_state().flatten()))
            steps["obs"].append(_low_dim(env.obs_dict, keys))
            action = policy(env.obs_dict)
            _, _, terminated, _, info = env.step(action)
            steps["actions"].append(action)
            steps["rewards"].append(1.0 if info["success"] else 0.0)
            steps["next_obs"].append(_low_dim(env.obs_dict, keys))
            if terminated:
                n = len(steps["actions"])
                rewards = np.array(steps["rewards"])
                dones = rewards.copy()  # robomimic's done mode 2: 1 at success and at the last step
                dones[-1] = 1.0
                return _Demo(
                    actions=np.array(steps["actions"]), rewards=rewards, dones=dones.astype(np.int64),
                    states=np.array(steps["states"]),
                    obs={k: np.stack([o[k] for o in steps["obs"]]).reshape(n, -1) for k in keys},
                    next_obs={k: np.stack([o[k] for o in steps["next_obs"]]).reshape(n, -1) for k in keys},
                    model_xml=base.sim.model.get_xml(),  # each reset rebuilds the model (the cube's size varies)
                ), attempt + 1
    raise RuntimeError(f"the scripted lift policy failed {MAX_ATTEMPTS} times in a row on demo {index}")


def _split(n: int, seed: int) -> tuple[list[str], list[str]]:
    names = [f"demo_{i}" for i in range(n)]
    n_valid = max(1, n // 10) if n >= 2 else 0
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x5B1])).permutation(n)
    valid = set(order[:n_valid].tolist())
    return [d for i, d in enumerate(names) if i not in valid], [d for i, d in enumerate(names) if i in valid]


def _write(path: Path, demos: list[_Demo], env_args: dict, generator: dict, seed: int) -> None:
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            data = f.create_group("data")
            for i, demo in enumerate(demos):
                g = data.create_group(f"demo_{i}")
                g.attrs["num_samples"] = len(demo.actions)
                g.attrs["model_file"] = demo.model_xml
                g.create_dataset("actions", data=demo.actions)
                g.create_dataset("rewards", data=demo.rewards)
                g.create_dataset("dones", data=demo.dones)
                g.create_dataset("states", data=demo.states)
                for group, arrays in (("obs", demo.obs), ("next_obs", demo.next_obs)):
                    sub = g.create_group(group)
                    for k, v in arrays.items():
                        sub.create_dataset(k, data=v)
            data.attrs["total"] = sum(len(d.actions) for d in demos)
            data.attrs["env_args"] = json.dumps(env_args, indent=4)
            data.attrs["qchunk_generator"] = json.dumps(generator)
            train, valid = _split(len(demos), seed)
            mask = f.create_group("mask")
            mask.create_dataset("train", data=np.array(train, dtype="S"))
            mask.create_dataset("valid", data=np.array(valid, dtype="S"))


def generate_robomimic(
    task: str = "lift",
    episodes: int = 100,
    *,
    seed: int = 0,
    noise: float = 0.1,
    out_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Record ``episodes`` scripted lift demos into ``{out_dir}/lift/mh/low_dim_v15.hdf5`` (atomically).

    Args:
        task: ``"lift"`` (or ``"lift-mh-low_dim"``); no scripted policy exists for can and square.
        episodes: demos to record (>= 1).
        seed: the same seed gives the same file.
        noise: Gaussian noise on the position commands, in action units.
        out_dir: dataset directory (default ``~/.robomimic``).
        overwrite: replace an existing file.
        progress: show a progress bar.

    Returns:
        The path of the written file.
    """
    from tqdm import tqdm

    from qchunk.envs.robomimic_env import RobomimicEnv, default_env_args

    task = task.removesuffix("-mh-low_dim")
    require(task == "lift", f"no scripted policy for {task!r}{did_you_mean(task, ['lift'])}: only `lift` can be "
                            "generated; can and square need the official human demonstrations (see docs/robomimic.md)")
    require(isinstance(episodes, int) and episodes >= 1, f"--episodes must be >= 1, got {episodes}")
    require(noise >= 0.0, f"--noise must be >= 0, got {noise}")
    lift = get_task("lift-mh-low_dim")
    path = lift.dataset_path(out_dir)
    require(overwrite or not path.exists(), f"{path} already exists (it may be the official dataset); pass "
                                            "--overwrite to replace it or choose another --out")
    require_writable(path, "--out", is_dir=False)  # before the demos are recorded, not after
    env_args = default_env_args("lift")
    env = RobomimicEnv(lift, env_args=env_args)
    demos, attempts = [], 0
    try:
        for i in tqdm(range(episodes), desc="scripted lift demos", unit="demo", disable=not progress):
            demo, tries = _record_demo(env, seed, i, noise)
            demos.append(demo)
            attempts += tries
    except RuntimeError as e:
        raise QchunkError(f"{e}; try a smaller --noise") from None
    finally:
        env.close()
    generator = {"policy": "scripted pick-and-lift (qchunk)", "seed": seed, "noise": noise, "episodes": episodes,
                 "attempts": attempts}
    _write(path, demos, env_args, generator, seed)
    return path


def run(args: DataRobomimicArgs) -> int:
    """``qchunk data robomimic``: generate the dataset and print where it went."""
    path = generate_robomimic(args.task, args.episodes, seed=args.seed, noise=args.noise, out_dir=args.out,
                              overwrite=args.overwrite, progress=args.progress)
    import h5py

    from qchunk.data.robomimic_data import read_robomimic

    demos = read_robomimic(path)
    with h5py.File(path, "r") as f:
        attempts = json.loads(f["data"].attrs["qchunk_generator"])["attempts"]
    print(f"wrote {path}: {len(demos.demos)} demos, {len(demos.actions)} transitions "
          f"({demos.lengths.mean():.1f} steps per demo; the scripted policy succeeded in {len(demos.demos)} of "
          f"{attempts} attempts)")
    return 0
