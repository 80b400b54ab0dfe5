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

from qchunk.errors import QchunkError
from qchunk.training.checkpoint import Checkpoint
from qchunk.training.collector import Collector
from qchunk.training.config import TrainConfig
from qchunk.training.exploration import Exploration
from qchunk.training.run_dir import ONLINE_STATES_FILE, RunDir
from qchunk.training.seeds import Request
from qchunk.training.sources import BatchSource
from qchunk.training.state import PhaseClock, RunState


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


def warmup_action(seed: int, env_step: int, action_dim: int) -> np.ndarray:
    """The RLPD family's warm-up: a uniform random action ``(1, A)`` (one per step) before any update,
    drawn from the seed and the step so a resumed run repeats it."""
    rng = np.random.default_rng([seed, 0x5A4D, env_step])
    return rng.uniform(-1.0, 1.0, (1, action_dim)).astype(np.float32)


def offline_block(cfg: TrainConfig, sharded: bool) -> int:
    """The offline scan block K: the largest divisor of the logging, evaluation and checkpoint intervals (and the
    shard swap interval, with shards) that is at most ``cfg.scan_block``, so every step where one of them falls
    ends a block."""
    every = [cfg.log_every, cfg.eval_every, cfg.checkpoint_every] + ([cfg.shard_swap_every] if sharded else [])
    common = math.gcd(*every)
    return max(d for d in range(1, min(cfg.scan_block, common) + 1) if common % d == 0)


def offline_block_length(step: int, last: int, block: int) -> int:
    """Gradient steps of the offline block starting at ``step`` (of ``last``): ``block`` where a whole block
    aligned to multiples of ``block`` fits, else 1 (the phase's tail). A function of the step alone, so a resumed
    run cuts the same blocks."""
    return block if step % block == 0 and step + block <= last else 1


