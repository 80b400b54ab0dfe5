"""The typed configuration of a training run, its presets, and the agent-field overrides.

``TrainConfig`` is what ``qchunk train`` parses (every field is a flag). Fields left at ``None`` take the
value of the chosen ``preset`` (see :data:`RUN_PRESETS`); agent fields (``--lr``, ``--num-samples``,
``--horizon``, ...) override the agent preset for the run's domain.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import tyro

from qchunk.agents.config import AgentConfig
from qchunk.agents.registry import agent_spec, agent_specs, config_classes, qam_preset_agents
from qchunk.errors import QchunkError, require, require_finite

#: Run-length defaults per preset (the agent's network sizes etc. come from the agent preset of the
#: same name). ``paper`` is the paper's protocol; ``quick`` is sized for a CPU demo.
RUN_PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(offline_steps=1_000_000, online_steps=1_000_000, eval_every=100_000, log_every=5_000,
                  checkpoint_every=100_000, buffer_size=2_000_000),
    "quick": dict(offline_steps=20_000, online_steps=20_000, eval_every=5_000, log_every=500,
                  checkpoint_every=5_000, buffer_size=None),
    # The QAM paper's protocol (its reproduction script): 1M offline + 0.5M online, eval and save every 50K,
    # the buffer the offline data plus every online step; cube-quadruple and puzzle-4x4 read their 100M sets.
    "qam": dict(offline_steps=1_000_000, online_steps=500_000, eval_every=50_000, log_every=5_000,
                checkpoint_every=50_000, buffer_size=None),
}

#: The task of a run that names none (``TrainConfig.env`` unset, no ``--dataset minari:ID``).
DEFAULT_ENV = "puzzle-3x3-play-singletask-task2-v0"

#: Agent fields that are not run settings: they record how the config was resolved, or have their own flag.
_NOT_OVERRIDABLE = {"agent", "preset", "domain"}


def field_docs(cls: type) -> dict[str, str]:
    """The docstrings written under the fields of dataclass ``cls`` and its dataclass bases (as tyro shows
    them); a subclass's docstring wins over its base's."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in itertools.pairwise(body):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _make_overrides_class() -> type:
    """One optional flag per agent field of any family; family-specific fields say which agents read them."""
    shared = {f.name for f in dataclasses.fields(AgentConfig)}
    readers: dict[str, list[str]] = {}
    for cls, names in config_classes().items():
        for f in dataclasses.fields(cls):
            readers.setdefault(f.name, []).extend(names)
    fields: dict[str, Any] = {}
    for cls in config_classes():
        docs, hints = field_docs(cls), typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in _NOT_OVERRIDABLE or f.name in fields:
                continue
            doc = docs.get(f.name, "")
            if f.name not in shared:
                doc = f"({', '.join(readers[f.name])} only) {doc}"
            flag = hints[f.name] is bool  # --x / --no-x; neither: the preset's value
            fields[f.name] = Annotated[hints[f.name] | None, tyro.conf.arg(
                help=doc, constructor=bool if flag else None, help_behavior_hint="(default: the preset's)" if flag
                else None)]
    cls = dataclasses.make_dataclass("AgentOverrides", [(n, t, None) for n, t in fields.items()], frozen=True)
    cls.__doc__ = "Agent fields to override (None: the preset's value for the agent and the run's domain)."
    cls.__module__ = __name__
    return cls


AgentOverrides = _make_overrides_class()


def agent_help() -> str:
    """The ``--agent`` help: every registered agent, those that pre-train offline and the online-only ones."""
    offline = ", ".join(s.name for s in agent_specs() if not s.online_only)
    online = ", ".join(s.name for s in agent_specs() if s.online_only)
    return (f"Agent: {offline} (offline pre-training, then online) or {online} (online from scratch with the offline "
            "data in every batch; offline steps must be 0).")


