"""``train(config, run_dir)``: offline pre-training then online fine-tuning, with evaluation, logging,
checkpoints and resume.

Reproducibility (exact on CPU; GPU kernels may reorder floating-point sums): every random choice derives
from ``config.seed`` and a counter (the sampler's numpy generator is checkpointed; each online episode is
reset with a seed made from its index; acting and evaluation keys are folded from the step). Online
checkpoints are taken at episode ends, so a run killed at any moment and resumed from its last checkpoint
writes the same ``eval.csv`` as an uninterrupted run.
SIGINT/SIGTERM finish the current online episode before saving (a second signal stops at once, cutting
the episode).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qchunk.analysis import CoherenceTracker, TrajectoryLog, end_effector_position, gripper_contact
from qchunk.data.dataset import Dataset, ReplayBuffer
from qchunk.data.mixing import sample_mixed_chunks
from qchunk.errors import QchunkError
from qchunk.fileio import atomic_write_json
from qchunk.training.checkpoint import latest_checkpoint, save_checkpoint
from qchunk.training.config import TrainConfig, config_from_dict

#: Per-step online end-effector positions (``--save-online-states``), read by ``qchunk analyze trajectories``.
ONLINE_STATES_FILE = "online_states.npz"

#: Config fields that may differ between a run and its ``--resume`` (they do not change results).
_RESUME_FREE = {"resume", "progress", "eval_workers", "tensorboard", "wandb"}


class RunInterrupted(Exception):
    """SIGINT/SIGTERM: a checkpoint was saved and the run stopped cleanly."""


class NonFiniteLoss(QchunkError):
    """A loss or Q value became NaN/inf; the last good checkpoint is kept."""


@dataclass
class RunResult:
    """What :func:`train` returns."""

    run_dir: Path
    offline_success: float | None
    """Success rate of the evaluation at the end of the offline phase."""
    final_success: float | None
    """Success rate of the last evaluation."""
    best_success: float | None
    evals: list[dict[str, Any]]
    seconds: float
    offline_updates_per_s: float | None
    online_steps_per_s: float | None
    summary: str


def _episode_seed(seed: int, episode: int) -> int:
    return int(np.random.SeedSequence([seed, 0x0E1, episode]).generate_state(1)[0])


def _stack(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([b[k] for b in batches]) for k in batches[0]}


def _finite_or_raise(info: dict[str, float], step: int, last_ckpt: int | None) -> None:
    bad = [k for k, v in info.items() if not math.isfinite(v)]
    if bad:
        kept = f"the last good checkpoint (step {last_ckpt}) is kept" if last_ckpt is not None else "no checkpoint yet"
        raise NonFiniteLoss(f"non-finite {', '.join(sorted(bad)[:3])} at step {step}; stopping ({kept}); "
                            "check the data or lower --lr and start again in a new --run-dir")


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks once per step."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.count = 0
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signal = signal.Signals(signum).name
        self.count += 1

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def _prepare_run_dir(cfg: TrainConfig, run_dir: Path) -> None:
    cfg_path = run_dir / "config.json"
    if cfg_path.is_file():
        if not cfg.resume:
            raise QchunkError(f"run dir {run_dir} already holds a run; pass --resume to continue it or choose "
                              "another --run-dir")
        try:
            old = config_from_dict(json.loads(cfg_path.read_text())["train"]).to_dict()
        except (ValueError, KeyError):
            raise QchunkError(f"{cfg_path} is unreadable; choose another --run-dir") from None
        new = cfg.to_dict()
        diff = [k for k in new if k not in _RESUME_FREE and old.get(k) != new[k]]
        if diff:
            k = diff[0]
            raise QchunkError(f"run dir {run_dir} holds a different config ({k}: {old.get(k)!r} there, {new[k]!r} "
                              "now); resume with the same settings or choose another --run-dir")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise QchunkError(f"run dir {run_dir} is not writable ({e.strerror}); choose another --run-dir") from None


def _versions() -> dict[str, str]:
    import flax
    import jax
    import mujoco
    import ogbench
    import optax

    from qchunk import __version__

    return {"qchunk": __version__, "jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__,
            "mujoco": mujoco.__version__, "ogbench": getattr(ogbench, "__version__", "?"),
            "python": sys.version.split()[0], "device": str(jax.devices()[0])}


class _Trainer:
    """One run's state and phases. The phases are generators that yield each gradient update they need as
    ``(kind, batch)`` (``kind`` is ``"one"`` for ``agent.update`` or ``"many"`` for ``agent.update_many``)
    and receive ``(agent, info)`` back, so a driver decides how updates run: :meth:`run` applies them one
    by one; :func:`qchunk.training.multi_seed.train_seeds` vmaps them over several seeds' trainers."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, data=None):
        import jax

        from qchunk.agents import make_agent
        from qchunk.data.tasks import load_task_data
        from qchunk.envs.registry import parse_task

        self.cfg, self.run_dir, self.jax = cfg, run_dir, jax
        self.spec = parse_task(cfg.env)
        data = data if data is not None else load_task_data(cfg.env, cfg.dataset_dir, cfg.sparse)
        if cfg.extra_data is not None:
            from qchunk.data.tasks import TaskData
            from qchunk.training.collected import collected_transitions, with_extra_data

            if data.sharded is not None:
                raise QchunkError("--extra-data cannot be combined with a directory of dataset shards")
            rows = collected_transitions(cfg.extra_data, env=cfg.env, sparse=cfg.sparse)
            data = TaskData(with_extra_data(data.dataset, rows))
        self.sharded = data.sharded
        self.dataset: Dataset = data.dataset
        self._agent = None
        self._agent_source = None  # multi-seed: a function returning this seed's slice of the stacked agent
        self.agent = make_agent(cfg.agent, self.dataset.observation_dim, self.dataset.action_dim, preset=cfg.preset,
                                domain=self.spec.domain.name, seed=cfg.seed, **cfg.agent_overrides())
        self.acfg = self.agent.config
        if self.acfg.horizon > int(self.dataset.episode_lengths().max()):
            raise QchunkError(f"--horizon {self.acfg.horizon} is longer than every episode of the dataset")
        self.rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0xDA7A]))
        self.act_key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 0xAC7)
        self.eval_key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 0xE7A1)
        self.counters = {"grad_steps": 0, "offline_steps": 0, "env_steps": 0, "episodes": 0, "eval_rounds": 0,
                         "shard": 0}
        self.buffer: ReplayBuffer | None = None
        self.tracker = CoherenceTracker(every=5)  # temporal coherence of the online end-effector path
        self.trajectory = TrajectoryLog() if cfg.save_online_states else None
        self.pool = None
        self.owns_pool = True  # multi-seed runs share one evaluation pool, closed by their driver
        self._mid_episode = False  # online rows of an unfinished episode are in the buffer
        self.last_ckpt: int | None = None
        self.evals: list[dict[str, Any]] = []
        self.last_info: dict[str, Any] = {}
        self.throughput: dict[str, float] = {}
        self._sample_s = 0.0
        self._elapsed_before = 0.0
        self._t_start = time.perf_counter()

    # ---------------------------------------------------------------- state
    @property
    def agent(self):
        """The current agent (materialised from the multi-seed driver's stacked agent when needed)."""
        if self._agent is None:
            self._agent = self._agent_source()
        return self._agent

    @agent.setter
    def agent(self, value) -> None:
        self._agent = value

    @property
    def step(self) -> int:
        """Global step: offline gradient steps, then offline_steps + online environment steps."""
        return self.counters["offline_steps"] + self.counters["env_steps"]

    def _save(self, logger) -> None:
        from flax import serialization

        if self.last_info:
            _finite_or_raise(self._info_floats(), self.step, self.last_ckpt)
        online = None
        if self.buffer is not None:
            b = self.buffer
            if b.size < b.capacity:  # nothing overwritten yet: the online rows follow the offline ones
                online = b.rows_since(self._offline_size)
            else:
                online = {f"full/{k}": v for k, v in b.state_dict().items()}
        logger.flush()
        state = {"counters": dict(self.counters), "rng": self.rng.bit_generator.state,
                 "rows": logger.row_counts(), "online_started": self.buffer is not None,
                 "evals": self.evals, "dataset": self._fingerprint(),
                 "elapsed_s": self._elapsed(), "throughput": self.throughput,
                 "coherence": self.tracker.state_dict()}
        if self.trajectory is not None:
            self.trajectory.save(self.run_dir / ONLINE_STATES_FILE)
        save_checkpoint(self.run_dir / "checkpoints", self.step, serialization.to_bytes(self.agent), state, online)
        self.last_ckpt = self.step

    def _fingerprint(self) -> dict[str, Any]:
        """Identifies the offline data, so a resume notices a regenerated or edited dataset."""
        if self.sharded is not None:
            return {"shards": [p.name for p in self.sharded.files]}
        return self.dataset.fingerprint()

    def _elapsed(self) -> float:
        return self._elapsed_before + time.perf_counter() - self._t_start

    def _restore(self, ckpt) -> None:
        from flax import serialization

        st = ckpt.state
        if st.get("dataset") not in (None, self._fingerprint()):
            raise QchunkError(f"the offline dataset changed since {ckpt.path} was written; resume with the same "
                              "data or start a new --run-dir")
        self.agent = serialization.from_bytes(self.agent, ckpt.agent_bytes())
        self._elapsed_before = float(st.get("elapsed_s", 0.0))
        self.throughput = dict(st.get("throughput", {}))
        self.counters.update(st["counters"])
        self.rng.bit_generator.state = st["rng"]
        self.evals = list(st.get("evals", []))
        if "coherence" in st:
            self.tracker.load_state_dict(st["coherence"])
        states = self.run_dir / ONLINE_STATES_FILE
        if self.trajectory is not None and states.is_file():  # rows after the checkpoint are logged again
            self.trajectory = TrajectoryLog.load(states, before_step=self.counters["env_steps"])
        if self.sharded is not None and self.counters["shard"] != self.sharded.index:
            self.sharded.index = self.counters["shard"] - 1
            self.dataset = self.sharded.next_shard()
        if st.get("online_started"):
            self._start_online()
            rows = ckpt.online()
            if rows and "full/_meta" in rows:
                self.buffer = ReplayBuffer.from_state_dict({k[5:]: v for k, v in rows.items()})
            elif rows:
                self.buffer.extend(rows)
        self.last_ckpt = ckpt.step

    def _start_online(self) -> None:
        if not self.acfg.pretrains_offline:
            # RLPD family: a buffer of online data only; the offline set stays separate (mixed per batch)
            cap = self.cfg.buffer_size or self.cfg.online_steps
            self.buffer = ReplayBuffer(cap, self.dataset.observation_dim, self.dataset.action_dim)
            self._offline_size = 0
            return
        # the buffer always holds the whole offline set (cube-triple's 3M exceed the paper's 2M buffer)
        cap = max(self.cfg.buffer_size or (self.dataset.size + self.cfg.online_steps), self.dataset.size + 1)
        self.buffer = ReplayBuffer.from_dataset(self.dataset, cap)
        self.buffer.end_episode()  # online episodes never continue the offline data's last one
        self._offline_size = self.dataset.size

    # ---------------------------------------------------------------- pieces
    def _info_floats(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.last_info.items()}

    def _sample(self, source: Dataset, n: int) -> dict[str, np.ndarray]:
        t = time.perf_counter()
        a = self.acfg
        if source is self.buffer and not a.pretrains_offline:  # symmetric sampling: offline + online rows
            batches = [sample_mixed_chunks(self.dataset, self.buffer, a.batch_size, a.horizon, a.discount, self.rng,
                                           a.offline_ratio) for _ in range(n)]
        else:
            batches = [source.sample_chunks(a.batch_size, a.horizon, a.discount, self.rng) for _ in range(n)]
        out = batches[0] if n == 1 else _stack(batches)
        self._sample_s += time.perf_counter() - t
        return out

    def _policy(self, key):
        """The evaluation policy (``agent.eval_actions``) with its own key stream."""
        jnp = self.jax.numpy
        agent = self.agent

        def policy(obs: np.ndarray) -> np.ndarray:
            nonlocal key
            key, sub = self.jax.random.split(key)
            return np.asarray(agent.eval_actions(jnp.asarray(obs), sub))

        return policy

    def _evaluate(self, phase: str, logger) -> dict[str, Any]:
        from qchunk.evaluation import EnvPool, evaluation_seeds, run_episodes

        if self.last_info:
            _finite_or_raise(self._info_floats(), self.step, self.last_ckpt)
        if self.pool is None:
            workers = self.cfg.eval_workers or os.cpu_count() or 1
            self.pool = EnvPool(self.cfg.env, self.cfg.sparse, min(self.cfg.eval_episodes, self.cfg.eval_envs),
                                workers, self.cfg.episode_length, dataset_dir=self.cfg.dataset_dir)
        rnd = self.counters["eval_rounds"]
        key = self.jax.random.fold_in(self.eval_key, rnd)
        res = run_episodes(self._policy(key), self.pool, evaluation_seeds(self.cfg.seed, rnd, self.cfg.eval_episodes))
        self.counters["eval_rounds"] += 1
        row = {"step": self.step, "phase": phase, "offline_steps": self.counters["offline_steps"],
               "env_steps": self.counters["env_steps"], "success": res.success, "return": res.episode_return,
               "episode_length": res.episode_length, "eval_seconds": round(res.seconds, 3)}
        logger.log_eval(row)
        self.evals.append(row)
        return row

    def _log_train(self, phase: str, logger, window: dict[str, float]) -> None:
        now = time.perf_counter()
        steps = self.step - window["step"]
        elapsed = max(now - window["time"], 1e-9)
        info = self._info_floats()
        _finite_or_raise(info, self.step, self.last_ckpt)
        row = {"step": self.step, "phase": phase, "grad_steps": self.counters["grad_steps"],
               "env_steps": self.counters["env_steps"], **info,
               "steps_per_s": steps / elapsed, "sample_frac": self._sample_s / elapsed}
        if phase == "online":
            row.update(self.tracker.window_stats())  # explore/ee_step_l2, explore/gripper_contact_frac
        logger.log_train(row)
        window.update(step=self.step, time=now)
        self._sample_s = 0.0

    # ---------------------------------------------------------------- phases
    def start(self, resume_ckpt, stop: _StopFlag) -> None:
        """Restore ``resume_ckpt`` (if any) and open the logger and progress bar."""
        from qchunk.logging import RunLogger

        cfg = self.cfg
        self._t_start = time.perf_counter()
        self._stop = stop
        if resume_ckpt is not None:
            self._restore(resume_ckpt)
        self.logger = RunLogger(self.run_dir, resume_rows=resume_ckpt.state["rows"] if resume_ckpt else None,
                                resume_step=resume_ckpt.step if resume_ckpt else None, tensorboard=cfg.tensorboard,
                                wandb=cfg.wandb, wandb_kwargs={"project": "qchunk", "config": cfg.to_dict(),
                                                               "name": self.run_dir.name})
        self.bar = None
        if cfg.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=cfg.offline_steps + cfg.online_steps, initial=self.step, unit="step",
                            dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 30)

    def phases(self):
        """Generator over the whole run: yields update requests ``(kind, batch)``, receives ``(agent, info)``."""
        yield from self._offline(self.logger, self._stop, self.bar)
        yield from self._online(self.logger, self._stop, self.bar)

    def finish(self) -> None:
        """Close the progress bar, the logger and (if owned) the evaluation pool."""
        if self.bar is not None:
            self.bar.close()
        self.logger.close()
        if self.pool is not None and self.owns_pool:
            self.pool.close()

    def apply(self, request) -> tuple[Any, Any]:
        """Run one update request on this trainer's agent."""
        kind, batch = request
        return self.agent.update(batch) if kind == "one" else self.agent.update_many(batch)

    def run(self, resume_ckpt, stop: _StopFlag) -> RunResult:
        self.start(resume_ckpt, stop)
        try:
            gen = self.phases()
            try:
                request = next(gen)
                while True:
                    request = gen.send(self.apply(request))
            except StopIteration:
                pass
        finally:
            self.finish()
        return self._result(self._elapsed())

    def save_now(self) -> None:
        """Checkpoint at once, cutting an unfinished online episode (multi-seed stop)."""
        if self.buffer is not None and self.counters["env_steps"] < self.cfg.online_steps and self._mid_episode:
            self.buffer.end_episode()
            self.counters["episodes"] += 1
        self._save(self.logger)

    def _postfix(self, bar, phase: str) -> None:
        if bar is not None:
            last = self.evals[-1]["success"] if self.evals else None
            bar.set_postfix_str(f"{phase} success={'-' if last is None else f'{100 * last:.0f}%'}", refresh=False)

    def _interrupt(self, logger, phase: str) -> None:
        self._save(logger)
        raise RunInterrupted(f"{self.run_dir}: stopped by {self._stop.signal} in the {phase} phase at step "
                             f"{self.step}; checkpoint saved, continue with --resume")

    def _offline(self, logger, stop: _StopFlag, bar) -> None:
        cfg, c = self.cfg, self.counters
        self._stop = stop
        if c["offline_steps"] >= cfg.offline_steps:
            return
        window = {"step": self.step, "time": time.perf_counter()}
        t0, s0 = time.perf_counter(), c["offline_steps"]
        self._postfix(bar, "offline")
        while c["offline_steps"] < cfg.offline_steps:
            self.agent, self.last_info = yield ("one", self._sample(self.dataset, 1))
            c["offline_steps"] += 1
            c["grad_steps"] += 1
            s = c["offline_steps"]
            if bar is not None:
                bar.update(1)
            if self.sharded is not None and s % cfg.shard_swap_every == 0 and s < cfg.offline_steps:
                self.dataset = self.sharded.next_shard()
                c["shard"] = self.sharded.index
            if s % cfg.log_every == 0:
                self._log_train("offline", logger, window)
            if s % cfg.eval_every == 0 or s == cfg.offline_steps:
                self._evaluate("offline", logger)
                self._postfix(bar, "offline")
            if s % cfg.checkpoint_every == 0 or s == cfg.offline_steps:
                self._save(logger)
            if stop.signal:
                self._interrupt(logger, "offline")
        self.jax.block_until_ready(self.agent)
        self.throughput["offline_updates_per_s"] = (c["offline_steps"] - s0) / (time.perf_counter() - t0)

    def _online(self, logger, stop: _StopFlag, bar) -> None:
        from qchunk.envs import ChunkExecutor, make_env

        cfg, c, jax = self.cfg, self.counters, self.jax
        if c["env_steps"] >= cfg.online_steps:
            return
        if self.buffer is None:
            self._start_online()
        env = make_env(cfg.env, cfg.sparse, cfg.episode_length, dataset_dir=cfg.dataset_dir)
        executor = ChunkExecutor()
        obs, _ = env.reset(seed=_episode_seed(cfg.seed, c["episodes"]))
        episode_start = True
        if cfg.offline_steps == 0 and c["eval_rounds"] == 0:
            self._evaluate("online", logger)  # the initial policy: the learning curve's first point
        window = {"step": self.step, "time": time.perf_counter()}
        t0, s0 = time.perf_counter(), c["env_steps"]
        checkpoint_due = warned = False
        self._postfix(bar, "online")
        try:
            while c["env_steps"] < cfg.online_steps:
                self._record_state(env, episode_start)
                episode_start = False
                if executor.pending == 0:
                    key = jax.random.fold_in(self.act_key, c["env_steps"])
                    executor.push(np.asarray(self.agent.sample_actions(obs, key)))
                action = executor.pop()
                next_obs, reward, terminated, truncated, _ = env.step(action)
                # a time-limit truncation ends the episode but is not a termination: mask stays 1
                self.buffer.add(obs, action, reward, terminated or truncated, 0.0 if terminated else 1.0, next_obs)
                self._mid_episode = not (terminated or truncated)
                c["env_steps"] += 1
                s = c["env_steps"]
                if bar is not None:
                    bar.update(1)
                if s >= cfg.start_training:
                    u = self.acfg.utd_ratio
                    if u == 1:
                        self.agent, self.last_info = yield ("one", self._sample(self.buffer, 1))
                    else:
                        self.agent, infos = yield ("many", self._sample(self.buffer, u))
                        self.last_info = {k: v[-1] for k, v in infos.items()}
                    c["grad_steps"] += u
                if s % cfg.log_every == 0:
                    self._log_train("online", logger, window)
                if s % cfg.eval_every == 0 or s == cfg.online_steps:
                    self._evaluate("online", logger)
                    self._postfix(bar, "online")
                checkpoint_due |= s % cfg.checkpoint_every == 0 or s == cfg.online_steps
                if terminated or truncated:
                    executor.reset()
                    c["episodes"] += 1
                    if checkpoint_due:
                        self._save(logger)
                        checkpoint_due = False
                    obs, _ = env.reset(seed=_episode_seed(cfg.seed, c["episodes"]))
                    episode_start = True
                else:
                    obs = next_obs
                if stop.signal:
                    episode_over = terminated or truncated
                    if not episode_over and stop.count == 1 and not warned:
                        print(f"\n{stop.signal}: finishing the current episode, then saving a checkpoint "
                              "(send it again to stop now)", file=sys.stderr)
                        warned = True
                    elif episode_over or stop.count > 1:
                        if not episode_over:
                            # stopping mid-episode: the episode is cut (as by a time limit) and a resumed run
                            # starts the next one, so it no longer matches an uninterrupted run exactly
                            self.buffer.end_episode()
                            c["episodes"] += 1
                        self._interrupt(logger, "online")
            if checkpoint_due:
                self._save(logger)
        finally:
            env.close()
        self.throughput["online_steps_per_s"] = (c["env_steps"] - s0) / (time.perf_counter() - t0)

    def _record_state(self, env, episode_start: bool) -> None:
        """Exploration statistics of the state the next online step acts on (end effector, gripper)."""
        ee, contact = end_effector_position(env), gripper_contact(env)
        self.tracker.observe(self.counters["env_steps"], ee, episode_start, contact)
        if self.trajectory is not None and ee is not None:
            self.trajectory.append(self.counters["env_steps"], ee, self.counters["episodes"], contact)

    def _result(self, seconds: float) -> RunResult:
        offline = [e for e in self.evals if e["phase"] == "offline"]
        off_s = offline[-1]["success"] if offline else None
        final = self.evals[-1]["success"] if self.evals else None
        best = max((e["success"] for e in self.evals), default=None)
        tp = self.throughput

        def pct(x):
            return "n/a" if x is None else f"{100 * x:.0f}%"

        kind = "sparse" if self.cfg.sparse else "dense"
        if self.spec.benchmark == "robomimic":
            kind = "-1/0 success"
        reward = f"{kind} reward, {self.cfg.preset} preset"
        if self.acfg.pretrains_offline:
            plan = (f"{self.cfg.offline_steps:,} offline gradient steps then {self.cfg.online_steps:,} online "
                    "environment steps")
        else:
            plan = (f"{self.cfg.online_steps:,} online environment steps from scratch, "
                    f"{100 * self.acfg.offline_ratio:.0f}% of every batch from the offline data")
        parts = [f"Trained {self.cfg.agent} on {self.cfg.env} ({reward}): {plan} in {seconds / 60:.1f} min"]
        if "offline_updates_per_s" in tp:
            parts.append(f"offline {tp['offline_updates_per_s']:.0f} updates/s")
        if "online_steps_per_s" in tp:
            parts.append(f"online {tp['online_steps_per_s']:.0f} env steps/s")
        first = f"{pct(off_s)} after the offline phase" if self.acfg.pretrains_offline else \
            f"{pct(self.evals[0]['success'] if self.evals else None)} at the start"
        text = (", ".join(parts) + f". Success rate over {self.cfg.eval_episodes} episodes: {first}, {pct(final)} at "
                f"the end (best {pct(best)}). Results are in {self.run_dir} (eval.csv, train.csv, tb/, checkpoints/).")
        return RunResult(self.run_dir, off_s, final, best, self.evals, seconds, tp.get("offline_updates_per_s"),
                         tp.get("online_steps_per_s"), text)