class SeedRun:
    """One seed's run of the resolved config ``cfg`` into ``run_dir``: its state, batch ``source``,
    collector (its env from ``make_env()``), logger, checkpoints, and evaluation through
    ``evaluate(policy, round_index, seed) -> EvalResult`` (the shared pool)."""

    def __init__(self, cfg: TrainConfig, run_dir: RunDir, source: BatchSource, agent_config, make_env, evaluate):
        self.cfg, self.dir, self.source, self.acfg = cfg, run_dir, source, agent_config
        self._make_env, self._evaluate = make_env, evaluate
        self.state = RunState.new(cfg.seed)
        key = jax.random.PRNGKey(cfg.seed)
        self.act_key, self.eval_key = jax.random.fold_in(key, 0xAC7), jax.random.fold_in(key, 0xE7A1)
        self.exploration = Exploration(self.state.tracker,
                                       run_dir.file(ONLINE_STATES_FILE) if cfg.save_online_states else None)
        self.collector: Collector | None = None
        self.agent_of = None  # set by the loop: () -> this seed's current agent
        self.last_info: Any = {}
        self.last_ckpt: int | None = None
        self.stopped = self.saved_on_stop = False  # saved_on_stop: a checkpoint is at the step it stopped at
        self._checkpoint_due = self._warned = False
        self.clock, self.block, self._block = PhaseClock(), offline_block(cfg, source.sharded is not None), 1

    step = property(lambda self: self.state.step)
    done = property(lambda self: self.state.reached(self.cfg.offline_steps, self.cfg.online_steps))

    def begin(self, agent, ckpt: Checkpoint | None):
        """Restore ``ckpt`` (if any) into the state and ``agent``; open the logger; return the agent."""
        if ckpt is not None:
            agent = self._restore(agent, ckpt)
        self.logger = self.dir.open_logger(self.cfg, self.state.evals, self.state.train_rows, ckpt)
        self._window = {"step": self.step, "time": time.perf_counter()}
        return agent

    def _restore(self, agent, ckpt: Checkpoint):
        st = ckpt.state
        if st.get("dataset") != self.source.fingerprint():
            raise QchunkError(f"the offline dataset changed since {ckpt.path} was written; resume with the same "
                              "data or start a new --run-dir")
        self.state.load(st)
        self.last_info = dict(st.get("last_info") or {})  # train.csv rows before the next update repeat it
        agent = ckpt.agent(agent)
        self.source.seek_shard(self.state.counters["shard"])
        self.exploration.restore(self.state.counters["env_steps"])
        if self.state.online_started:
            self.source.restore_buffer(ckpt.buffer())
        self.last_ckpt = ckpt.step
        self.dir.checkpoints.protected = ckpt.path
        return agent

    def close(self) -> None:
        self.logger.close()
        if self.collector is not None:
            self.collector.close()

    def prepare(self) -> Request | None:
        """The work of one step before its gradient update; returns the update request (None: no update).
        Offline, a step is a block of :func:`offline_block_length` gradient steps."""
        c = self.state.counters
        if c["offline_steps"] < self.cfg.offline_steps:
            self._enter("offline", c["offline_steps"])
            n = self._block = offline_block_length(c["offline_steps"], self.cfg.offline_steps, self.block)
            if self.cfg.sample_on == "device":
                return "gather", (self.source.device_data(), self.source.draw_starts(self.state.rng, n))
            return ("one" if n == 1 else "many"), self.source.sample(self.state.rng, n, online=False)
        if self.collector is None:
            self._start_online()
        self._enter("online", c["env_steps"])
        stats = self.collector.step(self._act)
        self.exploration.observe(c["env_steps"], c["episodes"], stats)
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
            c["grad_steps"] += self.cfg.utd if self.phase == "online" else self._block
        if self.phase == "offline":
            c["offline_steps"] += self._block
            s, last = c["offline_steps"], cfg.offline_steps
        else:
            s, last = c["env_steps"], cfg.online_steps
        if s % cfg.shard_swap_every == 0 and s < last:
            c["shard"] = self.source.swap_shard(online=self.phase == "online")
        if s % cfg.log_every == 0 or s == last:  # each phase logs its last step, however short
            self.log_train()
        if s % cfg.eval_every == 0 or s == last:
            self.evaluate()
        if self.phase == "offline":
            self._finish_offline(s, last, stop)
        else:
            self._finish_online(s, last, stop)

    def _finish_offline(self, s: int, last: int, stop) -> None:
        if s == last:  # before the checkpoint, which then holds the rate (result.json of a resumed run shows it)
            self._leave("offline_updates_per_s", s)
        if s % self.cfg.checkpoint_every == 0 or s == last:
            self.save()
        if stop.signal:
            self._stop_now(stop)

    def _finish_online(self, s: int, last: int, stop) -> None:
        self._checkpoint_due |= s % self.cfg.checkpoint_every == 0 or s == last
        if s == last:  # before the checkpoint, which then holds the rate (result.json of a resumed run shows it)
            self._leave("online_steps_per_s", s)
        over = self._last_step.episode_over
        if over:
            self.state.counters["episodes"] += 1
            if self._checkpoint_due:
                self.save()
                self._checkpoint_due = False
            if s < last:
                self.collector.reset(self.state.counters["episodes"])
        if s == last and self._checkpoint_due:  # the run ends mid-episode
            self.save()
        if stop.signal and not self.done:
            if over:
                self._stop_now(stop)
            elif stop.count > 1:
                # Mid-episode: the environment's state is not in a checkpoint, so one written here could
                # not resume exactly. Stop without one; --resume continues from the last (exact) checkpoint.
                self.stopped, self.saved_on_stop = True, False
            elif not self._warned:
                print(f"\n{stop.signal}: finishing the current episode, then saving a checkpoint (send it again "
                      "to stop now, without one: --resume then continues from the last)", file=sys.stderr)
                self._warned = True

    def _stop_now(self, stop) -> None:
        if self.last_ckpt != self.step:
            self.save()
        self.stopped, self.saved_on_stop = True, True

    def _enter(self, phase: str, counter: int) -> None:
        self.phase = phase
        self.clock.enter(phase, counter)

    def _leave(self, key: str, counter: int) -> None:
        jax.block_until_ready(self.agent_of())
        self.state.throughput[key] = self.clock.rate(counter)

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
            return warmup_action(self.cfg.seed, c["env_steps"], self.source.dataset.action_dim)
        key = jax.random.fold_in(self.act_key, c["env_steps"])
        return np.asarray(self.agent_of().sample_actions(obs, key))

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
               "env_steps": c["env_steps"], **res.row()}
        self.logger.log_eval(row)
        self.state.evals.append(row)
        return row

    def save(self) -> None:
        """Checkpoint now (the metrics must be finite: :meth:`_info_floats` raises otherwise)."""
        state = {**self.state.to_dict(), "dataset": self.source.fingerprint(),
                 "last_info": self._info_floats() if self.last_info else {}}
        self.logger.flush()
        self.exploration.save()
        self.dir.checkpoints.save(self.step, serialization.to_bytes(self.agent_of()), state,
                                  self.source.buffer_state())
        self.last_ckpt = self.step
