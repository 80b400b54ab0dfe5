"""``train(config, run_dir)`` and ``train_seeds(config, seeds, run_dirs)``: offline pre-training, then
online fine-tuning, with evaluation, logging, checkpoints and resume. One code path: a single run is
S = 1 seed of the multi-seed loop.

The schedule of every step, for each seed (:class:`~qchunk.training.seed_run.SeedRun`)::

    offline:  sample a block of K batches -----------+
              (or draw their starts: --sample-on      |
              device gathers the windows on device)   |
    online:   env step (chunk executor) -> buffer.add |-> one update of all seeds (vmap or lax.map)
              -> sample U batches --------------------+       |
    then:     counters -> train.csv -> evaluation -> checkpoint -> signals

Reproducibility (exact on CPU; GPU kernels may reorder floating-point sums): every random choice derives
from the seed and a counter (the sampler's numpy generator is checkpointed; each online episode is reset
with a seed made from its index; acting and evaluation keys are folded from the step). Online checkpoints
are taken at episode ends, so a run killed at any moment and resumed from its last checkpoint writes the
same ``eval.csv`` as an uninterrupted run. SIGINT/SIGTERM finish the current online episode before
saving; a second signal stops at once, and mid-episode writes no checkpoint (the environment's state is
not in one), so ``--resume`` continues exactly from the last checkpoint; the message says which.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from qchunk.dir_lock import hold
from qchunk.errors import QchunkError, require
from qchunk.signals import StopFlag
from qchunk.training.checkpoint import Checkpoint
from qchunk.training.config import TrainConfig
from qchunk.training.result import RunResult, summarize
from qchunk.training.run_dir import RunDir
from qchunk.training.seed_run import SeedRun
from qchunk.training.seeds import SeedAxis
from qchunk.training.sources import BatchSource


class WriteFailed(QchunkError):
    """A write failed (a full disk, say): the run stopped; the message names the file and the step, and says
    where ``--resume`` continues from once the disk has room."""


class RunInterrupted(Exception):
    """SIGINT/SIGTERM stopped the run cleanly; the message says whether a checkpoint was saved at the stop
    or the last one is used (``saved``: every seed saved one)."""

    def __init__(self, message: str, saved: bool = True):
        super().__init__(message)
        self.saved = saved


def train(config: TrainConfig, run_dir: str | os.PathLike) -> RunResult:
    """Run (or, with ``config.resume``, continue) offline-to-online training into ``run_dir``.

    Writes ``config.json``, ``eval.csv`` (one row per evaluation), ``train.csv`` (losses, Q statistics,
    throughput), TensorBoard events under ``tb/``, checkpoints under ``checkpoints/`` and, when the run
    has finished, ``result.json`` (see :mod:`qchunk.training.run_dir`).

    Raises:
        QchunkError: bad configuration or data (one line, before anything is written), or
            :class:`~qchunk.training.seed_run.NonFiniteLoss`.
        RunInterrupted: SIGINT/SIGTERM arrived; a checkpoint was saved first, or (a second signal in the
            middle of an online episode) the last one is used.
    """
    return train_runs([config.resolved()], [RunDir(run_dir)])[0]


def train_seeds(config: TrainConfig, seeds: Sequence[int], run_dirs: Sequence[str | os.PathLike]) -> list[RunResult]:
    """Train ``config`` once per seed in ``seeds`` in this process, writing seed ``seeds[i]`` to
    ``run_dirs[i]`` exactly as :func:`train` would (``config.seed`` is not used).

    Raises:
        QchunkError: bad configuration, data, or arguments; ``NonFiniteLoss``; ``RunInterrupted``.
    """
    require(len(seeds) >= 1, "train_seeds needs at least one seed")
    require(len(seeds) == len(run_dirs), "train_seeds needs one run directory per seed")
    require(len({Path(d).expanduser().resolve() for d in run_dirs}) == len(run_dirs), "run directories must differ")
    base = config.resolved()
    cfgs = [dataclasses.replace(base, seed=int(s)).resolved() for s in seeds]
    return train_runs(cfgs, [RunDir(d) for d in run_dirs])


def train_runs(cfgs: Sequence[TrainConfig], dirs: Sequence[RunDir]) -> list[RunResult]:
    """Train the resolved configs ``cfgs`` (equal but for their seeds) into ``dirs``, seeds vmapped; each
    directory's lock (:mod:`qchunk.dir_lock`) is held from before the data is read to the end.

    Signals: from the first write on, SIGINT/SIGTERM only raise a flag that the loop reads once per step
    (see :class:`~qchunk.training.seed_run.SeedRun`), so a signal never lands inside a write; one that
    arrives after the last step is ignored (the run has finished and writes its result). The CLI defers
    them through the set-up too (:mod:`qchunk.signals`): one recorded then stops the run here, before
    anything is written. Called from Python, SIGINT raises KeyboardInterrupt during the set-up as usual.
    """
    for d in dirs:
        d.check_owned()  # a directory of the user's files is refused before any work
    with contextlib.ExitStack() as locks:
        for d in dirs:
            locks.enter_context(hold(d.path))
        return _train_locked(cfgs, dirs)


def _train_locked(cfgs: Sequence[TrainConfig], dirs: Sequence[RunDir]) -> list[RunResult]:
    setup = _Setup(cfgs)  # data, environment and agent problems surface before anything is written
    runs: list[SeedRun] = []
    with StopFlag() as stop:
        try:
            if stop.signal:  # it arrived during the start-up, which the CLI defers signals through
                raise RunInterrupted(f"stopped by {stop.signal} during start-up, before anything was written",
                                     saved=False)
            resumes = [d.claim(cfg) for cfg, d in zip(cfgs, dirs, strict=True)]
            stored = [d.read_result() if ckpt is not None else None for d, ckpt in zip(dirs, resumes, strict=True)]
            for cfg, d in zip(cfgs, dirs, strict=True):
                d.write_config(cfg, setup.agent_config, setup.observation_dim, setup.action_dim)
            runs += [SeedRun(cfg, d, setup.source(), setup.agent_config, setup.env_factory(k), setup.evaluate)
                     for k, (cfg, d) in enumerate(zip(cfgs, dirs, strict=True))]
            _run(runs, resumes, setup, stop)
            setup.close()
            results = []
            for run, done_before in zip(runs, stored, strict=True):
                if done_before is not None and run.done:  # a finished run resumed: its record stays as written
                    results.append(RunResult.from_json(run.dir.path, done_before, run.state.evals))
                    continue
                result = summarize(run.cfg, setup.task, setup.agent_config.pretrains_offline,
                                   run.source.offline_ratio, run.dir.path, run.state.evals, run.state.throughput,
                                   run.state.elapsed())
                run.dir.write_result(result)
                results.append(result)
        except OSError as e:  # a full disk, say: one line; every file is written atomically, so it resumes
            raise WriteFailed(_write_failed_message(e, runs, dirs)) from None
        finally:
            setup.close()
    return results
    return results


def _write_failed_message(e: OSError, runs: list[SeedRun], dirs: Sequence[RunDir]) -> str:
    where = e.filename or (dirs[0].path if len(dirs) == 1 else dirs[0].path.parent)
    what = f"{where}: {e.strerror or e}"
    if not runs:
        return f"{what}; the run stopped before training began; once it can write again, run the same command again"
    step = min(r.step for r in runs)
    if len(runs) == 1:
        return f"{what} at step {step}; the run stopped; once it can write again, {_resumes_from(runs[0])}"
    return (f"{what} at step {step}; the run stopped; once it can write again, --resume continues every seed "
            "exactly from its last checkpoint")


def _run(runs: list[SeedRun], resumes: list[Checkpoint | None], setup: _Setup, stop: StopFlag) -> None:
    """The loop: every step, each unfinished seed prepares its update, one vmapped update advances all."""
    started: list[SeedRun] = []
    try:
        agents = []
        for run, ckpt in zip(runs, resumes, strict=True):
            agents.append(run.begin(setup.fresh_agent(run.cfg.seed), ckpt))
            started.append(run)
        axis = SeedAxis(agents, runs[0].cfg.seed_axis)
        for k, run in enumerate(runs):
            run.agent_of = (lambda k=k: axis.agent(k))
        bar = _progress_bar(runs)
        active = [k for k, run in enumerate(runs) if not run.done]
        while active:
            requests = [None] * len(runs)
            for k in active:
                requests[k] = runs[k].prepare()
            infos = axis.update(requests)
            for k in active:
                runs[k].finish(infos[k], stop)
            active = [k for k in active if not (runs[k].done or runs[k].stopped)]
            if bar is not None:
                bar.update(min(r.step for r in runs) - bar.n)
        if bar is not None:
            bar.close()
    finally:
        for run in started:
            run.close()
    if any(r.stopped for r in runs):
        raise RunInterrupted(_interrupted_message(runs, stop),
                             saved=all(r.saved_on_stop for r in runs if r.stopped))


def _resumes_from(run: SeedRun) -> str:
    if run.last_ckpt is None:
        return "no checkpoint yet, so --resume starts it over"
    return f"--resume continues exactly from its checkpoint at step {run.last_ckpt}"


def _interrupted_message(runs: list[SeedRun], stop: StopFlag) -> str:
    """One line: where the run stopped, and whether the stop wrote a checkpoint or the last one is used."""
    unsaved = [r for r in runs if r.stopped and not r.saved_on_stop]
    if len(runs) == 1:
        r = runs[0]
        if unsaved:
            return (f"{r.dir.path}: stopped at once by a second {stop.signal} at step {r.step}, in the middle of "
                    "an online episode: no checkpoint written there (it could not resume exactly); "
                    + _resumes_from(r))
        return (f"{r.dir.path}: stopped by {stop.signal} in the {r.phase} phase at step {r.step}; checkpoint "
                "saved, continue with --resume")
    if not unsaved:
        return (f"stopped by {stop.signal} at step {min(r.step for r in runs)}; every seed saved a checkpoint, "
                "continue with --resume")
    saved = [r for r in runs if r not in unsaved]
    said = "; ".join(f"seed {r.cfg.seed}: {_resumes_from(r).replace('--resume continues', 'continues')}"
                     for r in unsaved)
    return (f"stopped at once by a second {stop.signal} at step {min(r.step for r in runs)}; "
            + (f"seeds {', '.join(str(r.cfg.seed) for r in saved)} saved a checkpoint; " if saved else "")
            + f"mid-episode, no checkpoint written ({said}); continue with --resume")


def _progress_bar(runs: list[SeedRun]):
    cfg = runs[0].cfg
    if not cfg.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.offline_steps + cfg.online_steps, initial=min(r.step for r in runs), unit="step",
                dynamic_ncols=True, desc=f"{len(runs)} seeds" if len(runs) > 1 else None,
                mininterval=0.5 if sys.stderr.isatty() else 30)


class _Setup:
    """What the seeds of a run share: the task, the offline data, the agent config, the evaluation pool.

    Everything that can be wrong with the configuration or the data is checked here, before any file
    is written.
    """

    def __init__(self, cfgs: Sequence[TrainConfig]):
        from qchunk.agents import agent_config, create_agent
        from qchunk.data.check import check_dataset
        from qchunk.data.tasks import load_task_data
        from qchunk.envs import make_env

        base = cfgs[0]
        self.base, self.task = base, base.task
        self._make_env = lambda: make_env(self.task, base.sparse, base.episode_length,
                                          dataset_dir=base.dataset_dir, probes=True)
        self._first_env, self._pool = None, None

        def first_env():  # built once: it relabels a single OGBench file, then serves seed 0 online
            if self._first_env is None:
                self._first_env = self._make_env()
            return self._first_env

        try:
            data = load_task_data(self.task, base.dataset_dir, base.sparse, base.dataset, relabel_env=first_env)
            if base.extra_data is not None:
                data = _with_extra_data(base, data)
            require(data.sharded is None or len(cfgs) == 1,
                    "multi-seed training does not support shard directories yet; train the seeds one by one")
        except BaseException:
            self.close()
            raise
        self.data = data
        first_env()
        check_dataset(data.dataset, self._first_env.observation_space, self._first_env.action_space,
                      source=data.dataset.source, env_name=self.task.name)
        self.agent_config = agent_config(base.agent, base.preset, self.task.domain.name, **base.agent_overrides())
        require(self.agent_config.horizon <= int(data.dataset.episode_lengths().max()),
                f"--horizon {self.agent_config.horizon} is longer than every episode of the dataset")
        self.observation_dim, self.action_dim = data.dataset.observation_dim, data.dataset.action_dim
        self._create = create_agent
        self._device_cache: dict = {}  # the offline set in device memory (--sample-on device), shared by the seeds

    def fresh_agent(self, seed: int):
        return self._create(self.agent_config, self.observation_dim, self.action_dim, seed=seed)

    def source(self) -> BatchSource:
        ratio = self.base.offline_ratio
        if ratio is None and not self.agent_config.pretrains_offline:
            ratio = 0.5  # the RLPD family's symmetric sampling
        return BatchSource(self.data, self.base.batch_size, self.agent_config.horizon, self.agent_config.discount,
                           ratio, self._device_cache, swap_online_prefix=bool(self.base.shard_swap_online))

    def env_factory(self, k: int):
        """``() -> env`` for seed ``k``'s online environment (seed 0 gets the one built for the data check)."""
        def make():
            if k == 0 and self._first_env is not None:
                env, self._first_env = self._first_env, None
                return env
            return self._make_env()

        return make

    def evaluate(self, policy, round_index: int, seed: int):
        from qchunk.evaluation import EnvPool, evaluation_seeds, run_episodes

        b = self.base
        if self._pool is None:
            self._pool = EnvPool(self.task, b.sparse, min(b.eval_episodes, b.eval_envs),
                                 b.eval_workers or os.cpu_count() or 1, b.episode_length, dataset_dir=b.dataset_dir)
        return run_episodes(policy, self._pool, evaluation_seeds(seed, round_index, b.eval_episodes))

    def close(self) -> None:
        pool, env, self._pool, self._first_env = self._pool, self._first_env, None, None
        if pool is not None:
            pool.close()
        if env is not None:
            env.close()


def _with_extra_data(cfg: TrainConfig, data):
    from qchunk.data.tasks import TaskData
    from qchunk.training.collected import collected_transitions, with_extra_data

    if data.sharded is not None:
        raise QchunkError("--extra-data cannot be combined with a directory of dataset shards")
    rows = collected_transitions(cfg.extra_data, env=cfg.env, sparse=cfg.sparse)
    return TaskData(with_extra_data(data.dataset, rows))
