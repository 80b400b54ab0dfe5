"""``train_seeds``: several seeds of one configuration in one process, their agents vmapped over seeds.

Each seed is a full single run (its own sampler, replay buffer, environment, logger, checkpoints and run
directory, in exactly the single-run format); only the gradient updates are batched: every step the
seeds' batches are stacked and one ``jax.vmap``-ed update advances all agents at once. The offline data
is loaded once and shared, and one evaluation pool serves every seed.

Seed ``k`` of a multi-seed run computes the same numbers as a single run of seed ``k`` up to floating-point
reordering inside the batched kernels (the tests compare them). Seeds that run out of step (a resumed run
whose checkpoints were taken at different episode ends) keep working: a seed without a request in a round
keeps its state through a mask.

Ctrl-C (SIGINT/SIGTERM) checkpoints every seed at once, cutting unfinished online episodes.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qchunk.errors import QchunkError, require
from qchunk.fileio import atomic_write_json
from qchunk.training.checkpoint import latest_checkpoint
from qchunk.training.config import TrainConfig
from qchunk.training.loop import (
    RunInterrupted,
    RunResult,
    _prepare_run_dir,
    _StopFlag,
    _Trainer,
    _versions,
    write_result,
)


def parse_seeds(text: str) -> list[int]:
    """``"0-3"`` -> ``[0, 1, 2, 3]``; ``"0,2,5"`` and mixtures like ``"0-2,7"`` work too. Raises
    :class:`QchunkError` for anything else, negative seeds or duplicates."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        bounds = part.split("-", 1) if "-" in part[1:] else [part]
        try:
            lo, hi = int(bounds[0]), int(bounds[-1])
        except ValueError:
            raise QchunkError(f"--seeds must look like 0-7 or 0,2,5, got {text!r}") from None
        require(lo <= hi, f"seed range {part!r} is empty")
        seeds.extend(range(lo, hi + 1))
    require(all(s >= 0 for s in seeds), f"seeds must be >= 0, got {text!r}")
    require(len(set(seeds)) == len(seeds), f"--seeds lists a seed twice: {text!r}")
    return seeds


class _StackedInfo:
    """Metrics of one vmapped update (every entry has a leading seed axis), read as numpy on demand."""

    def __init__(self, info: Mapping[str, Any]):
        self._device = info
        self._host: dict[str, np.ndarray] | None = None

    def host(self) -> dict[str, np.ndarray]:
        if self._host is None:
            self._host = {k: np.asarray(v) for k, v in self._device.items()}
        return self._host


class _SeedInfo(Mapping):
    """Seed ``k``'s view of a :class:`_StackedInfo` (what a trainer keeps as ``last_info``)."""

    def __init__(self, stacked: _StackedInfo, k: int):
        self._stacked, self._k = stacked, k

    def __getitem__(self, key: str) -> np.ndarray:
        return self._stacked.host()[key][self._k]

    def __iter__(self):
        return iter(self._stacked._device)

    def __len__(self) -> int:
        return len(self._stacked._device)


class _VmappedUpdates:
    """Jitted, vmapped ``update`` / ``update_many`` over stacked agents, plus slicing and masking."""

    def __init__(self):
        import jax
        import jax.numpy as jnp

        self.jax = jax
        self.one = jax.jit(jax.vmap(lambda agent, batch: agent.update(batch)))
        self.many = jax.jit(jax.vmap(lambda agent, batch: agent.update_many(batch)))
        self.stack = jax.jit(lambda agents: jax.tree_util.tree_map(lambda *x: jnp.stack(x), *agents))
        self.take = jax.jit(lambda tree, k: jax.tree_util.tree_map(lambda x: x[k], tree))

        def keep(mask, new, old):
            def pick(n, o):
                return jnp.where(mask.reshape(mask.shape + (1,) * (n.ndim - 1)), n, o)

            return jax.tree_util.tree_map(pick, new, old)

        self.keep = jax.jit(keep)


