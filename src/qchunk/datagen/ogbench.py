"""Generate an OGBench ``play`` dataset locally with OGBench's own scripted plan oracles.

Every ``play`` domain of :data:`qchunk.tasks.DOMAINS` can be generated (scene, puzzle-3x3, puzzle-4x4 and the
cube domains); the ``navigate`` mazes cannot (OGBench collects them with pretrained expert policies).
The 100M sets the QAM protocol trains on for puzzle-4x4 and cube-quadruple are directories of 1M shards
(``<dir>/<domain>-play-v0-000.npz`` ...); each shard is one generated 1M set (``--seed`` per shard,
``--out`` the shard directory, then rename), and training reads such a directory shard by shard.

:func:`generate_ogbench` follows the protocol of OGBench's data-generation script for manipulation
(``data_gen_scripts/generate_manipspace.py``, dataset type ``play``):

- the multi-goal environment ``gymnasium.make(domain.env_id, terminate_at_goal=False,
  mode="data_collection", max_episode_steps=1001)``;
- OGBench's plan oracles (cube, button, drawer, window) with action noise 0.1 and noise smoothing 0.5;
  puzzle's button oracle keeps the gripper closed; the oracle is chosen by ``info["privileged/target_task"]``;
- a cube-stacking probability drawn once per episode, uniformly from the domain's ``p_stack`` range;
- actions clipped to [-1, 1]; whenever the oracle reports done, the env draws a new target
  (``set_new_target``) and a fresh plan is made for it;
- per step: ``observations`` (the observation *before* the step), ``actions``, ``terminals`` (True at the
  last step of each episode), ``qpos`` / ``qvel`` (the simulator state before the step) and, where the
  env has buttons (puzzle, scene), ``button_states``;
- scene only: an episode in which the cube leaves the camera's view (too far right, or too far left
  without being inside the drawer) is thrown away and retried, as the official script does;
- ``episodes`` training episodes and ``episodes // 10`` validation episodes, saved compressed as
  ``<dataset>.npz`` and ``<dataset>-val.npz`` with OGBench's dtypes (terminals bool, button_states int64,
  everything else float32).

Differences from the official script, all deliberate:

- Reproducible: the official script never seeds anything. Here every episode is a pure function of
  ``(seed, episode index)`` (through :class:`numpy.random.SeedSequence`), so a dataset depends on the seed
  only, not on the number of worker processes or on which worker ran which episode.
- Parallel over episodes (``spawn`` processes; never ``fork``, the caller may have JAX loaded).
- At least one validation episode: for fewer than 10 training episodes the official split
  (``episodes // 10``) would give an empty validation file that OGBench's loader cannot relabel, so
  the validation split is ``max(1, episodes // 10)`` episodes. From 10 episodes on it is the official split.
- Atomic output: both files are written through a temp file and a rename, validation first and training
  last, and a stale training file is removed before the new pair is written; a present training file
  therefore always comes with its matching validation file. Existing files (the default directory is where
  official downloads live) are refused before any episode runs unless ``overwrite`` is given.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import numbers
import os
import signal
import tempfile
import warnings
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from qchunk.errors import QchunkError
from qchunk.fileio import atomic_savez
from qchunk.ownership import refuse_existing
from qchunk.tasks import OGBenchDomain, Task, get_task

#: Steps per episode in the official datasets (1000 episodes x 1001 steps = the 1M-transition sets).
OFFICIAL_EPISODE_STEPS = 1001
#: Plan-oracle settings of the official ``play`` datasets.
ORACLE_NOISE = 0.1
ORACLE_NOISE_SMOOTHING = 0.5
#: Give up on a scene episode after this many unhealthy attempts (the official script retries forever;
#: in practice a retry is rare).
MAX_ATTEMPTS = 100

# Scene health check, in world coordinates of the cube (qpos[14:17] is the cube's free-joint position).
_SCENE_CUBE_XYZ = slice(14, 17)
_SCENE_MAX_Y = 0.29  # at or beyond this the cube is out of view on the right
_SCENE_MIN_Y = -0.3  # at or beyond this the cube is out of view on the left, unless it is in the drawer
_SCENE_DRAWER_Z = (0.06, 0.08)  # cube heights that mean "inside the drawer"


#: Dtypes of the official files, in the official key order.
_DTYPES = {"observations": np.float32, "actions": np.float32, "terminals": bool, "qpos": np.float32,
           "qvel": np.float32, "button_states": np.int64}


@dataclass(frozen=True)
class _Config:
    """Everything an episode needs (small; sent to the worker with every episode)."""

    domain: OGBenchDomain
    seed: int
    episode_steps: int


def _episode_seeds(seed: int, index: int, attempt: int) -> tuple[int, np.ndarray, np.random.Generator]:
    """Independent random streams of one episode attempt, derived from ``(seed, index, attempt)`` only.

    Returns the env's reset seed, a seed for NumPy's global (legacy) generator, and our own generator.
    """
    env_ss, global_ss, own_ss = np.random.SeedSequence(seed, spawn_key=(index, attempt)).spawn(3)
    env_seed = int(env_ss.generate_state(1, np.uint64)[0])
    return env_seed, global_ss.generate_state(8), np.random.default_rng(own_ss)


def _scene_is_healthy(qpos: np.ndarray) -> bool:
    """Whether the scene's cube stayed visible (or inside the drawer) during the whole episode."""
    xyz = qpos[:, _SCENE_CUBE_XYZ]
    y, z = xyz[:, 1], xyz[:, 2]
    gone_right = y >= _SCENE_MAX_Y
    in_drawer = (z >= _SCENE_DRAWER_Z[0]) & (z <= _SCENE_DRAWER_Z[1])
    gone_left = (y <= _SCENE_MIN_Y) & ~in_drawer
    return not bool(gone_right.any() or gone_left.any())


