"""A pool of environments stepped together, spread over worker processes.

Episodes are seeded individually, so results do not depend on how many workers run them. Worker
processes are started with ``spawn`` (never ``fork``: the parent holds JAX's threads), with their
numerical thread pools pinned to one thread (:data:`WORKER_THREAD_ENV`).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from qchunk.tasks import Task, as_task

#: Environment of the worker processes: one thread for every numerical thread pool. Each worker steps its
#: environments on one core; left alone, numpy's BLAS (OpenBLAS) or an OpenMP runtime would start
#: ``cpu_count`` threads in every worker, W x cores threads competing for the cores the W workers share.
WORKER_THREAD_ENV: dict[str, str] = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                                     "VECLIB_MAXIMUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}


@contextlib.contextmanager
def _environ(changes: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables while processes are spawned (they inherit them), then restore them."""
    old = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class LocalEnvs:
    """Environments in this process with the reset/step interface of :class:`EnvPool` (one worker, the inside
    of a worker process, or the video recorder's environments)."""

    def __init__(self, envs: list):
        self.envs = envs

    @classmethod
    def make(cls, task: Task, sparse: bool, n: int, episode_length: int | None = None, dataset_dir=None) -> LocalEnvs:
        """``n`` environments of ``task`` built by :func:`qchunk.envs.make_env`."""
        from qchunk.envs.make import make_env

        return cls([make_env(task, sparse, episode_length, dataset_dir=dataset_dir) for _ in range(n)])

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        return np.stack([env.reset(seed=int(s))[0] for env, s in zip(self.envs, seeds, strict=True)])

    def step(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, ...]:
        n = len(self.envs)
        obs = np.zeros((n, *self.envs[0].observation_space.shape), np.float32)
        rew, term, trunc = np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool)
        success = np.full(n, np.nan)  # 1/0 where the env reports info["success"], NaN where it reports none
        for i, env in enumerate(self.envs):
            if active[i]:
                obs[i], rew[i], term[i], trunc[i], info = env.step(actions[i])
                if "success" in info:
                    success[i] = float(bool(info["success"]))
        return obs, rew, term, trunc, success

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker(conn, task: Task, sparse: bool, n: int, episode_length: int | None, dataset_dir) -> None:
    # Ctrl-C goes to the whole process group; the parent decides when to stop and closes the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    envs = LocalEnvs.make(task, sparse, n, episode_length, dataset_dir)
    conn.send("ready")
    while True:
        try:
            cmd, payload = conn.recv()
        except EOFError:  # the parent is gone
            envs.close()
            return
        if cmd == "reset":
            conn.send(envs.reset(payload))
        elif cmd == "step":
            conn.send(envs.step(*payload))
        else:
            envs.close()
            conn.close()
            return


class EnvPool:
    """``n`` copies of a task's environment, stepped in lock-step across ``workers`` processes.

    Args:
        task: the single task (a name is accepted too and looked up with :func:`~qchunk.tasks.get_task`).
        sparse: the paper's sparse reward transform.
        n: number of environments.
        workers: processes to spread them over (1: all in this process).
        episode_length: time limit (default: the task's).
        dataset_dir: robomimic only: where the dataset that describes the environment lives.
    """

    def __init__(self, task: Task | str, sparse: bool, n: int, workers: int = 1, episode_length: int | None = None,
                 dataset_dir=None):
        task = as_task(task)
        self.task = task
        self.n = n
        workers = max(1, min(workers, n))
        self._local = LocalEnvs.make(task, sparse, n, episode_length, dataset_dir) if workers == 1 else None
        self._conns, self._procs, self._splits = [], [], []
        if workers > 1:
            ctx = mp.get_context("spawn")
            sizes = [n // workers + (i < n % workers) for i in range(workers)]
            start = 0
            with _environ(WORKER_THREAD_ENV):
                for size in sizes:
                    parent, child = ctx.Pipe()
                    proc = ctx.Process(target=_worker, args=(child, task, sparse, size, episode_length, dataset_dir),
                                       daemon=True)
                    proc.start()
                    self._conns.append(parent)
                    self._procs.append(proc)
                    self._splits.append(slice(start, start + size))
                    start += size
            for conn in self._conns:
                conn.recv()

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the worker processes (empty when the environments live in this process)."""
        return [p.pid for p in self._procs if p.pid is not None]

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        """Reset every env with its own seed; returns observations ``(n, obs)``."""
        if self._local is not None:
            return self._local.reset(seeds)
        for conn, sl in zip(self._conns, self._splits, strict=True):
            conn.send(("reset", list(seeds[sl])))
        return np.concatenate([conn.recv() for conn in self._conns])

    def step(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, ...]:
        """Step the ``active`` envs; returns (obs, reward, terminated, truncated, success), each ``(n, ...)``;
        success is 1.0/0.0 where the env reports ``info["success"]`` and NaN where it does not."""
        if self._local is not None:
            return self._local.step(actions, active)
        for conn, sl in zip(self._conns, self._splits, strict=True):
            conn.send(("step", (actions[sl], active[sl])))
        parts = [conn.recv() for conn in self._conns]
        return tuple(np.concatenate(x) for x in zip(*parts, strict=True))

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
        for conn in self._conns:
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        self._conns, self._procs = [], []

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