def train(config: TrainConfig, run_dir: str | os.PathLike) -> RunResult:
    """Run (or, with ``config.resume``, continue) offline-to-online training into ``run_dir``.

    Writes ``config.json``, ``eval.csv`` (one row per evaluation), ``train.csv`` (losses, Q statistics,
    throughput), TensorBoard events under ``tb/``, checkpoints under ``checkpoints/`` and, when the run
    has finished, ``result.json`` (the :class:`RunResult` numbers and ``"finished": true``).

    Raises:
        QchunkError: bad configuration or data (one line), or :class:`NonFiniteLoss`.
        RunInterrupted: SIGINT/SIGTERM arrived; a checkpoint was saved first.
    """
    cfg = config.resolved()
    run_dir = Path(run_dir).expanduser()
    trainer = _Trainer(cfg, run_dir)  # data and agent problems surface before anything is written
    _prepare_run_dir(cfg, run_dir)
    ckpt = latest_checkpoint(run_dir / "checkpoints") if cfg.resume else None
    if not (run_dir / "config.json").is_file():
        atomic_write_json(run_dir / "config.json", {"train": cfg.to_dict(),
                                                    "agent": dataclasses.asdict(trainer.acfg),
                                                    "versions": _versions()})
    with _StopFlag() as stop:
        result = trainer.run(ckpt, stop)
    write_result(run_dir, result)
    return result


def write_result(run_dir: Path, result: RunResult) -> None:
    """Write ``RUN_DIR/result.json``, last: its presence means the run finished (sweeps skip such runs)."""
    atomic_write_json(run_dir / "result.json", {
        "finished": True, "offline_success": result.offline_success, "final_success": result.final_success,
        "best_success": result.best_success, "seconds": result.seconds,
        "offline_updates_per_s": result.offline_updates_per_s, "online_steps_per_s": result.online_steps_per_s,
        "summary": result.summary})
