"""A pool of environments stepped together, spread over this process and worker processes.

Episodes are seeded individually, so results do not depend on how many processes run them. With
``workers`` W > 1 the first share of the environments lives in this process and the others in W - 1
worker processes, all stepped at the same time (this process steps its share while the workers step
theirs), so W processes step environments with W - 1 started; a worker process holding one OGBench
environment takes about 250 MB once the memory its build left behind is released
(:func:`release_build_memory`), each further environment about 150 MB. Worker processes are started
with ``spawn`` (never ``fork``: the parent holds JAX's threads), with their numerical thread pools pinned
to one thread (:data:`WORKER_THREAD_ENV`).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from qchunk.errors import require
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


def release_build_memory(clear_asset_cache: bool) -> None:
    """Give back to the system the memory that building environments leaves behind: the C heap's free
    pages (glibc keeps them otherwise, about 90 MB after an OGBench environment is built) and, with
    ``clear_asset_cache``, MuJoCo's cache of compiled assets (about 75 MB for OGBench's arm; it only
    speeds up building more environments, which a worker process never does)."""
    if clear_asset_cache:
        with contextlib.suppress(ImportError, AttributeError):
            import mujoco

            mujoco.mj_clearCache(mujoco.mj_getCache())
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def _no_steps(n: int, obs_shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """:meth:`LocalEnvs.step_chunks`'s result for ``n`` environments before (or without) any step."""
    return (np.zeros((n, *obs_shape), np.float32), np.zeros(n), np.zeros(n, np.int64), np.zeros(n, bool),
            np.full(n, np.nan))


class LocalEnvs:
    """Environments in this process with the reset/step interface of :class:`EnvPool` (one worker, the inside
    of a worker process, or the video recorder's environments).

    ``after_step(i, done)``, when set, is called after every step of environment ``i`` (the video recorder
    renders a frame there)."""

    def __init__(self, envs: list):
        self.envs = envs
        self.after_step: Callable[[int, bool], None] | None = None

    @classmethod
    def make(cls, task: Task, sparse: bool, n: int, episode_length: int | None = None, dataset_dir=None) -> LocalEnvs:
        """``n`` environments of ``task`` built by :func:`qchunk.envs.make_env`."""
        from qchunk.envs.make import make_env

        return cls([make_env(task, sparse, episode_length, dataset_dir=dataset_dir) for _ in range(n)])

    @property
    def n(self) -> int:
        """Number of environments."""
        return len(self.envs)

    def reset(self, seeds: Sequence[int], slots: Sequence[int] | None = None) -> np.ndarray:
        """Reset environment ``slots[j]`` (default: all, in order) with ``seeds[j]``; returns their
        observations ``(len(slots), obs)``."""
        slots = range(len(self.envs)) if slots is None else slots
        return np.stack([self.envs[i].reset(seed=int(s))[0] for i, s in zip(slots, seeds, strict=True)])

    def step_chunks(self, chunks: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, ...]:
        """Execute each ``active`` environment's chunk ``chunks[i]`` ``(h, A)`` open-loop, action after action,
        until it is played out or the episode ends (the rest of the chunk is dropped).

        Returns ``(obs (n, obs), reward (n,), steps (n,), done (n,), success (n,))``: the last observation,
        the summed reward and the number of steps taken during the chunk, whether the episode ended
        (terminated or truncated), and at an episode's end 1/0 where the environment reports
        ``info["success"]`` (NaN where it reports none, and for unfinished or inactive environments).
        """
        obs, reward, steps, done, success = _no_steps(len(self.envs), self.envs[0].observation_space.shape)
        for i in np.flatnonzero(active):
            for action in chunks[i]:
                obs[i], r, terminated, truncated, info = self.envs[i].step(action)
                reward[i] += float(r)
                steps[i] += 1
                done[i] = bool(terminated or truncated)
                if self.after_step is not None:
                    self.after_step(int(i), bool(done[i]))
                if done[i]:
                    if "success" in info:
                        success[i] = float(bool(info["success"]))
                    break
        return obs, reward, steps, done, success

    def close(self) -> None:
        for env in self.envs:
            env.close()


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _worker(conn, task: Task, sparse: bool, n: int, episode_length: int | None, dataset_dir) -> None:
    # Ctrl-C goes to the whole process group; the parent decides when to stop and closes the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked by the parent while it started us
    envs = LocalEnvs.make(task, sparse, n, episode_length, dataset_dir)
    release_build_memory(clear_asset_cache=True)
    conn.send(("ready", len(envs.envs)))
    while True:
        try:
            cmd, payload = conn.recv()
        except EOFError:  # the parent is gone
            envs.close()
            return
        if cmd == "reset":
            conn.send(envs.reset(*payload))
        elif cmd == "chunks":
            conn.send(envs.step_chunks(*payload))
        else:
            envs.close()
            conn.close()
            return