def _drive(trainers: list[_Trainer], stop: _StopFlag, bar) -> None:
    """Advance every trainer's phases in lock step, one vmapped update per round."""
    ops = _VmappedUpdates()
    stacked_ref = [ops.stack([t.agent for t in trainers])]  # the current stacked agent (one slot, rebound per round)
    for k, t in enumerate(trainers):
        t._agent_source = lambda k=k: ops.take(stacked_ref[0], k)
    gens: dict[int, Any] = {}
    requests: dict[int, tuple[str, dict[str, np.ndarray]]] = {}
    for k, t in enumerate(trainers):
        gen = t.phases()
        try:
            requests[k] = next(gen)
            gens[k] = gen
        except StopIteration:
            pass
    last_step = min(t.step for t in trainers)
    while requests:
        results: dict[int, tuple[None, _SeedInfo]] = {}
        for kind in sorted({kind for kind, _ in requests.values()}):
            members = [k for k, r in requests.items() if r[0] == kind]
            filler = requests[members[0]][1]
            batches = [requests[k][1] if k in requests and requests[k][0] == kind else filler
                       for k in range(len(trainers))]
            batch = {key: np.stack([b[key] for b in batches]) for key in filler}
            new, info = (ops.one if kind == "one" else ops.many)(stacked_ref[0], batch)
            if len(members) < len(trainers):
                mask = np.zeros(len(trainers), bool)
                mask[members] = True
                new = ops.keep(mask, new, stacked_ref[0])
            stacked_ref[0] = new
            shared = _StackedInfo(info)
            for k in members:
                results[k] = (None, _SeedInfo(shared, k))
        for k in list(requests):
            trainers[k].agent = None  # re-sliced from the stacked agent when next used
            try:
                requests[k] = gens[k].send(results[k])
            except StopIteration:
                del requests[k], gens[k]
                trainers[k].agent = ops.take(stacked_ref[0], k)
        if bar is not None:
            step = min(t.step for t in trainers)
            bar.update(step - last_step)
            last_step = step
        if stop.signal and requests:
            for t in trainers:
                t.save_now()
            raise RunInterrupted(f"stopped by {stop.signal} at step {min(t.step for t in trainers)}; every seed "
                                 "saved a checkpoint, continue with --resume")


class _NeverStop:
    """A stop flag that never fires: the multi-seed driver handles signals for all seeds."""

    signal = None
    count = 0


def train_seeds(config: TrainConfig, seeds: Sequence[int], run_dirs: Sequence[str | os.PathLike]) -> list[RunResult]:
    """Train ``config`` once per seed in ``seeds`` in this process, writing seed ``seeds[i]`` to
    ``run_dirs[i]`` exactly as :func:`qchunk.training.train` would (``config.seed`` is ignored).

    Raises:
        QchunkError: bad configuration, data, or arguments; ``NonFiniteLoss``; ``RunInterrupted``.
    """
    from qchunk.data.tasks import load_task_data
    from qchunk.evaluation import EnvPool

    require(len(seeds) >= 1, "train_seeds needs at least one seed")
    require(len(seeds) == len(run_dirs), "train_seeds needs one run directory per seed")
    require(len({Path(d).expanduser().resolve() for d in run_dirs}) == len(run_dirs), "run directories must differ")
    base = config.resolved()
    data = load_task_data(base.env, base.dataset_dir, base.sparse)
    if data.sharded is not None:
        raise QchunkError("multi-seed training does not support shard directories yet; train the seeds one by one")
    trainers, resumes = [], []
    for seed, run_dir in zip(seeds, run_dirs, strict=True):
        cfg = dataclasses.replace(base, seed=int(seed), progress=False).resolved()
        run_dir = Path(run_dir).expanduser()
        trainer = _Trainer(cfg, run_dir, data=data)
        _prepare_run_dir(cfg, run_dir)
        resumes.append(latest_checkpoint(run_dir / "checkpoints") if cfg.resume else None)
        if not (run_dir / "config.json").is_file():
            atomic_write_json(run_dir / "config.json", {"train": cfg.to_dict(),
                                                        "agent": dataclasses.asdict(trainer.acfg),
                                                        "versions": _versions()})
        trainers.append(trainer)
    workers = base.eval_workers or os.cpu_count() or 1
    pool = EnvPool(base.env, base.sparse, min(base.eval_episodes, base.eval_envs), workers, base.episode_length,
                   dataset_dir=base.dataset_dir)
    for t in trainers:
        t.pool, t.owns_pool = pool, False
    bar = None
    if base.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=base.offline_steps + base.online_steps, unit="step", dynamic_ncols=True,
                   desc=f"{len(seeds)} seeds", mininterval=0.5 if sys.stderr.isatty() else 30)
    started = []
    try:
        with _StopFlag() as stop:
            for t, ckpt in zip(trainers, resumes, strict=True):
                t.start(ckpt, _NeverStop())
                started.append(t)
            if bar is not None:
                bar.update(min(t.step for t in trainers))
            _drive(trainers, stop, bar)
    finally:
        for t in started:
            t.finish()
        pool.close()
        if bar is not None:
            bar.close()
    results = []
    for t in trainers:
        result = t._result(t._elapsed())
        write_result(t.run_dir, result)
        results.append(result)
    return results
