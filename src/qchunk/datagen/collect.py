"""``qchunk data collect``: bootstrap an offline dataset for an open task (``gym:<id>``, ``minari:<id>``, a
registered task) with a random policy or a trained qchunk run's policy.

Data is recorded on the task's *raw* environment (its own action units and rewards), so the file or Minari
dataset loads like any other source: the loaders rescale actions to [-1, 1] and apply the task's reward
transform. A trained run's policy plans chunks in [-1, 1]; they run open-loop (one query per chunk, as in
training) through :class:`qchunk.tasks.ActionScale`.

Output: ``minari:<id>`` (a Minari dataset in the local store, written by Minari's own ``DataCollector``) or
a ``.npz`` / ``.hdf5`` file in the D4RL layout (``observations``, ``actions``, ``rewards``, ``terminals`` =
terminated, ``timeouts`` = truncated, ``next_observations``).
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qchunk.errors import QchunkError, require
from qchunk.tasks import MINARI_PREFIX, Task, get_task


@dataclass
class DataCollectArgs:
    """Collect an offline dataset on a task's environment (random policy or a trained run's policy)."""

    env: str
    """The task to collect on: `gym:<gymnasium id>` (e.g. `gym:InvertedPendulum-v5`), `minari:<id>` or a
    registered task."""
    out: str
    """`minari:<dataset id>` (a new dataset in the local Minari store, `$MINARI_DATASETS_PATH` or
    `~/.minari/datasets`; ids look like `namespace/name-v0`) or a `.npz` / `.hdf5` file (D4RL layout)."""
    policy: str = "random"
    """`random` (uniform actions in the env's bounds) or a qchunk run directory whose newest checkpoint acts."""
    episodes: int = 100
    """Episodes to collect."""
    seed: int = 0
    """Seed of the episode resets, the random policy and the agent's sampling."""
    episode_length: int | None = None
    """Time limit of each episode (default: the task's)."""
    ref_min_score: float | None = None
    """Minari output: the random policy's mean return, stored so evaluation reports a normalised score
    (give it with --ref-max-score)."""
    ref_max_score: float | None = None
    """Minari output: an expert's mean return (with --ref-min-score)."""
    overwrite: bool = False
    """Replace an existing `.npz` / `.hdf5` output file (refused by default: it may be a downloaded dataset).
    A Minari id that exists is always refused; choose a new id or version."""


class _RunPolicy:
    """A trained run's policy on raw observations: one chunk query per ``h`` steps, actions mapped onto the
    env's bounds."""

    def __init__(self, run_dir: str, task: Task, seed: int):
        import jax

        from qchunk.envs import ChunkExecutor
        from qchunk.training.run_dir import RunDir

        run = RunDir(Path(run_dir).expanduser())
        require(run.holds_run(), f"--policy {run_dir}: not a qchunk run directory (and not 'random')")
        spaces = run.read().spaces
        require((spaces.get("observation_dim"), spaces.get("action_dim")) == (task.observation_dim, task.action_dim),
                f"--policy {run_dir}: the run's agent takes {spaces.get('observation_dim')}-dim observations and "
                f"{spaces.get('action_dim')}-dim actions, {task.name} has {task.observation_dim} and {task.action_dim}")
        self.agent, self.checkpoint = run.load_agent(say=_say, user="--policy: acting with")
        self.key = jax.random.PRNGKey(seed)
        self.executor, self.scale, self._jax = ChunkExecutor(), task.action_scale, jax

    def reset(self) -> None:
        self.executor.reset()

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        if self.executor.pending == 0:
            self.key, sub = self._jax.random.split(self.key)
            self.executor.push(np.asarray(self.agent.sample_actions(np.asarray(observation, np.float32), sub)))
        action = np.asarray(self.executor.pop())
        return action if self.scale is None else self.scale.from_unit(action)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _check_out(out: str, overwrite: bool = False) -> None:
    """Refuse an output that cannot be written, or that exists (a file: unless ``overwrite``), before any
    episode runs."""
    if out.startswith(MINARI_PREFIX):
        try:
            import minari  # noqa: F401
            from minari.storage.datasets_root_dir import get_dataset_path
        except ImportError:
            raise QchunkError("--out minari:...: needs the minari package; pip install minari (or qchunk[minari])") \
                from None
        dataset_id = out[len(MINARI_PREFIX):]
        from minari.dataset.minari_dataset import parse_dataset_id

        try:
            parse_dataset_id(dataset_id)
        except (ValueError, TypeError):  # Minari raises TypeError for an id without its -vN
            raise QchunkError(f"--out {out}: a Minari id looks like namespace/name-v0 (or name-v0)") from None
        require(not get_dataset_path(dataset_id).exists(),
                f"--out {out}: the Minari dataset exists already; choose a new id (or a new version -vN)"
                + ("; --overwrite replaces only files" if overwrite else ""))
        return
    from qchunk.fileio import require_writable
    from qchunk.ownership import refuse_existing

    require(out.lower().endswith((".npz", ".hdf5", ".h5")),
            f"--out {out!r}: give minari:<dataset id> or a .npz / .hdf5 file")
    require_writable(out, "--out", is_dir=False)
    refuse_existing([out], "--out", overwrite)


def _episodes(env, policy, episodes: int, seed: int, on_step=None):
    """Run ``episodes`` episodes of ``policy`` on ``env``; ``on_step(obs, action, reward, next_obs,
    terminated, truncated)`` sees every step. Returns the episode returns."""
    rng = np.random.default_rng(seed)
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=int(seed) * 100_003 + ep)
        if hasattr(policy, "reset"):
            policy.reset()
        total, done = 0.0, False
        while not done:
            if policy is None:
                action = rng.uniform(env.action_space.low, env.action_space.high).astype(env.action_space.dtype)
            else:
                action = policy(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            if on_step is not None:
                on_step(obs, action, reward, next_obs, terminated, truncated)
            total += float(reward)
            obs, done = next_obs, bool(terminated or truncated)
        returns.append(total)
    return returns


def collect(args: DataCollectArgs) -> tuple[str, int, float]:
    """Collect ``args.episodes`` episodes into ``args.out``; returns (what was written, steps, mean return).

    Raises:
        QchunkError: a built-in task (OGBench and robomimic have their own generators), a bad output, a bad
            policy, or a non-positive episode count; all before any episode runs.
    """
    task = get_task(args.env)
    require(task.benchmark in ("gym", "minari", "registered"),
            f"{task.name} is a built-in task; use qchunk data ogbench / qchunk data robomimic for its data")
    require(args.episodes >= 1, f"--episodes must be >= 1, got {args.episodes}")
    require(args.episode_length is None or args.episode_length >= 1, "--episode-length must be >= 1")
    require((args.ref_min_score is None) == (args.ref_max_score is None),
            "--ref-min-score and --ref-max-score go together (the normalised score needs both)")
    _check_out(args.out, args.overwrite)
    policy = None if args.policy == "random" else _RunPolicy(args.policy, task, args.seed)
    from qchunk.envs.open_env import raw_env

    env = raw_env(task, args.episode_length)
    if args.out.startswith(MINARI_PREFIX):
        return _collect_minari(env, policy, args)
    return _collect_file(env, policy, args)


def _collect_minari(env, policy, args: DataCollectArgs) -> tuple[str, int, float]:
    from minari import DataCollector

    collector = DataCollector(env)
    returns = _episodes(collector, policy, args.episodes, args.seed)
    ref = {} if args.ref_max_score is None else {"ref_min_score": args.ref_min_score,
                                                 "ref_max_score": args.ref_max_score}
    with warnings.catch_warnings():  # Minari warns that no separate evaluation env is given: the same one is used
        warnings.simplefilter("ignore", UserWarning)
        dataset = collector.create_dataset(
            dataset_id=args.out[len(MINARI_PREFIX):], algorithm_name=f"qchunk data collect --policy {args.policy}",
            author="qchunk data collect", author_email="n/a", code_permalink="https://github.com/qchunk/qchunk",
            description=f"{args.episodes} episodes of {args.env} by the policy {args.policy} (seed {args.seed})",
            **ref)
    collector.close()
    return f"{args.out} ({dataset.total_episodes} episodes)", int(dataset.total_steps), float(np.mean(returns))


def _collect_file(env, policy, args: DataCollectArgs) -> tuple[str, int, float]:
    from qchunk.fileio import atomic_path, atomic_savez

    rows: dict[str, list] = {k: [] for k in ("observations", "actions", "rewards", "next_observations",
                                             "terminals", "timeouts")}

    def record(obs, action, reward, next_obs, terminated, truncated):
        for k, v in zip(rows, (obs, action, reward, next_obs, terminated, truncated and not terminated),
                        strict=True):
            rows[k].append(v)

    returns = _episodes(env, policy, args.episodes, args.seed, record)
    env.close()
    arrays = {k: np.asarray(v, np.float32) for k, v in rows.items()}
    arrays["terminals"], arrays["timeouts"] = arrays["terminals"].astype(bool), arrays["timeouts"].astype(bool)
    path = Path(args.out).expanduser()
    if path.suffix.lower() == ".npz":
        atomic_savez(path, arrays)
    else:
        import h5py

        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v, compression="gzip")
    return str(path), len(arrays["rewards"]), float(np.mean(returns))


def run(args: DataCollectArgs) -> int:
    """Entry point of ``qchunk data collect``."""
    written, steps, mean_return = collect(args)
    print(f"wrote {written}: {steps} steps, mean return {mean_return:.2f} ({args.policy} policy)")
    return 0


__all__ = ["DataCollectArgs", "collect", "run"]