class EnvPool:
    """``n`` copies of a task's environment, stepped in lock-step by ``workers`` processes, this one included.

    Args:
        task: the single task (a name is accepted too and looked up with :func:`~qchunk.tasks.get_task`).
        sparse: the paper's sparse reward transform.
        n: number of environments (all of them open for the pool's lifetime: about 150 MB each for OGBench).
        workers: processes that step them, this one included (1: all in this process; W > 1: this process
            holds the first ``ceil(n / W)`` or so and W - 1 worker processes the rest); at most ``n``.
        episode_length: time limit (default: the task's).
        dataset_dir: robomimic only: where the dataset that describes the environment lives.
    """

    def __init__(self, task: Task | str, sparse: bool, n: int, workers: int = 1, episode_length: int | None = None,
                 dataset_dir=None):
        task = as_task(task)
        self.task = task  # run_episodes reads its reference scores (normalized_score)
        self.n = n
        workers = max(1, min(workers, n))
        sizes = [n // workers + (i < n % workers) for i in range(workers)]
        self._conns, self._procs, self._splits = [], [], []
        self._local: LocalEnvs | None = None
        ctx = mp.get_context("spawn")
        start = sizes[0]
        with _environ(WORKER_THREAD_ENV):  # started first: they build their envs while this process builds its own
            for size in sizes[1:]:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child, task, sparse, size, episode_length, dataset_dir),
                                   daemon=True)
                # Ctrl-C reaches the whole process group: a worker must not get it before it ignores it (a
                # KeyboardInterrupt traceback from its imports). The blocked mask passes to the child, which
                # unblocks once it ignores them; here they are delivered when unblocked.
                old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
                try:
                    proc.start()
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
                child.close()  # the worker's end: a worker that dies then reads as EOFError here, not a hang
                self._conns.append(parent)
                self._procs.append(proc)
                self._splits.append(slice(start, start + size))
                start += size
        try:
            self._local = LocalEnvs.make(task, sparse, sizes[0], episode_length, dataset_dir)
            release_build_memory(clear_asset_cache=False)  # this process may build more envs: keep the cache
            #: environments per process, this one first (as the workers report them)
            self.layout: list[int] = [len(self._local.envs)] + [self._ready(conn) for conn in self._conns]
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _ready(conn) -> int:
        try:
            return conn.recv()[1]
        except EOFError:
            raise RuntimeError("an evaluation worker process exited while building its environments "
                               "(its error is printed above)") from None

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the worker processes (empty when the environments live in this process)."""
        return [p.pid for p in self._procs if p.pid is not None]

    def reset(self, seeds: Sequence[int], slots: Sequence[int] | None = None) -> np.ndarray:
        """Reset environment ``slots[j]`` (default: all ``n``, in order) with ``seeds[j]``; returns their
        observations ``(len(slots), obs)``."""
        slots = list(range(self.n)) if slots is None else [int(i) for i in slots]
        require(len(seeds) == len(slots), f"reset got {len(seeds)} seeds for {len(slots)} environments")
        require(all(0 <= i < self.n for i in slots), f"environment slots must lie in [0, {self.n})")
        starts = [0, *(sl.start for sl in self._splits)]  # the first slot of each process, this one first
        stops = [*starts[1:], self.n]
        routes = [[j for j, i in enumerate(slots) if a <= i < b] for a, b in zip(starts, stops, strict=True)]
        for conn, start, pos in zip(self._conns, starts[1:], routes[1:], strict=True):
            if pos:  # this worker's slots, in its own numbering
                conn.send(("reset", ([seeds[j] for j in pos], [slots[j] - start for j in pos])))
        out: list = [None] * len(slots)
        if routes[0]:
            here = self._local.reset([seeds[j] for j in routes[0]], [slots[j] for j in routes[0]])
            for j, o in zip(routes[0], here, strict=True):
                out[j] = o
        for conn, pos in zip(self._conns, routes[1:], strict=True):
            if pos:
                for j, o in zip(pos, conn.recv(), strict=True):
                    out[j] = o
        return np.stack(out)

    def step_chunks(self, chunks: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, ...]:
        """Execute every ``active`` environment's chunk ``chunks[i]`` ``(h, A)`` open-loop (see
        :meth:`LocalEnvs.step_chunks`), each process its share at the same time, one message per worker per
        chunk; returns ``(obs, reward, steps, done, success)``, each ``(n, ...)``."""
        k = len(self._local.envs)
        sent = [bool(active[sl].any()) for sl in self._splits]  # a worker whose envs are all idle is left alone
        for conn, sl, send in zip(self._conns, self._splits, sent, strict=True):
            if send:
                conn.send(("chunks", (chunks[sl], active[sl])))
        parts = [self._local.step_chunks(chunks[:k], active[:k])]
        for conn, sl, send in zip(self._conns, self._splits, sent, strict=True):
            parts.append(conn.recv() if send else _no_steps(sl.stop - sl.start, parts[0][0].shape[1:]))
        return tuple(np.concatenate(x) for x in zip(*parts, strict=True))

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
            self._local = None
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