class _EpisodeRunner:
    """One data-collection environment with its oracles; runs whole episodes."""

    def __init__(self, config: _Config):
        with warnings.catch_warnings():
            # Harmless import/construction noise that would clutter the progress bar: GLFW without a
            # display (nothing is rendered here) and gymnasium's float64 -> float32 Box bounds note.
            warnings.filterwarnings("ignore", message=".*DISPLAY environment variable")
            warnings.filterwarnings("ignore", message=".*precision lowered by casting")
            import gymnasium
            import ogbench.manipspace  # noqa: F401  (registers the manipulation environments)
            from ogbench.manipspace.oracles.plan.button_plan import ButtonPlanOracle
            from ogbench.manipspace.oracles.plan.cube_plan import CubePlanOracle
            from ogbench.manipspace.oracles.plan.drawer_plan import DrawerPlanOracle
            from ogbench.manipspace.oracles.plan.window_plan import WindowPlanOracle

            domain = config.domain
            self.env = gymnasium.make(domain.env_id, terminate_at_goal=False, mode="data_collection",
                                      max_episode_steps=config.episode_steps)
        self.config = config
        self.has_buttons = hasattr(self.env.unwrapped, "_cur_button_states")
        noise = {"noise": ORACLE_NOISE, "noise_smoothing": ORACLE_NOISE_SMOOTHING}
        classes = {"cube": CubePlanOracle, "button": ButtonPlanOracle, "drawer": DrawerPlanOracle,
                   "window": WindowPlanOracle}
        self.oracles = {}
        for task in domain.oracles:
            # Puzzle's button oracle presses with a closed gripper, as in the official script.
            closed = task == "button" and domain.name.startswith("puzzle")
            extra = {"gripper_always_closed": True} if closed else {}
            self.oracles[task] = classes[task](env=self.env, **noise, **extra)

    def close(self) -> None:
        self.env.close()

    def episode(self, index: int) -> dict[str, Any]:
        """Episode ``index``: retried (scene) until healthy; arrays in the dtypes of the saved files."""
        for attempt in range(MAX_ATTEMPTS):
            env_seed, global_seed, rng = _episode_seeds(self.config.seed, index, attempt)
            # OGBench's oracles (plan noise, keyframe jitter, arm goals) draw from NumPy's *global*
            # generator, so it must be seeded for the episode to be reproducible. Our own code never
            # reads it; we restore the caller's state afterwards so generation has no side effect on it.
            saved_state = np.random.get_state()  # noqa: NPY002  (the third-party oracles need the global one)
            try:
                np.random.seed(global_seed)  # noqa: NPY002
                data = self._collect(env_seed, rng)
            finally:
                np.random.set_state(saved_state)  # noqa: NPY002
            if self.config.domain.name != "scene" or _scene_is_healthy(data["qpos"]):
                data["attempts"] = attempt + 1
                return data
        raise RuntimeError(f"episode {index} of {self.config.domain.dataset} was unhealthy "
                           f"{MAX_ATTEMPTS} times in a row (seed {self.config.seed})")

    def _collect(self, env_seed: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        env, unwrapped = self.env, self.env.unwrapped
        lo_hi = self.config.domain.p_stack
        # Puzzle has no cube oracle; its set_new_target takes (and ignores) p_stack like the cube envs.
        if lo_hi is None:
            target_kwargs = {}
        else:
            lo, hi = lo_hi
            target_kwargs = {"p_stack": float(rng.uniform(lo, hi)) if hi > lo else float(lo)}

        ob, info = env.reset(seed=env_seed)
        oracle = self.oracles[info["privileged/target_task"]]
        oracle.reset(ob, info)
        steps: dict[str, list] = {k: [] for k in ("observations", "actions", "terminals", "qpos", "qvel")}
        if self.has_buttons:
            steps["button_states"] = []
        done = False
        while not done:
            action = np.clip(np.asarray(oracle.select_action(ob, info)), -1.0, 1.0)
            next_ob, _, terminated, truncated, info = env.step(action)
            done = bool(terminated or truncated)
            if oracle.done:
                target_ob, target_info = unwrapped.set_new_target(**target_kwargs)
                oracle = self.oracles[target_info["privileged/target_task"]]
                oracle.reset(target_ob, target_info)
            steps["observations"].append(ob)
            steps["actions"].append(action)
            steps["terminals"].append(done)
            steps["qpos"].append(info["prev_qpos"])
            steps["qvel"].append(info["prev_qvel"])
            if self.has_buttons:
                steps["button_states"].append(info["prev_button_states"])
            ob = next_ob
        return {k: np.asarray(v, dtype=_DTYPES[k]) for k, v in steps.items()}


# The runner of a worker process, built on its first episode (not in the pool's initializer, so that a
# failure to build it reaches the caller as the real exception instead of a "broken pool").
_WORKER_RUNNER: _EpisodeRunner | None = None


def _init_worker() -> None:
    # Ctrl-C reaches the whole process group; let the parent alone decide to stop (it cancels the pool).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_episode(config: _Config, index: int) -> dict[str, Any]:
    global _WORKER_RUNNER
    if _WORKER_RUNNER is None or _WORKER_RUNNER.config != config:
        _WORKER_RUNNER = _EpisodeRunner(config)
    return _WORKER_RUNNER.episode(index)


class _Assembler:
    """Copies each finished episode into its slot of the preallocated training / validation arrays.

    Every episode has exactly ``steps`` steps (the env never terminates early with ``terminate_at_goal=False``),
    so episode ``i`` occupies rows ``i*steps .. (i+1)*steps - 1`` of its split whatever order episodes finish
    in, and no second copy of the data is ever held.
    """

    def __init__(self, n_train: int, n_val: int, steps: int):
        self.n_train, self.sizes, self.steps = n_train, (n_train, n_val), steps
        self.splits: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None

    def add(self, index: int, data: dict[str, np.ndarray]) -> None:
        if len(data["terminals"]) != self.steps:
            raise RuntimeError(f"episode {index} has {len(data['terminals'])} steps, expected {self.steps}")
        if self.splits is None:
            self.splits = tuple(  # type: ignore[assignment]
                {k: np.empty((n * self.steps, *v.shape[1:]), v.dtype) for k, v in data.items()}
                for n in self.sizes)
        split, i = (0, index) if index < self.n_train else (1, index - self.n_train)
        for k, v in data.items():
            self.splits[split][k][i * self.steps:(i + 1) * self.steps] = v


def _run_episodes(config: _Config, n: int, workers: int, progress: bool,
                  on_episode: Callable[[int, dict[str, np.ndarray]], None]) -> None:
    """Run episodes ``0 .. n-1``, handing each to ``on_episode`` as it finishes (in any order).

    Any failure cancels the episodes not yet started and propagates.
    """
    retries = 0
    bar = tqdm(total=n, unit="ep", desc=f"generating {config.domain.dataset}", disable=not progress,
               dynamic_ncols=True)

    def record(index: int, data: dict[str, Any]) -> None:
        nonlocal retries
        retries += data.pop("attempts") - 1
        on_episode(index, data)
        if retries:
            bar.set_postfix(unhealthy_retries=retries, refresh=False)
        bar.update(1)

    with bar:
        if workers == 1:
            runner = _EpisodeRunner(config)
            try:
                for i in range(n):
                    record(i, runner.episode(i))
            finally:
                runner.close()
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
                # At most one episode per worker in flight: an interrupt or a failure then waits for no
                # more than the episodes already running (work handed to the pool cannot be taken back).
                todo = iter(range(n))
                pending: dict[Future, int] = {}

                def submit_next() -> None:
                    index = next(todo, None)
                    if index is not None:
                        pending[pool.submit(_worker_episode, config, index)] = index

                try:
                    for _ in range(workers):
                        submit_next()
                    while pending:
                        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for future in finished:
                            record(pending.pop(future), future.result())
                            submit_next()
                except BrokenProcessPool as e:
                    raise RuntimeError(
                        "a generation worker process died (out of memory, killed, or the calling script "
                        "lacks an `if __name__ == '__main__':` guard, which spawned workers need); "
                        "fix that or pass workers=1") from e
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise


def _check_count(value: Any, name: str, minimum: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise QchunkError(f"{name} must be an integer >= {minimum}, got {value!r}; {hint}")
    return int(value)


def _writable_dir(task: Task, out_dir: str | os.PathLike | None) -> Path:
    path = task.dataset_dir(out_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise QchunkError(f"cannot write to the output directory {str(path)!r} ({reason}); "
                          "choose a writable output directory") from None
    return path


def generate_ogbench(
    task: Task | str,
    episodes: int | None = None,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    episode_steps: int = OFFICIAL_EPISODE_STEPS,
    progress: bool = True,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Generate the OGBench ``play`` dataset of ``task`` with OGBench's plan oracles (see the module doc).

    Args:
        task: The :class:`~qchunk.tasks.Task` of a dataset name (``puzzle-3x3-play-v0``) or a single-task
            name (``puzzle-3x3-play-singletask-task2-v0``; it generates its domain's dataset), or the name.
        episodes: Training episodes; default the official size (1000; 3000 for cube-triple). Validation adds
            ``max(1, episodes // 10)`` episodes.
        seed: Non-negative seed; episode ``i`` depends on ``(seed, i)`` only, so the result is identical for
            any number of workers.
        out_dir: Output directory; default OGBench's own ``~/.ogbench/data``, where
            ``ogbench.make_env_and_datasets`` finds the files without downloading.
        workers: Worker processes; default all cores. ``1`` runs in this process.
        episode_steps: Steps per episode. 1001 is the official value; smaller values are for quick tests.
        progress: Show a progress bar with ETA over episodes (on stderr).
        overwrite: Replace existing files; without it an existing training or validation file is refused
            before any episode runs (it may be an official download).

    Returns:
        ``(train_path, val_path)``: ``<out_dir>/<dataset>.npz`` and ``<out_dir>/<dataset>-val.npz``.

    Raises:
        QchunkError: For an unknown name, a count out of range, an output directory that cannot be written, or
            an existing file without ``overwrite``.
    """
    if isinstance(task, str):
        task = get_task(task)
    elif not isinstance(task, Task):
        raise QchunkError(f"the dataset name must be a string, got {task!r}; e.g. 'puzzle-3x3-play-v0'")
    if task.benchmark != "ogbench":
        raise QchunkError(f"{task.name!r} is not an OGBench task; for robomimic lift use `qchunk data robomimic lift`")
    domain = task.domain
    if not domain.generable:
        raise QchunkError(f"{domain.dataset} cannot be generated here: OGBench makes it with pretrained expert "
                          f"policies, not plan oracles; put the official {domain.dataset}.npz and "
                          f"{domain.dataset}-val.npz into {task.dataset_dir(out_dir)} instead")
    official = f"use at least 1 (the official {domain.dataset} has {domain.default_episodes})"
    n_train = domain.default_episodes if episodes is None else _check_count(episodes, "episodes", 1, official)
    seed = _check_count(seed, "seed", 0, "use a non-negative integer seed")
    n_workers = (os.cpu_count() or 1) if workers is None else _check_count(
        workers, "workers", 1, "use at least 1 worker process")
    episode_steps = _check_count(episode_steps, "episode_steps", 2,
                                 f"use at least 2 (the official value is {OFFICIAL_EPISODE_STEPS})")
    directory = _writable_dir(task, out_dir)
    train_path = directory / f"{domain.dataset}.npz"
    val_path = directory / f"{domain.dataset}-val.npz"
    refuse_existing([train_path, val_path], "--out", overwrite)  # before any episode runs

    n_val = max(1, n_train // 10)
    n_total = n_train + n_val
    config = _Config(domain=domain, seed=seed, episode_steps=episode_steps)
    assembler = _Assembler(n_train, n_val, episode_steps)
    _run_episodes(config, n_total, min(n_workers, n_total), progress, assembler.add)
    assert assembler.splits is not None
    train, val = assembler.splits

    # A training file from an earlier run must not be paired with the new validation file if writing the
    # new training file fails: remove it first, then write validation, then training (each atomically).
    with contextlib.suppress(FileNotFoundError):
        train_path.unlink()
    atomic_savez(val_path, val)
    atomic_savez(train_path, train)
    return train_path, val_path