@dataclass(frozen=True)
class TrainConfig:
    """An offline-to-online training run (``qchunk train``). ``None`` fields take the preset's value."""

    agent: Annotated[str, tyro.conf.arg(help=agent_help())] = "qc"
    """The agent (a registered name; the help lists them)."""
    env: str | None = None
    """Task: an OGBench single-task name (`cube-double-play-singletask-task2-v0`), a robomimic task
    (`lift-mh-low_dim`), `gym:<gymnasium id>` (any gymnasium env, e.g. `gym:Hopper-v5`; needs --dataset),
    `minari:<dataset id>` (the env a local Minari dataset recorded) or a task registered with
    `qchunk.tasks.register`. Default: `puzzle-3x3-play-singletask-task2-v0`, or with `--dataset minari:ID`
    the dataset's own environment."""
    dataset: str | None = None
    """Offline dataset: `minari:<dataset id>` (local Minari store, `$MINARI_DATASETS_PATH`) or a `.npz` /
    `.hdf5` file in the D4RL layout (observations, actions, rewards, terminals = terminated, timeouts = cut
    by a time limit, optional next_observations); actions are rescaled to [-1, 1] with the env's bounds.
    Default: the task's own (OGBench/robomimic files under --dataset-dir, a Minari task's dataset)."""
    sparse: Annotated[bool | None, tyro.conf.arg(  # --sparse / --no-sparse; neither: None
        constructor=bool, help_behavior_hint="(default: the domain's)")] = None
    """Train on the sparse reward (r' = -1 if r != 0 else 0). Default: the paper's choice for the domain
    (sparse for scene and puzzle-3x3, dense for the cube domains)."""
    preset: Annotated[Literal["paper", "quick", "qam"], tyro.conf.arg(help=(
        "Agent and run-length preset: `paper` (the Q-chunking paper's protocol), `quick` (CPU-sized) or `qam` (the "
        "QAM paper's protocol: 1M offline + 0.5M online, eval every 50K, K=10 critics with the pessimistic target, "
        "per-domain values of its reproduction script; cube-quadruple and puzzle-4x4 read the 100M shard directory "
        f"`<dataset-dir>/<domain>-play-100m-v0`; for {', '.join(qam_preset_agents())})."))] = "paper"
    """Agent and run-length preset (the help lists the agents `qam` runs)."""
    offline_steps: int | None = None
    """Gradient steps on the offline dataset (paper: 1M; 0 for the RLPD agents)."""
    online_steps: int | None = None
    """Environment steps of online fine-tuning (paper: 1M)."""
    eval_every: int | None = None
    """Evaluate every this many steps of each phase, and at the end of each phase (paper: 100K)."""
    eval_episodes: int = 50
    """Episodes per evaluation."""
    episode_length: int | None = None
    """Time limit of online and evaluation episodes (default: the task's: 500 puzzle-3x3 and cube-double,
    750 scene, 1000 cube-triple and cube-quadruple)."""
    batch_size: int = 256
    """Chunks per gradient step (the paper: 256)."""
    utd: int = 1
    """Gradient updates per environment step online (update-to-data ratio; the paper: 1, 5 in one
    ablation). U > 1 runs the U updates in one ``lax.scan``."""
    offline_ratio: float | None = None
    """Fraction of offline chunks in every online batch, the rest from online data only. Unset: each
    family's paper behaviour (the QC family samples its buffer, which starts as the offline set, uniformly;
    the RLPD family mixes 0.5). A number for a flow agent keeps its online buffer to online data."""
    start_training: int = 5000
    """Online environment steps before online updates begin."""
    seed: int = 0
    """Seed of everything (network init, sampling, environments)."""
    dataset_dir: str | None = None
    """Directory of the OGBench dataset file(s) (default `~/.ogbench/data`); a directory of shards is
    used one shard at a time."""
    extra_data: str | None = None
    """A run directory whose collected online transitions are appended to the offline dataset (the
    data-collection study: retrain on the offline data plus what another agent collected). Same task and
    reward required; not with shard directories."""
    scan_block: int = 50
    """Offline gradient updates per dispatch: the batches of up to this many steps are sampled at once and
    applied in one `lax.scan` (`update_many`). Blocks are cut so that logging, evaluation and checkpoint steps
    land exactly where they do with 1 (the block is the largest divisor of those intervals up to this value).
    1: one update per dispatch. Changes only float rounding, not the batches or their order."""
    sample_on: Literal["host", "device"] = "host"
    """Where offline batches are gathered: `host` (numpy, each batch copied to the device) or `device` (the
    offline set is copied to device memory once and the chunk windows are gathered inside the jitted update;
    the host draws the same start indices from the same generator). For GPUs; online batches come from the
    host's replay buffer either way."""
    seed_axis: Literal["auto", "vmap", "map"] = "auto"
    """How a multi-seed run (--seeds) applies one update to every seed in one jitted call: `vmap` (batched
    kernels; best on GPUs), `map` (`lax.map`: each seed's own kernel, one after another; best on CPUs, where
    batched matmuls over seeds are slower than S plain ones), `auto` (map on a CPU backend, vmap otherwise)."""
    shard_swap_every: int = 1000
    """With a shard directory: load the next shard every this many offline gradient steps (online: env steps,
    see `--shard-swap-online`)."""
    shard_swap_online: Annotated[bool | None, tyro.conf.arg(  # --shard-swap-online / --no-shard-swap-online
        constructor=bool, help_behavior_hint="(default: the preset's)")] = None
    """With a shard directory and a replay buffer that starts as the offline set (the QC family): go on loading
    the next shard online, every `--shard-swap-every` env steps, and write it over the buffer's offline part, as
    the QAM code's main.py does. Unset: the preset's choice (on for `qam`; off for `paper` and `quick`, as the
    Q-chunking code, which swaps shards offline only). The RLPD family's separate offline half follows the
    shards online either way."""
    buffer_size: int | None = None
    """Replay buffer capacity (paper: 2M; None: offline dataset + online steps, so nothing is overwritten)."""
    log_every: int | None = None
    """Write a train.csv row (losses, Q statistics, throughput) every this many steps."""
    checkpoint_every: int | None = None
    """Checkpoint every this many steps (online: at the next episode end)."""
    eval_envs: int = 2
    """Environments evaluation keeps open (each runs one episode after another, a finished one taking the next
    seed at once; one batched policy query per chunk for all of them). An OGBench environment holds about
    150 MB, a worker process with one about 250 MB; the default keeps a run's process tree under 2 GB during
    a 50-episode evaluation (one env here, one in a worker). Raise it (with --eval-workers) to use more
    cores."""
    eval_workers: int | None = None
    """Processes that step the evaluation environments, this one included (default: all cores; at most
    --eval-envs)."""
    tensorboard: bool = True
    """Write TensorBoard event files to RUN_DIR/tb."""
    wandb: bool = False
    """Also log to Weights & Biases (offline mode unless WANDB_MODE says otherwise; needs qchunk[wandb])."""
    save_online_states: bool = False
    """Save the end-effector position of every online step to RUN_DIR/online_states.npz (for `qchunk analyze
    trajectories`); the temporal-coherence statistics in train.csv (`explore/*`) are logged either way."""
    progress: bool = True
    """Show a live progress bar."""
    resume: bool = False
    """Continue the run in the run directory from its newest checkpoint (same settings required)."""
    overrides: Annotated[AgentOverrides, tyro.conf.OmitArgPrefixes] = field(  # type: ignore[valid-type]
        default_factory=AgentOverrides)
    """Agent fields to override."""

    def agent_overrides(self) -> dict[str, Any]:
        """The agent fields set on the command line (non-None overrides)."""
        return {k: v for k, v in dataclasses.asdict(self.overrides).items() if v is not None}

    @property
    def env_name(self) -> str:
        """:attr:`env`, or its default: the environment of ``--dataset minari:ID``, else the puzzle task."""
        if self.env is not None:
            return self.env
        if self.dataset is not None and self.dataset.startswith("minari:"):
            return self.dataset
        return DEFAULT_ENV

    @property
    def task(self):
        """The task :attr:`env` names (a :class:`qchunk.tasks.Task`; raises QchunkError for unknown names)."""
        from qchunk.tasks import get_task

        return get_task(self.env_name)

    def resolved(self) -> TrainConfig:
        """A copy with every preset-dependent ``None`` filled in, validated (raises QchunkError)."""
        spec = self.task
        require(spec.singletask, f"--env needs a single-task name such as {spec.domain.name}-play-singletask-task2-v0")
        online_only = agent_spec(self.agent).online_only  # raises for an unknown agent, with the closest
        preset = RUN_PRESETS[self.preset]
        changes = {k: preset[k] for k in ("offline_steps", "online_steps", "eval_every", "log_every",
                                          "checkpoint_every") if getattr(self, k) is None}
        if online_only and self.offline_steps is None:
            changes["offline_steps"] = 0
        if self.sparse is None:
            changes["sparse"] = spec.domain.sparse
        if self.buffer_size is None and preset["buffer_size"] is not None:
            changes["buffer_size"] = preset["buffer_size"]
        if self.shard_swap_online is None:
            changes["shard_swap_online"] = self.preset == "qam"
        if self.preset == "qam":
            changes.update(_qam_protocol(self, spec))
        changes["env"] = self.env_name
        cfg = dataclasses.replace(self, **changes)
        for name in ("offline_steps", "online_steps", "start_training", "seed"):
            require(getattr(cfg, name) >= 0, f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
        for name in ("eval_every", "eval_episodes", "utd", "log_every", "checkpoint_every", "shard_swap_every",
                     "scan_block"):
            require(getattr(cfg, name) >= 1, f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
        require(cfg.buffer_size is None or cfg.buffer_size >= 1, f"--buffer-size must be >= 1, got {cfg.buffer_size}")
        require(cfg.episode_length is None or cfg.episode_length >= 1, "--episode-length must be >= 1")
        require(cfg.eval_workers is None or cfg.eval_workers >= 1, "--eval-workers must be >= 1")
        require(cfg.eval_envs >= 1, f"--eval-envs must be >= 1, got {cfg.eval_envs}")
        require(cfg.batch_size >= 1, f"--batch-size must be >= 1, got {cfg.batch_size}")
        if cfg.offline_ratio is not None:
            require_finite(cfg.offline_ratio, "--offline-ratio")
        require(cfg.offline_ratio is None or 0.0 <= cfg.offline_ratio < 1.0,
                f"--offline-ratio must be in [0, 1) (the rest of each batch is online data), got {cfg.offline_ratio}")
        require(cfg.offline_steps + cfg.online_steps > 0, "nothing to do: --offline-steps and --online-steps are 0")
        require(not online_only or cfg.offline_steps == 0,
                f"{cfg.agent} trains online from scratch with the offline data mixed into every batch; "
                f"use --offline-steps 0 (got {cfg.offline_steps})")
        require(not online_only or cfg.online_steps > 0, f"{cfg.agent} trains online: --online-steps must be > 0")
        _check_sizes(cfg)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["overrides"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d["overrides"].items()}
        return d


def _qam_protocol(cfg: TrainConfig, spec) -> dict[str, Any]:
    """What ``--preset qam`` changes in the run of task ``spec``: refuses an agent the protocol does not run, and
    points ``dataset_dir`` of cube-quadruple and puzzle-4x4 at their 100M shard directory
    (:data:`~qchunk.agents.presets.QAM_SHARD_DIRS`, inside ``--dataset-dir``, unless it already names it)."""
    from qchunk.agents.presets import QAM_SHARD_DIRS

    runs = qam_preset_agents()
    require(cfg.agent in runs, f"--preset qam is the QAM paper's protocol, which runs "
            f"{', '.join(runs)}; use --preset paper (or quick) for {cfg.agent}")
    shards = QAM_SHARD_DIRS.get(spec.domain.name)
    if shards is None or spec.benchmark != "ogbench" or cfg.dataset is not None:
        return {}
    root = spec.dataset_dir(cfg.dataset_dir)
    return {"dataset_dir": str(root if root.name == shards else root / shards)}


#: The most gradient updates a run can make: the agents count them in an int32 (``AgentBase.step``).
MAX_UPDATES = 2**31 - 1


def _check_sizes(cfg: TrainConfig) -> None:
    """Refuse a run longer than the update counter holds, and a replay buffer that cannot hold one chunk."""
    for name in ("offline_steps", "online_steps"):
        require(getattr(cfg, name) <= MAX_UPDATES, f"--{name.replace('_', '-')} {getattr(cfg, name):,} is more than a "
                f"run can count (at most {MAX_UPDATES:,}; the paper's phases are 1,000,000 steps)")
    updates = cfg.offline_steps + cfg.online_steps * cfg.utd
    require(updates <= MAX_UPDATES, f"--offline-steps + --online-steps x --utd makes {updates:,} gradient updates, "
            f"more than the agents' update counter holds ({MAX_UPDATES:,}); shorten the run")
    if cfg.buffer_size is None:
        return
    from qchunk.agents import agent_config

    try:
        horizon = agent_config(cfg.agent, cfg.preset, cfg.task.domain.name, **cfg.agent_overrides()).horizon
    except QchunkError:  # reported where the run builds its agent
        return
    require(cfg.buffer_size >= horizon, f"--buffer-size {cfg.buffer_size} cannot hold one chunk of {horizon} "
            f"transitions; give at least {horizon} (or leave it unset: the offline data plus every online step)")


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    """Inverse of :meth:`TrainConfig.to_dict` (for reading RUN_DIR/config.json)."""
    d = dict(d)
    d.setdefault("shard_swap_online", False)  # a run recorded before the setting never swapped shards online
    given = dict(d.pop("overrides", {}))
    for moved in ("batch_size", "offline_ratio"):  # agent fields before they became run settings
        if moved in given:
            value = given.pop(moved)
            if value is not None:
                d.setdefault(moved, value)
    try:
        overrides = AgentOverrides(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in given.items()})
        return TrainConfig(**d, overrides=overrides)
    except TypeError as e:
        raise QchunkError(f"config.json does not describe a qchunk run ({e})") from None
