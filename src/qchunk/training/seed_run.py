"""``SeedRun``: one seed's run, advanced one step at a time by the loop in :mod:`qchunk.training.loop`.

Each step is two calls around the (vmapped) gradient update: :meth:`SeedRun.prepare` does the step's
work before the update (offline: sample a batch; online: one environment step, then the batches) and
returns the update request; :meth:`SeedRun.finish` does the rest (counters, logging, evaluation,
checkpoints, signals) with the update's metrics.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import jax
import numpy as np
from flax import serialization

from qchunk.analysis import TrajectoryLog
from qchunk.errors import QchunkError
from qchunk.logging import RunLogger
from qchunk.training.checkpoint import Checkpoint
from qchunk.training.collector import Collector, StepStats
from qchunk.training.config import TrainConfig
from qchunk.training.run_dir import EVAL_CSV, ONLINE_STATES_FILE, TRAIN_CSV, RunDir
from qchunk.training.seeds import Request
from qchunk.training.sources import BatchSource
from qchunk.training.state import RunState


class NonFiniteLoss(QchunkError):
    """A loss or Q value became NaN/inf; the last good checkpoint is kept."""


def finite_metrics(info, step: int, last_ckpt: int | None) -> dict[str, float]:
    """``info`` as floats; raises :class:`NonFiniteLoss` if any is NaN or infinite."""
    out = {k: float(v) for k, v in info.items()}
    bad = sorted(k for k, v in out.items() if not math.isfinite(v))
    if bad:
        kept = f"the last good checkpoint (step {last_ckpt}) is kept" if last_ckpt is not None else "no checkpoint yet"
        raise NonFiniteLoss(f"non-finite {', '.join(bad[:3])} at step {step}; stopping ({kept}); "
                            "check the data or lower --lr and start again in a new --run-dir")
    return out


def eval_policy(agent, key):
    """``policy(obs (N, obs_dim)) -> (N, H, A)``: ``agent.eval_actions`` with its own key stream."""

    def policy(obs: np.ndarray) -> np.ndarray:
        nonlocal key
        key, sub = jax.random.split(key)
        return np.asarray(agent.eval_actions(jax.numpy.asarray(obs), sub))

    return policy


class SeedRun:
    """The pieces of one seed's run: state, batch source, collector, logger, checkpoints, evaluation.

    Args:
        cfg: the resolved run config (its ``seed`` is this run's).
        run_dir: where it writes.
        source: its batch source.
        agent_config: the agent's resolved config.
        make_env: ``make_env() -> env`` for the online environment (with exploration probes).
        evaluate: ``evaluate(policy, round_index, seed) -> EvalResult`` (the shared evaluation pool).
    """

    def __init__(self, cfg: TrainConfig, run_dir: RunDir, source: BatchSource, agent_config, make_env, evaluate):
        self.cfg, self.dir, self.source, self.acfg = cfg, run_dir, source, agent_config
        self._make_env, self._evaluate = make_env, evaluate
        self.state = RunState.new(cfg.seed)
        self.act_key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 0xAC7)
        self.eval_key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 0xE7A1)
        self.trajectory = TrajectoryLog() if cfg.save_online_states else None
        self.collector: Collector | None = None
        self.agent_of = None  # set by the loop: () -> this seed's current agent
        self.last_info: Any = {}
        self.last_ckpt: int | None = None
        self.stopped = False
        self._checkpoint_due = False
        self._phase_clock: tuple[int, float, str] | None = None

    # ---------------------------------------------------------------- start and stop
    @property
    def step(self) -> int:
        return self.state.step

    @property
    def done(self) -> bool:
        c = self.state.counters
        return c["offline_steps"] >= self.cfg.offline_steps and c["env_steps"] >= self.cfg.online_steps

    def begin(self, agent, ckpt: Checkpoint | None):
        """Restore ``ckpt`` (if any) into the state and ``agent``; open the logger; return the agent."""
        if ckpt is not None:
            agent = self._restore(agent, ckpt)
        st = self.state
        cfg = self.cfg
        self.logger = RunLogger(self.dir.file(EVAL_CSV), self.dir.file(TRAIN_CSV),
                                self.dir.tb_dir if cfg.tensorboard else None,
                                rows={"eval": st.evals, "train": st.train_rows} if ckpt else None,
                                resume_step=ckpt.step if ckpt else None, wandb=cfg.wandb,
                                wandb_kwargs={"project": "qchunk", "config": cfg.to_dict(), "name": self.dir.path.name})
        self._window = {"step": self.step, "time": time.perf_counter()}
        return agent

    def _restore(self, agent, ckpt: Checkpoint):
        st = ckpt.state
        if st.get("dataset") != self.source.fingerprint():
            raise QchunkError(f"the offline dataset changed since {ckpt.path} was written; resume with the same "
                              "data or start a new --run-dir")
        self.state.load(st)
        try:
            agent = serialization.from_bytes(agent, ckpt.agent_bytes())
        except (ValueError, KeyError, TypeError) as e:
            raise QchunkError(f"{ckpt.path} does not fit this run's agent ({e}); start a new --run-dir") from None
        self.source.seek_shard(self.state.counters["shard"])
        states = self.dir.file(ONLINE_STATES_FILE)
        if self.trajectory is not None and states.is_file():  # rows after the checkpoint are logged again
            self.trajectory = TrajectoryLog.load(states, before_step=self.state.counters["env_steps"])
        if self.state.online_started:
            self.source.restore_buffer(ckpt.buffer())
        self.last_ckpt = ckpt.step
        self.dir.checkpoints.protected = ckpt.path
        return agent

    def close(self) -> None:
        self.logger.close()
        if self.collector is not None:
            self.collector.close()

    # ---------------------------------------------------------------- one step
    def prepare(self) -> Request | None:
        """The work of one step before its gradient update; returns the update request (None: no update)."""
        c = self.state.counters
        if c["offline_steps"] < self.cfg.offline_steps:
            self._enter("offline", c["offline_steps"])
            return "one", self.source.sample(self.state.rng, 1, online=False)
        if self.collector is None:
            self._start_online()
        self._enter("online", c["env_steps"])
        stats = self.collector.step(self._act)
        self._observe(stats)
        c["env_steps"] += 1
        self._last_step = stats
        if c["env_steps"] < self.cfg.start_training:
            return None
        u = self.cfg.utd
        return ("one" if u == 1 else "many"), self.source.sample(self.state.rng, u, online=True)

    def finish(self, info, stop) -> None:
        """The rest of the step: counters, train.csv, evaluation, checkpoints, signals."""
        c, cfg = self.state.counters, self.cfg
        if info is not None:
            self.last_info = info
            c["grad_steps"] += self.cfg.utd if self.phase == "online" else 1
        if self.phase == "offline":
            c["offline_steps"] += 1
            s, last = c["offline_steps"], cfg.offline_steps
            if self.source.sharded is not None and s % cfg.shard_swap_every == 0 and s < last:
                c["shard"] = self.source.swap_shard()
        else:
            s, last = c["env_steps"], cfg.online_steps
            if (self.source.sharded is not None and self.source.offline_ratio is not None
                    and s % cfg.shard_swap_every == 0 and s < last):
                c["shard"] = self.source.swap_shard()  # the RLPD family's offline half follows the shards
        if s % cfg.log_every == 0:
            self.log_train()
        if s % cfg.eval_every == 0 or s == last:
            self.evaluate()
        if self.phase == "offline":
            self._finish_offline(s, last, stop)
        else:
            self._finish_online(s, last, stop)

    def _finish_offline(self, s: int, last: int, stop) -> None:
        if s % self.cfg.checkpoint_every == 0 or s == last:
            self.save()
        if s == last:
            self._leave("offline_updates_per_s", s)
        if stop.signal:
            self._stop_now(stop)

    def _finish_online(self, s: int, last: int, stop) -> None:
        self._checkpoint_due |= s % self.cfg.checkpoint_every == 0 or s == last
        over = self._last_step.episode_over
        if over:
            self.state.counters["episodes"] += 1
            if self._checkpoint_due:
                self.save()
                self._checkpoint_due = False
            if s < last:
                self.collector.reset(self.state.counters["episodes"])
        if s == last:
            if self._checkpoint_due:  # the run ends mid-episode
                self.save()
            self._leave("online_steps_per_s", s)
        if stop.signal and not self.done:
            if over or stop.count > 1:
                if not over:  # cut as by a time limit: the resumed run starts the next episode
                    self.collector.cut()
                    self.state.counters["episodes"] += 1
                self._stop_now(stop)
            elif stop.count == 1 and not getattr(self, "_warned", False):
                print(f"\n{stop.signal}: finishing the current episode, then saving a checkpoint "
                      "(send it again to stop now)", file=sys.stderr)
                self._warned = True

    def _stop_now(self, stop) -> None:
        if self.last_ckpt != self.step:
            self.save()
        self.stopped = True

    # ---------------------------------------------------------------- pieces
    def _enter(self, phase: str, counter: int) -> None:
        self.phase = phase
        if self._phase_clock is None or self._phase_clock[2] != phase:
            self._phase_clock = (counter, time.perf_counter(), phase)

    def _leave(self, key: str, counter: int) -> None:
        jax.block_until_ready(self.agent_of())
        start, t0, _ = self._phase_clock
        self.state.throughput[key] = (counter - start) / max(time.perf_counter() - t0, 1e-9)

    def _start_online(self) -> None:
        c = self.state.counters
        if not self.state.online_started:
            self.source.start_online(self.cfg.buffer_size, self.cfg.online_steps)
            self.state.online_started = True
        self.collector = Collector(self._make_env(), self.source.buffer, self.cfg.seed, c["episodes"])
        if self.cfg.offline_steps == 0 and c["eval_rounds"] == 0:
            self.phase = "online"
            self.evaluate()  # the initial policy: the learning curve's first point

    def _act(self, obs: np.ndarray) -> np.ndarray:
        c = self.state.counters
        if not self.acfg.pretrains_offline and c["env_steps"] < self.cfg.start_training:
            # the RLPD family's warm-up: uniform random actions, one per step, before any update
            rng = np.random.default_rng([self.cfg.seed, 0x5A4D, c["env_steps"]])
            return rng.uniform(-1.0, 1.0, (1, self.source.dataset.action_dim)).astype(np.float32)
        key = jax.random.fold_in(self.act_key, c["env_steps"])
        return np.asarray(self.agent_of().sample_actions(obs, key))

    def _observe(self, stats: StepStats) -> None:
        """Exploration statistics of the state this step acted on (end effector, gripper contact)."""
        c = self.state.counters
        self.state.tracker.observe(c["env_steps"], stats.ee_pos, stats.episode_start, stats.gripper_contact)
        if self.trajectory is not None and stats.ee_pos is not None:
            self.trajectory.append(c["env_steps"], stats.ee_pos, c["episodes"], stats.gripper_contact)

    def _info_floats(self) -> dict[str, float]:
        return finite_metrics(self.last_info, self.step, self.last_ckpt)

    def log_train(self) -> None:
        now = time.perf_counter()
        elapsed = max(now - self._window["time"], 1e-9)
        c = self.state.counters
        row = {"step": self.step, "phase": self.phase, "grad_steps": c["grad_steps"], "env_steps": c["env_steps"],
               **self._info_floats(), "steps_per_s": (self.step - self._window["step"]) / elapsed,
               "sample_frac": self.source.sample_seconds / elapsed}
        if self.phase == "online":
            row.update(self.state.tracker.window_stats())  # explore/ee_step_l2, explore/gripper_contact_frac
        self.logger.log_train(row)
        self.state.train_rows.append(row)
        self._window = {"step": self.step, "time": now}
        self.source.sample_seconds = 0.0

    def evaluate(self) -> dict[str, Any]:
        self._info_floats()
        c = self.state.counters
        key = jax.random.fold_in(self.eval_key, c["eval_rounds"])
        res = self._evaluate(eval_policy(self.agent_of(), key), c["eval_rounds"], self.cfg.seed)
        c["eval_rounds"] += 1
        row = {"step": self.step, "phase": self.phase, "offline_steps": c["offline_steps"],
               "env_steps": c["env_steps"], "success": res.success, "return": res.episode_return,
               "episode_length": res.episode_length, "eval_seconds": round(res.seconds, 3)}
        self.logger.log_eval(row)
        self.state.evals.append(row)
        return row

    def save(self) -> None:
        """Checkpoint now (the metrics must be finite)."""
        if self.last_info:
            self._info_floats()
        self.logger.flush()
        state = {**self.state.to_dict(), "dataset": self.source.fingerprint()}
        if self.trajectory is not None:
            self.trajectory.save(self.dir.file(ONLINE_STATES_FILE))
        self.dir.checkpoints.save(self.step, serialization.to_bytes(self.agent_of()), state,
                                  self.source.buffer_state())
        self.last_ckpt = self.step
